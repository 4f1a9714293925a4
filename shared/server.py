"""Run an ASGI app under uvicorn the way every lightcone process does.

Shutdown (SIGTERM or SIGINT) goes: stop listening; the app's "going away" hook, if it set
one in ``app.state.going_away``, closes its websockets with 1001 and waits for their closing
handshakes (at most ``going_away_s``); then uvicorn's own shutdown (it would close any
websocket still open with 1012) and the lifespan shutdown. uvicorn closes websockets before
the lifespan shutdown runs, so an app can only say 1001 from this hook.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
from collections.abc import Awaitable, Callable, Collection
from typing import TypeVar

import uvicorn
from starlette.applications import Starlette
from uvicorn._types import ASGISendEvent
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

logger = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

GOING_AWAY_S = 3.0
"""Longest wait for websockets to finish their 1001 closing handshakes on shutdown."""

GRACEFUL_SHUTDOWN_S = 5
"""uvicorn's wait for the remaining requests after that (then it cancels them)."""

GoingAway = Callable[[], Awaitable[None]]
"""``app.state.going_away``: close every websocket with 1001, return once they are closed."""

T = TypeVar("T")


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT)
    logging.getLogger("uvicorn.error").addFilter(_client_fault_is_not_an_error)


def _client_fault_is_not_an_error(record: logging.LogRecord) -> bool:
    """uvicorn logs a client's invalid UTF-8 text frame with a traceback at ERROR, after
    closing the connection with 1007 as it should. It is the client's fault, not the
    server's: keep it as a one-line warning so error alerts stay meaningful."""
    if record.getMessage().startswith("Invalid UTF-8 sequence received from client"):
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = None
    return True


def bind(host: str, port: int, *, sndbuf: int = 0) -> list[socket.socket]:
    """Listening sockets for ``host``: ``""`` or ``"::"`` means every IPv4 and IPv6 address.

    ``sndbuf`` > 0 fixes the kernel send buffer of every accepted connection (they inherit
    it), which bounds what a client that stops reading can pin in the kernel; 0 keeps the
    operating system's autotuning.
    """
    if host in ("", "::"):
        sock = socket.create_server(
            ("::", port), family=socket.AF_INET6, dualstack_ipv6=True, reuse_port=False
        )
    else:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family)
    if sndbuf > 0:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    sock.set_inheritable(True)
    return [sock]


def going_away(peers: Collection[T], close: Callable[[T], object]) -> GoingAway:
    """A going-away hook: ``close`` each of ``peers`` (a live collection its members leave
    once their connection is closed), then wait until it is empty. The server bounds the
    wait; a close that fails (the peer left meanwhile) is ignored."""

    async def hook() -> None:
        logger.info("going away: closing %d websocket(s)", len(peers))
        pending = [result for peer in list(peers) if inspect.isawaitable(result := close(peer))]
        await asyncio.gather(*pending, return_exceptions=True)
        # Each peer leaves ``peers`` in its own connection task, which sets no event: poll.
        while peers:  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    return hook


class Server(uvicorn.Server):
    """uvicorn's server with the going-away step first in its shutdown (module docstring)."""

    def __init__(self, config: uvicorn.Config, app: Starlette, going_away_s: float) -> None:
        super().__init__(config)
        self.lightcone_app = app
        self.going_away_s = going_away_s

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # no new connection while the open ones go away
        hook: GoingAway | None = getattr(self.lightcone_app.state, "going_away", None)
        if hook is not None and not self.force_exit:
            try:
                async with asyncio.timeout(self.going_away_s):
                    await hook()
            except TimeoutError:
                logger.warning("websockets still open after %.1f s going away", self.going_away_s)
            except Exception:
                logger.exception("going away failed")
        await super().shutdown(sockets)


class _Protocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, minus a spurious ERROR after a denial response.

    It never marks the handshake done after a ``websocket.http.response`` (a denied upgrade,
    such as a ``fly-replay`` answer), so it logs "ASGI callable returned without completing
    handshake." for each one. Mirrors the fix of https://github.com/Kludex/uvicorn/pull/3138
    (open as of 2026-11); drop this class once a uvicorn release has it.
    """

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body"):
            self.handshake_complete = True


def serve(
    app: Starlette,
    *,
    name: str,
    host: str,
    port: int,
    ws_max_size: int,
    sndbuf: int = 0,
    going_away_s: float = GOING_AWAY_S,
) -> None:
    """Serve ``app`` until SIGINT/SIGTERM; logs the bound address (useful with port 0)."""
    sockets = bind(host, port, sndbuf=sndbuf)
    bound = sockets[0].getsockname()
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    logger.info("lightcone %s listening on http://%s:%d", name, shown, bound[1])
    config = uvicorn.Config(
        app,
        ws=_Protocol,
        ws_max_size=ws_max_size,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    Server(config, app, going_away_s).run(sockets=sockets)
