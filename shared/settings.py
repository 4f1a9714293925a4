"""What the core and the edges both declare: the listener, the link, and the bounds they must
agree on, in one base class (:class:`NodeSettings`) that ``CoreSettings`` and ``EdgeSettings``
inherit.

Each setting here is declared once: one variable, one default, one help text, one validation.
A setting whose default differs by process (the port, the connection caps: the core serves a
few edges and an admin, an edge serves the public) keeps its variable and help here and takes
the process's default with :func:`node_default`. ``docs/operations.md`` lists the settings
per process (§2, §3) and which of them both sides must agree on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from shared import roomtoken
from shared.config import positive, setting


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """Settings both processes read. Subclasses validate these by calling
    ``NodeSettings.__post_init__(self)`` from their own ``__post_init__``."""

    host: str = setting("LIGHTCONE_HOST", "127.0.0.1", "Address to listen on.")
    port: int = setting("LIGHTCONE_PORT", 8080, "TCP port to listen on.")
    region: str = setting(
        "LIGHTCONE_REGION",
        "local",
        "Region code: echoed in an edge's answers, reported in the core's status.",
        fallback="FLY_REGION",
    )
    link_token: str | None = setting(
        "LIGHTCONE_LINK_TOKEN",
        None,
        "Token the edges present to the core on the link (dev token on loopback).",
    )
    room_secret: str | None = setting(
        "LIGHTCONE_ROOM_SECRET",
        None,
        "Secret (at least 32 bytes) that signs room tokens: the core mints with it "
        "(POST /admin/room-tokens), edges check joins with it (required with "
        "LIGHTCONE_ROOM_AUTH=token).",
    )

    heartbeat_s: float = setting(
        "LIGHTCONE_HEARTBEAT_S", 1.0, "Interval of link heartbeats, both ways."
    )
    link_timeout_s: float = setting(
        "LIGHTCONE_LINK_TIMEOUT_S", 5.0, "Silence after which a link is closed, both sides."
    )
    max_search_batch: int = setting(
        "LIGHTCONE_MAX_SEARCH_BATCH",
        500,
        "Most searches in one batch on the link (an edge's must not exceed the core's).",
    )
    max_limit: int = setting(
        "LIGHTCONE_MAX_LIMIT",
        20,
        "Largest 'limit' of a suggestion request: the depth of the core's top lists (keep "
        "the edges' equal to the core's).",
    )
    presence_timeout_s: float = setting(
        "LIGHTCONE_PRESENCE_TIMEOUT_S",
        20.0,
        "A cursor member silent this long (on its edge), or whose edge stays disconnected "
        "this long (on the core), is removed everywhere.",
    )

    max_connections: int = setting(
        "LIGHTCONE_MAX_CONNECTIONS",
        10000,
        "Open connections (HTTP and websocket) on the listener; beyond it: 503, closed.",
    )
    max_client_connections: int = setting(
        "LIGHTCONE_MAX_CLIENT_CONNECTIONS",
        1024,
        "Open connections from one client address (an IPv6 /64); beyond it: 503, closed.",
    )
    read_timeout_s: float = setting(
        "LIGHTCONE_READ_TIMEOUT_S",
        10.0,
        "A request must arrive whole (head and body) this soon after its first byte (or "
        "after the connection opened); else the connection is closed.",
    )
    handshake_timeout_s: float = setting(
        "LIGHTCONE_HANDSHAKE_TIMEOUT_S",
        10.0,
        "A websocket's opening handshake must complete this soon after its request.",
    )
    http_rate: float = setting(
        "LIGHTCONE_HTTP_RATE",
        100.0,
        "Requests per second one client address may make (sustained): to /suggest and "
        "/search on an edge, to the admin API on the core.",
    )
    http_burst: int = setting(
        "LIGHTCONE_HTTP_BURST",
        200,
        "Requests one client address may make there in a burst.",
    )

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"Config 'LIGHTCONE_PORT' must be 0..65535, got {self.port}.")
        positive(self, "heartbeat_s", "link_timeout_s", "max_search_batch", "max_limit")
        positive(self, "presence_timeout_s", "max_connections", "max_client_connections")
        positive(self, "read_timeout_s", "handshake_timeout_s", "http_rate", "http_burst")
        if self.link_timeout_s <= self.heartbeat_s:
            raise ValueError("Config 'LIGHTCONE_LINK_TIMEOUT_S' must exceed LIGHTCONE_HEARTBEAT_S.")
        if self.room_secret:
            roomtoken.check_secret(self.room_secret, "Config 'LIGHTCONE_ROOM_SECRET'")


def node_default(name: str, default: Any) -> Any:
    """The :class:`NodeSettings` field ``name`` with another default: same variable, fallback
    and help. Declare it in a subclass as ``port: int = node_default("port", 8081)``.

    Raises:
        KeyError: ``NodeSettings`` has no field ``name``.
    """
    base = {f.name: f for f in dataclasses.fields(NodeSettings)}[name]
    return setting(
        base.metadata["env"], default, base.metadata["help"], fallback=base.metadata["fallback"]
    )
