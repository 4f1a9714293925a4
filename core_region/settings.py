"""Settings of ``lightcone core`` (each field: environment variable, default, meaning)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core_region.store import MAX_SOURCES_COUNTED
from shared import roomtoken
from shared.config import positive as _positive, setting
from shared.protocol import MAX_LINK_MESSAGE_BYTES, MAX_UP_FRAME_BYTES

RESEND_WINDOW_S = 24 * 3600.0
"""How long a client may resend an unacknowledged search (the demo page's
``RESEND_WINDOW_MS``): the retention of search ids must outlast it."""


@dataclass(frozen=True, slots=True)
class CoreSettings:
    host: str = setting("LIGHTCONE_HOST", "127.0.0.1", "Address to listen on.")
    port: int = setting("LIGHTCONE_PORT", 8081, "TCP port to listen on.")
    data_dir: Path = setting(
        "LIGHTCONE_DATA_DIR", Path("lightcone-data"), "Folder of the SQLite database."
    )
    corpus: Path | None = setting(
        "LIGHTCONE_CORPUS",
        None,
        "term<TAB>weight file (plain or gzip) that seeds an empty database; "
        "default: the shipped world-cities corpus.",
    )
    region: str = setting(
        "LIGHTCONE_REGION", "local", "Region code reported in status.", fallback="FLY_REGION"
    )
    link_token: str | None = setting(
        "LIGHTCONE_LINK_TOKEN", None, "Token edges present on the link (dev token on loopback)."
    )
    admin_token: str | None = setting(
        "LIGHTCONE_ADMIN_TOKEN", None, "Bearer token of the admin API (dev token on loopback)."
    )
    room_secret: str | None = setting(
        "LIGHTCONE_ROOM_SECRET",
        None,
        "Secret (at least 32 bytes) that signs room tokens minted by POST /admin/room-tokens; "
        "the same as the edges'.",
    )
    suggest_stale_ok: bool = setting(
        "LIGHTCONE_SUGGEST_STALE_OK", True, "Default of the suggest flag (true = tolerant)."
    )
    cursors_stale_ok: bool = setting(
        "LIGHTCONE_CURSORS_STALE_OK", True, "Default of the cursors flag (true = tolerant)."
    )
    search_boost: int = setting(
        "LIGHTCONE_SEARCH_BOOST", 1000, "Weight one logged search adds to its term."
    )
    min_searches: int = setting(
        "LIGHTCONE_MIN_SEARCHES", 1, "Searches a new term needs before it is suggested."
    )
    min_sources: int = setting(
        "LIGHTCONE_MIN_SOURCES",
        3,
        f"Distinct sources (hashed client addresses) a new term's searches must come from "
        f"before it is suggested (0..{MAX_SOURCES_COUNTED}).",
    )
    search_retention_s: float = setting(
        "LIGHTCONE_SEARCH_RETENTION_S",
        7 * 24 * 3600.0,
        "Age after which logged searches are pruned (ids are idempotent this long).",
    )
    prune_every_s: float = setting(
        "LIGHTCONE_PRUNE_EVERY_S", 600.0, "Interval of the pruning of old searches."
    )
    prune_batch: int = setting(
        "LIGHTCONE_PRUNE_BATCH", 1000, "Most searches one pruning transaction deletes."
    )
    restored_from: str = setting(
        "LIGHTCONE_RESTORED_FROM",
        "",
        "Name of the backup the database was restored from: a new name rotates the epoch "
        "once at start.",
    )
    publish_delay_ms: int = setting(
        "LIGHTCONE_PUBLISH_DELAY_MS",
        20,
        "Longest time a committed change waits to be batched into a delta.",
    )
    compact_after: int = setting(
        "LIGHTCONE_COMPACT_AFTER",
        10000,
        "Term changes since the last snapshot after which a new snapshot is published.",
    )
    hot_threshold: int = setting(
        "LIGHTCONE_HOT_THRESHOLD",
        64,
        "A prefix with more completions than this gets a precomputed top list.",
    )
    max_limit: int = setting(
        "LIGHTCONE_MAX_LIMIT", 20, "Largest 'limit' of a suggestion request (list depth)."
    )
    heartbeat_s: float = setting(
        "LIGHTCONE_HEARTBEAT_S", 1.0, "Interval of link heartbeats, both ways."
    )
    link_timeout_s: float = setting(
        "LIGHTCONE_LINK_TIMEOUT_S", 5.0, "Silence after which a link is closed, both sides."
    )
    max_link_message_bytes: int = setting(
        "LIGHTCONE_MAX_LINK_MESSAGE_BYTES",
        MAX_LINK_MESSAGE_BYTES,
        "Largest message the core accepts from an edge (at least the edges' frame budget).",
    )
    max_search_batch: int = setting(
        "LIGHTCONE_MAX_SEARCH_BATCH", 500, "Most searches in one batch from an edge."
    )

    max_connections: int = setting(
        "LIGHTCONE_MAX_CONNECTIONS",
        1024,
        "Open connections (edge links and HTTP) on the listener; beyond it: 503, closed.",
    )
    max_client_connections: int = setting(
        "LIGHTCONE_MAX_CLIENT_CONNECTIONS",
        64,
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
        "Requests per second one client address may make to the admin API (sustained).",
    )
    http_burst: int = setting(
        "LIGHTCONE_HTTP_BURST", 200, "Admin API requests one client address may make in a burst."
    )

    presence_timeout_s: float = setting(
        "LIGHTCONE_PRESENCE_TIMEOUT_S",
        20.0,
        "Cursor members of an edge that stays disconnected this long are removed everywhere.",
    )

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"Config 'LIGHTCONE_PORT' must be 0..65535, got {self.port}.")
        _positive(self, "search_boost", "max_limit", "hot_threshold", "max_search_batch")
        _positive(self, "heartbeat_s", "link_timeout_s", "compact_after")
        _positive(self, "max_connections", "max_client_connections", "read_timeout_s")
        _positive(self, "handshake_timeout_s", "http_rate", "http_burst")
        _positive(self, "search_retention_s", "prune_every_s", "prune_batch")
        if self.search_retention_s < RESEND_WINDOW_S:
            raise ValueError(
                f"Config 'LIGHTCONE_SEARCH_RETENTION_S' must be at least {RESEND_WINDOW_S:.0f} "
                "(the 24 hours a client may resend a search): a shorter retention would count "
                "a resent search twice."
            )
        if not 0 <= self.min_sources <= MAX_SOURCES_COUNTED:
            raise ValueError(
                f"Config 'LIGHTCONE_MIN_SOURCES' must be 0..{MAX_SOURCES_COUNTED}, "
                f"got {self.min_sources}."
            )
        if self.link_timeout_s <= self.heartbeat_s:
            raise ValueError("Config 'LIGHTCONE_LINK_TIMEOUT_S' must exceed LIGHTCONE_HEARTBEAT_S.")
        if self.max_link_message_bytes < MAX_UP_FRAME_BYTES:
            raise ValueError(
                f"Config 'LIGHTCONE_MAX_LINK_MESSAGE_BYTES' must be at least {MAX_UP_FRAME_BYTES}, "
                "the largest frame an edge sends."
            )
        if self.publish_delay_ms < 0 or self.min_searches < 0:
            raise ValueError("Config 'LIGHTCONE_PUBLISH_DELAY_MS' and MIN_SEARCHES must be >= 0.")
        if self.room_secret:
            roomtoken.check_secret(self.room_secret, "Config 'LIGHTCONE_ROOM_SECRET'")
