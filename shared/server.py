"""Run an ASGI app under uvicorn the way every lightcone process does.

Budgets of the listener (``app.state.budgets``, a :class:`shared.limits.ListenerBudgets`):
uvicorn has no cap on connections per client and no timeout for reading a request, so an
idle or half-open socket would stay forever. Our HTTP protocol (a subclass of uvicorn's
httptools protocol) and websocket protocol (a subclass of its websockets-sansio protocol)
add them:

* every accepted socket takes a slot of the global cap, and one of its client address's cap
  (at once from the peer address; after the first request head when the address comes from
  a trusted proxy header). Over a cap the socket gets a 503 JSON answer and is closed;
* a request must arrive whole (head and body) within ``read_timeout_s`` of its first byte
  (of the connection, for the first request); else the socket is closed (checked every
  half timeout: a stalled request goes within 1 to 1.5 times the timeout);
* a websocket's opening handshake must complete within ``handshake_timeout_s`` of its
  request; else the socket is closed.

The slot is returned when the socket closes, whichever protocol holds it by then.

Shutdown (SIGTERM or SIGINT) goes: stop listening; the app's "going away" hook, if it set
one in ``app.state.going_away``, closes its websockets with 1001 and waits for their closing
handshakes (at most ``going_away_s``); then uvicorn's own shutdown (it would close any
websocket still open with 1012) and the lifespan shutdown. uvicorn closes websockets before
the lifespan shutdown runs, so an app can only say 1001 from this hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import resource
import socket
from collections.abc import Awaitable, Callable, Collection
from typing import Any, ClassVar, Literal, TypeVar, cast

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect
from uvicorn._types import ASGI3Application, ASGISendEvent
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from shared.errors import LightconeError
from shared.limits import CLIENT_FULL, SERVER_FULL, ListenerBudgets, client_address, error_response

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
    if level.lower() != "debug":
        # httpx logs every request it makes at INFO: the CLI's own calls (control API,
        # /status) are not news; their failures are raised and reported.
        logging.getLogger("httpx").setLevel(logging.WARNING)


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


async def close_quietly(websocket: WebSocket, code: int, reason: str = "") -> None:
    """Close a server-side ``websocket`` with ``code``. If the peer hung up, or another task
    (a connection's sender) closed it first, there is nothing left to close: Starlette raises
    then, and that is never an error of ours (nor one to log as a crash)."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        await websocket.close(code, reason)


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
    """uvicorn's websockets-sansio protocol, with a handshake deadline and the connection's
    slot (module docstring), minus a spurious ERROR after a denial response.

    uvicorn never marks the handshake done after a ``websocket.http.response`` (a denied
    upgrade, such as a ``fly-replay`` answer), so it logs "ASGI callable returned without
    completing handshake." for each one. Mirrors the fix of
    https://github.com/Kludex/uvicorn/pull/3138 (open as of 2026-11); drop ``send`` once a
    uvicorn release has it.
    """

    _budgets: ListenerBudgets | None = None
    _client: str | None = None
    _handshake_timer: asyncio.TimerHandle | None = None

    def adopt(self, budgets: ListenerBudgets, client: str | None) -> None:
        """Take over the upgraded HTTP connection's slot and start the handshake deadline."""
        self._budgets, self._client = budgets, client
        self._handshake_timer = self.loop.call_later(
            budgets.handshake_timeout_s, self._handshake_expired
        )

    def _handshake_expired(self) -> None:
        if not self.handshake_complete and not self.transport.is_closing():
            assert self._budgets is not None
            self._budgets.metrics.timeouts.labels("handshake").inc()
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
        if self._budgets is not None:
            self._budgets.connections.close(self._client)
            self._budgets = None
        super().connection_lost(exc)

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body"):
            self.handshake_complete = True


class _HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the listener's budgets (module docstring).

    Nothing is added per request (the budgets must not cost the hot path): the caps act on
    ``connection_made``, and the read deadline is one timer per connection that looks at
    uvicorn's own state of the connection (see :meth:`_reading`). Relies on uvicorn
    internals (``cycle``, ``pipeline``, ``timeout_keep_alive_task``, ``flow``,
    ``handle_websocket_upgrade``): uvicorn is pinned exactly in pyproject.toml, and
    tests/shared/test_listener.py and tests/hostile/test_budgets.py prove each budget on a
    real server.
    """

    budgets: ClassVar[ListenerBudgets]
    _admitted = False  # holds a slot of the global cap
    _claimed: str | None = None  # the client address whose cap it counts against
    _refusal: LightconeError | None = None  # answer every request with this, then close
    _read_timer: asyncio.TimerHandle | None = None
    _stalled: tuple[object, float] | None = None  # (what it was reading, since when)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        budgets = self.budgets
        if not budgets.connections.open():
            self._refuse_now(transport, SERVER_FULL)
            return
        self._admitted = True
        super().connection_made(transport)
        if budgets.trusted_header is None:  # the peer is the client: its cap applies at once
            client = client_address(self.client[0] if self.client else None, (), None)
            if not budgets.connections.claim(client):
                self._refuse_now(transport, CLIENT_FULL)
                return
            self._claimed = client
        self._stalled = (None, self.loop.time())  # the first request counts from the accept
        self._read_timer = self.loop.call_later(budgets.read_timeout_s / 2, self._read_check)

    def _refuse_now(self, transport: asyncio.Transport, exc: LightconeError) -> None:
        self.budgets.metrics.refused.labels(exc.code).inc()
        transport.write(error_response(exc, ("retry-after", "1")))
        transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._admitted:
            return  # refused in connection_made: uvicorn never saw it
        self._admitted = False
        self._cancel_read_timer()
        self.budgets.connections.close(self._claimed)
        super().connection_lost(exc)

    # --- the read deadline ----------------------------------------------------------------
    #
    # Every half ``read_timeout_s`` the timer asks whether the connection is reading a
    # request (:meth:`_reading`) and which one (the current cycle: uvicorn makes a new one
    # for each request head). A request seen reading since ``read_timeout_s`` or more is
    # closed: a stalled request goes within 1 to 1.5 times the timeout of its first byte.

    def _cancel_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _reading(self) -> bool:
        """Is the client in the middle of sending a request (head or body)?"""
        cycle = self.cycle
        if cycle is None:
            return True  # the first head is not whole yet
        if not cycle.response_complete:
            return (
                cycle.more_body and not self.flow.read_paused
            )  # body arriving (not held up by us)
        # Answered: idle under uvicorn's keep-alive timer, or a next head has begun (data
        # cancels that timer; a whole head would have made a new cycle).
        return self.timeout_keep_alive_task is None and not self.pipeline

    def _read_check(self) -> None:
        timeout = self.budgets.read_timeout_s
        now = self.loop.time()
        if self.transport.is_closing():
            self._read_timer = None
            return
        if not self._reading():
            self._stalled = None
        elif self._stalled is None or self._stalled[0] is not self.cycle:
            self._stalled = (self.cycle, now)
        elif now - self._stalled[1] >= timeout:
            self._read_timer = None
            self.budgets.metrics.timeouts.labels("read").inc()
            self.transport.close()
            return
        self._read_timer = self.loop.call_later(timeout / 2, self._read_check)

    def handle_websocket_upgrade(self) -> None:
        self._cancel_read_timer()
        if self._refusal is not None:
            self.transport.write(error_response(self._refusal, ("retry-after", "1")))
            self.transport.close()
            return
        super().handle_websocket_upgrade()
        protocol = self.transport.get_protocol()
        if isinstance(protocol, _Protocol):  # the slot is the websocket's now
            self._admitted = False
            protocol.adopt(self.budgets, self._claimed)


class _TrustingHttpProtocol(_HttpProtocol):
    """Behind a proxy that names the client in a header: the per-client cap is claimed when
    the first request head arrives (the peer is the proxy, shared by every client)."""

    def on_headers_complete(self) -> None:
        if self._claimed is None and self._refusal is None:
            budgets = self.budgets
            client = client_address(
                self.client[0] if self.client else None, self.headers, budgets.trusted_header
            )
            if budgets.connections.claim(client):
                self._claimed = client
            else:
                budgets.metrics.refused.labels(CLIENT_FULL.code).inc()
                self._refusal = CLIENT_FULL
                self.app = _refusal_app(CLIENT_FULL)  # this request and any after it
        super().on_headers_complete()


def _refusal_app(exc: LightconeError) -> ASGI3Application:
    """An app that answers every request with ``exc`` and has uvicorn close the connection."""
    headers = {"retry-after": "1", "connection": "close"}
    return cast(ASGI3Application, JSONResponse(exc.to_json(), exc.status, headers))


def _guarded(budgets: ListenerBudgets) -> type[_HttpProtocol]:
    """The HTTP protocol class of a listener with ``budgets``."""
    base = _HttpProtocol if budgets.trusted_header is None else _TrustingHttpProtocol
    return type("GuardedHttpProtocol", (base,), {"budgets": budgets})


FD_RESERVE = 64
"""File descriptors kept beyond the connection cap (listeners, the database, logs, links)."""


def _fit_fd_limit(max_connections: int) -> None:
    """Raise the soft open-files limit so that the connection cap, not the kernel, is hit
    first; warn if the hard limit does not allow it."""
    needed = max_connections + FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < needed:
            logger.warning(
                "open-files limit %d is below the connection cap %d + %d: lower "
                "LIGHTCONE_MAX_CONNECTIONS or raise the limit",
                target,
                max_connections,
                FD_RESERVE,
            )


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
    budgets: ListenerBudgets | None = getattr(app.state, "budgets", None)
    if budgets is not None:
        _fit_fd_limit(budgets.connections.max_total)
    Server(uvicorn_config(app, ws_max_size=ws_max_size), app, going_away_s).run(sockets=sockets)


def uvicorn_config(
    app: Starlette, *, ws_max_size: int, lifespan: Literal["on", "off"] = "on"
) -> uvicorn.Config:
    """uvicorn's configuration for ``app``: our protocols, guarded by ``app.state.budgets``
    when the app sets it (module docstring)."""
    budgets: ListenerBudgets | None = getattr(app.state, "budgets", None)
    http: Any = "auto"
    if budgets is not None:
        http = _guarded(budgets)
    return uvicorn.Config(
        app,
        http=http,
        ws=_Protocol,
        ws_max_size=ws_max_size,
        log_config=None,
        access_log=False,
        lifespan=lifespan,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
