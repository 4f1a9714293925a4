"""One ``/ws`` connection on websocket-client (gevent-friendly), and the users that hold one."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import gevent
import msgpack  # type: ignore[import-untyped]
import websocket
from locust import User
from locust.exception import StopUser

from load.users.recording import fire, ms_since
from load.users.settings import SETTINGS, assign


def ws_url(base: str) -> str:
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + "/ws"
    return "ws://" + base.removeprefix("http://") + "/ws"


class Socket:
    """One ``/ws`` connection speaking msgpack (binary) or JSON (text)."""

    def __init__(self, base_url: str, codec: str, prefer_region: str | None) -> None:
        headers = [f"fly-prefer-region: {prefer_region}"] if prefer_region else None
        protocols = ["lightcone.json"] if codec == "json" else None
        self.json = codec == "json"
        self.ws = websocket.create_connection(
            ws_url(base_url),
            timeout=30,
            subprotocols=protocols,
            header=headers,
            skip_utf8_validation=True,
            enable_multithread=False,
        )
        self.ws.settimeout(None)

    def send(self, message: dict[str, Any]) -> None:
        if self.json:
            self.ws.send(json.dumps(message, separators=(",", ":")))
        else:
            self.ws.send_binary(msgpack.packb(message, use_bin_type=True))

    def recv(self) -> tuple[dict[str, Any], int] | None:
        """The next message and its size, or ``None`` once the connection is closed."""
        try:
            data = self.ws.recv()
        except (websocket.WebSocketConnectionClosedException, OSError):
            return None
        if not data:
            return None
        if isinstance(data, str):
            message = json.loads(data)
        else:
            message = msgpack.unpackb(data, raw=False)
        return (message, len(data)) if isinstance(message, dict) else ({}, len(data))

    def close(self) -> None:
        try:
            self.ws.close()
        except (websocket.WebSocketException, OSError):
            pass


class WebsocketUser(User):
    """A user holding one ``/ws`` connection, with a greenlet reading it.

    Subclasses pass their own counter (a user's index seeds its choices, so each class counts
    its users from 0), open the connection with :meth:`connect` and set :attr:`socket` and
    :attr:`reader`; stopping kills the reader and closes the connection.
    """

    abstract = True

    def __init__(self, environment: Any, counter: Iterator[int]) -> None:
        self.index, self.city, self.base_url = assign(counter, environment.host)
        super().__init__(environment)
        self.socket: Socket | None = None
        self.reader: gevent.Greenlet | None = None

    def connect(self) -> Socket:
        """A new connection, timed as a ``connect`` request; stops the user if it fails."""
        started = time.perf_counter()
        ctx = {"kind": "connect", "city": self.city}
        try:
            socket = Socket(self.base_url, SETTINGS.codec, SETTINGS.prefer_region)
        except (websocket.WebSocketException, OSError) as exc:
            fire(self, "WS", f"connect [{self.city}]", ms_since(started), 0, ctx, exc)
            raise StopUser() from exc
        fire(self, "WS", f"connect [{self.city}]", ms_since(started), 0, ctx)
        return socket

    def on_stop(self) -> None:
        if self.reader is not None:
            self.reader.kill(block=False)
        if self.socket is not None:
            self.socket.close()
