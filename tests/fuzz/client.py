"""A blocking websocket client for the fuzz tier: send one frame, then learn what it caused.

After the frame, :meth:`Probe.exchange` sends a ``ping`` (or on the link a ``sync``) and
reads until its answer: the server handles a connection's frames in order, so everything the
fuzzed frame caused has been sent by then. Every read has a deadline, so a wedged connection
fails the example in seconds instead of hanging the suite.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from shared.protocol import Message, decode, decode_json, encode, encode_json

READ_TIMEOUT_S = 5.0
"""Longest wait for the barrier's answer; far above a loopback round trip on a busy machine."""


class Closed(Exception):
    """The server closed the connection; ``code`` is its close code."""

    def __init__(self, code: int | None, received: list[Message]) -> None:
        super().__init__(f"closed with {code}")
        self.code = code
        self.received = received


class Probe:
    def __init__(
        self,
        url: str,
        *,
        json_codec: bool = False,
        subprotocol: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.json_codec = json_codec
        self.ws: ClientConnection = connect(
            url.replace("http://", "ws://"),
            subprotocols=[subprotocol] if subprotocol else None,  # type: ignore[list-item]
            additional_headers=headers,
            max_size=None,
            open_timeout=READ_TIMEOUT_S,
            close_timeout=1,
        )

    def __enter__(self) -> Probe:
        self.ws.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.ws.close()

    def send(self, message: Message) -> None:
        self.ws.send(encode_json(message) if self.json_codec else encode(message))

    def exchange(
        self,
        frame: bytes | str | None,
        barrier: Message,
        done: Callable[[Message], bool],
        *,
        text: bool | None = None,
    ) -> list[Message]:
        """Send ``frame`` (bytes as a text frame if ``text``), then ``barrier``; return the
        messages received until ``done`` says so.

        Raises:
            Closed: the server closed the connection (with the messages received before).
            TimeoutError: no answer to the barrier within :data:`READ_TIMEOUT_S`.
        """
        received: list[Message] = []
        try:
            if frame is not None:
                self.ws.send(frame, text=text)
            self.send(barrier)
            while True:
                data = self.ws.recv(timeout=READ_TIMEOUT_S)
                message = decode(data) if isinstance(data, bytes) else decode_json(data)
                received.append(message)
                if done(message):
                    return received
        except ConnectionClosed as exc:
            raise Closed(exc.rcvd.code if exc.rcvd else None, received) from None
