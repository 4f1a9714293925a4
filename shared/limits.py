"""Budgets of a node's listener, the same on edge and core: connections and HTTP request rates.

* :class:`ConnectionBudget` (pure): at most ``max_total`` open connections on the listener,
  at most ``max_per_client`` of them from one client address. ``shared.server`` asks it on
  every accepted socket and returns the slot when the socket closes.
* :class:`ClientRate` and :class:`HttpRateLimit` (ASGI middleware): 429 with a JSON body and
  ``Retry-After`` once a client is over its HTTP rate (a :class:`~shared.ratelimit.BucketTable`)
  under the path prefixes it guards.

A *client address* is the peer's IP address (``request.client.host``), or the value of a
proxy's header when the node is configured to trust one; see :func:`client_address`. An
IPv6 client is keyed by its /64 (one host usually holds a whole /64), an IPv4-mapped IPv6
address by its IPv4 address.
"""

from __future__ import annotations

import functools
import http
import ipaddress
import json
import math
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge

if TYPE_CHECKING:
    from shared.settings import NodeSettings
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.errors import LightconeError, RateLimited, Unavailable
from shared.http import Endpoint
from shared.ratelimit import BucketTable

SERVER_FULL = Unavailable("the server is at its connection limit", code="server_full")
CLIENT_FULL = Unavailable(
    "too many connections from this client address", code="too_many_connections"
)


MAX_NAME_CHARS = 64
"""A client "address" that is not an IP address is cut to this length (keys stay small)."""


@functools.lru_cache(maxsize=4096)
def client_key(host: str) -> str:
    """The key of a client address (module docstring): IPv6 by /64, mapped IPv4 unwrapped.
    Anything that is not an IP address (a test client's name) is its own key. Cached (a
    bounded LRU): parsing an address costs more than the rest of a rate check."""
    try:
        address = ipaddress.ip_address(host.strip())
    except ValueError:
        return host[:MAX_NAME_CHARS]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def client_address(
    peer: str | None, headers: Collection[tuple[bytes, bytes]], trusted_header: str | None
) -> str:
    """The key of the client that sent a request: from ``trusted_header`` when it is set and
    holds an IP address (the last entry of its last line: the one the trusted proxy wrote,
    whether it merges into the client's line or appends a line of its own), else from the
    peer.
    """
    if trusted_header:
        wanted = trusted_header.lower().encode("latin-1")
        lines = [value for name, value in headers if name == wanted]
        if lines:
            last = lines[-1].decode("latin-1").rsplit(",", 1)[-1].strip()
            if _is_ip(last):
                return client_key(last)
    return client_key(peer or "")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class ConnectionBudget:
    """Open connections, in total and per client address. Pure; the counts never go negative.

    A connection is first :meth:`opened` (the global cap), then :meth:`claim`-ed for its
    client address (the per-client cap) as soon as the address is known, and finally
    :meth:`closed` with the address it claimed, if any.
    """

    def __init__(self, max_total: int, max_per_client: int) -> None:
        self.max_total = max_total
        self.max_per_client = max_per_client
        self.total = 0
        self._by_client: dict[str, int] = {}  # only addresses with open connections

    def open(self) -> bool:
        """Admit one more connection unless ``max_total`` are open."""
        if self.total >= self.max_total:
            return False
        self.total += 1
        return True

    def claim(self, client: str) -> bool:
        """Count an admitted connection against ``client``, unless it has its cap already."""
        held = self._by_client.get(client, 0)
        if held >= self.max_per_client:
            return False
        self._by_client[client] = held + 1
        return True

    def close(self, client: str | None) -> None:
        """An admitted connection closed; ``client`` is what it claimed (``None``: nothing)."""
        self.total = max(0, self.total - 1)
        if client is not None and client in self._by_client:
            left = self._by_client[client] - 1
            if left > 0:
                self._by_client[client] = left
            else:
                del self._by_client[client]

    def held_by(self, client: str) -> int:
        return self._by_client.get(client, 0)


@dataclass(frozen=True, slots=True)
class ListenerMetrics:
    """The listener's metrics, the same on edge and core (see docs/operations.md)."""

    open: Gauge
    refused: Counter
    timeouts: Counter
    http_limited: Counter

    @classmethod
    def register(cls, registry: CollectorRegistry) -> ListenerMetrics:
        return cls(
            open=Gauge("lightcone_connections_open", "Open client connections", registry=registry),
            refused=Counter(
                "lightcone_connections_refused",
                "Connections refused over a connection cap",
                ["code"],
                registry=registry,
            ),
            timeouts=Counter(
                "lightcone_connection_timeouts",
                "Connections closed for an unfinished request head or websocket handshake",
                ["phase"],
                registry=registry,
            ),
            http_limited=Counter(
                "lightcone_http_rate_limited",
                "HTTP requests answered 429 over the per-client rate",
                ["route"],
                registry=registry,
            ),
        )


@dataclass(frozen=True, slots=True)
class ListenerBudgets:
    """What ``shared.server`` needs from an app to guard its listener (``app.state.budgets``)."""

    connections: ConnectionBudget
    read_timeout_s: float
    handshake_timeout_s: float
    trusted_header: str | None
    metrics: ListenerMetrics

    @classmethod
    def create(
        cls,
        metrics: ListenerMetrics,
        *,
        max_connections: int,
        max_client_connections: int,
        read_timeout_s: float,
        handshake_timeout_s: float,
        trusted_header: str | None = None,
    ) -> ListenerBudgets:
        budget = ConnectionBudget(max_connections, max_client_connections)
        metrics.open.set_function(lambda: budget.total)
        return cls(budget, read_timeout_s, handshake_timeout_s, trusted_header, metrics)

    @classmethod
    def of_node(
        cls, metrics: ListenerMetrics, settings: NodeSettings, trusted_header: str | None = None
    ) -> ListenerBudgets:
        """The budgets a node's settings name (both node kinds declare them alike)."""
        return cls.create(
            metrics,
            max_connections=settings.max_connections,
            max_client_connections=settings.max_client_connections,
            read_timeout_s=settings.read_timeout_s,
            handshake_timeout_s=settings.handshake_timeout_s,
            trusted_header=trusted_header,
        )


def error_response(exc: LightconeError, *extra: tuple[str, str]) -> bytes:
    """A whole HTTP/1.1 response for ``exc`` that closes the connection (written raw on a
    socket the app never sees)."""
    body = json.dumps(exc.to_json()).encode()
    head = [
        f"HTTP/1.1 {exc.status} {http.HTTPStatus(exc.status).phrase}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
        *(f"{name}: {value}" for name, value in extra),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class ClientRate:
    """The per-client HTTP rate of a node: requests spend a token of their client's bucket;
    over the rate they are answered 429 ``rate_limited`` with ``Retry-After`` (whole
    seconds until the next token, at least 1), counted by route.

    Applied to path prefixes by :class:`HttpRateLimit`, or to one hot endpoint by
    :meth:`guard`. Costs about 0.5 µs a request (a cached client key, one bucket in an LRU
    table).
    """

    def __init__(
        self,
        table: BucketTable,
        metrics: ListenerMetrics,
        *,
        trusted_header: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.table = table
        self.metrics = metrics
        self.trusted_header = trusted_header
        self.clock = clock

    def refusal(self, scope: Scope, route: Callable[[str], str]) -> Response | None:
        """``None`` if the request's client is within its rate (a token is spent), else the
        429 to answer (counted under ``route(path)``)."""
        peer = scope.get("client")
        if self.trusted_header is None:
            client = client_key(peer[0] if peer else "")
        else:
            client = client_address(
                peer[0] if peer else None, scope["headers"], self.trusted_header
            )
        wait = self.table.retry_after(client, self.clock())
        if wait <= 0:
            return None
        self.metrics.http_limited.labels(route(scope["path"])).inc()
        exc = RateLimited(f"over {self.table.rate:g} requests per second: slow down")
        headers = {"retry-after": str(max(1, math.ceil(wait)))}
        return JSONResponse(exc.to_json(), exc.status, headers=headers)

    def guard(self, route: str, endpoint: Endpoint) -> Endpoint:
        """``endpoint`` under this rate, checked inside it: on a hot route this spares the
        middleware layer every request would pass (about half the cost of the check)."""

        def label(path: str) -> str:
            return route

        async def guarded(request: Request) -> Response:
            refused = self.refusal(request.scope, label)
            if refused is not None:
                return refused
            return await endpoint(request)

        return guarded


class HttpRateLimit:
    """ASGI middleware: HTTP requests to ``routes`` (path prefixes) are under ``rate``
    (:class:`ClientRate`). Other routes and websockets pass untouched."""

    def __init__(self, app: ASGIApp, *, rate: ClientRate, routes: tuple[str, ...]) -> None:
        self.app = app
        self.rate = rate
        self.routes = routes

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # A plain function that hands back the awaitable of the app it picks: no coroutine
        # layer of its own on every request (the budget of the hot path). One bucket per
        # client covers every guarded route, so the route is only looked up for a refusal.
        if scope["type"] == "http" and scope["path"].startswith(self.routes):
            refused = self.rate.refusal(scope, self._route)
            if refused is not None:
                return refused(scope, receive, send)
        return self.app(scope, receive, send)

    def _route(self, path: str) -> str:
        return next(route for route in self.routes if path.startswith(route))
