"""Settings of ``lightcone core`` (each field: environment variable, default, meaning)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core_region.db import POSTGRES_SCHEMES, is_postgres
from core_region.store import MAX_SOURCES_COUNTED
from shared.config import positive, setting
from shared.protocol import (
    DEFAULT_MAX_AGE_MS,
    MAX_LINK_MESSAGE_BYTES,
    MAX_MAX_AGE_MS,
    MAX_UP_FRAME_BYTES,
)
from shared.settings import NodeSettings, node_default

RESEND_WINDOW_S = 24 * 3600.0
"""How long a client may resend an unacknowledged search (the demo page's
``RESEND_WINDOW_MS``): the retention of search ids must outlast it."""


@dataclass(frozen=True, slots=True)
class CoreSettings(NodeSettings):
    """``lightcone core``'s settings; those an edge declares too are in :class:`NodeSettings`."""

    port: int = node_default("port", 8081)
    max_connections: int = node_default("max_connections", 1024)
    max_client_connections: int = node_default("max_client_connections", 64)
    data_dir: Path = setting(
        "LIGHTCONE_DATA_DIR", Path("lightcone-data"), "Folder of the SQLite database."
    )
    store: str = setting(
        "LIGHTCONE_STORE",
        "",
        "Where the core's data lives: empty = SQLite under LIGHTCONE_DATA_DIR; "
        "postgresql://user:pass@host:port/db = that PostgreSQL database.",
    )
    broker: str = setting(
        "LIGHTCONE_BROKER",
        "",
        "redis://host:port/db of the broker several core nodes on one store share (change "
        "notifications, cursor relay, strict room order); empty = this node is the store's "
        "only core node.",
    )
    broker_namespace: str = setting(
        "LIGHTCONE_BROKER_NAMESPACE",
        "",
        "Prefix of this store's channels and keys on the broker; empty = derived from the "
        "store's location (URL without password), so nodes that name the store alike share it.",
    )
    corpus: Path | None = setting(
        "LIGHTCONE_CORPUS",
        None,
        "term<TAB>weight file (plain or gzip) that seeds an empty database; "
        "default: the shipped world-cities corpus.",
    )
    admin_token: str | None = setting(
        "LIGHTCONE_ADMIN_TOKEN", None, "Bearer token of the admin API (dev token on loopback)."
    )
    suggest_stale_ok: bool = setting(
        "LIGHTCONE_SUGGEST_STALE_OK", True, "Default of the suggest flag (true = tolerant)."
    )
    cursors_stale_ok: bool = setting(
        "LIGHTCONE_CURSORS_STALE_OK", True, "Default of the cursors flag (true = tolerant)."
    )
    bounded_max_age_ms: int = setting(
        "LIGHTCONE_BOUNDED_MAX_AGE_MS",
        DEFAULT_MAX_AGE_MS,
        f"Bound of a flag set to bounded without max_age_ms, and of a read that asks for "
        f"bounded when its feature is strict (1..{MAX_MAX_AGE_MS} ms; three heartbeats).",
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
    node_lease_s: float = setting(
        "LIGHTCONE_NODE_LEASE_S",
        15.0,
        "Lease a core node holds on its store, renewed every third of it: another node on "
        "the store is refused while it runs (a node that died on another host frees it after "
        "this long).",
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
    max_link_message_bytes: int = setting(
        "LIGHTCONE_MAX_LINK_MESSAGE_BYTES",
        MAX_LINK_MESSAGE_BYTES,
        "Largest message the core accepts from an edge (at least the edges' frame budget).",
    )

    def __post_init__(self) -> None:
        NodeSettings.__post_init__(self)
        positive(self, "search_boost", "hot_threshold", "compact_after")
        positive(self, "search_retention_s", "prune_every_s", "prune_batch", "node_lease_s")
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
        if self.max_link_message_bytes < MAX_UP_FRAME_BYTES:
            raise ValueError(
                f"Config 'LIGHTCONE_MAX_LINK_MESSAGE_BYTES' must be at least {MAX_UP_FRAME_BYTES}, "
                "the largest frame an edge sends."
            )
        if self.store and not is_postgres(self.store):
            raise ValueError(
                f"Config 'LIGHTCONE_STORE' must be empty (SQLite) or a URL starting with "
                f"{' or '.join(POSTGRES_SCHEMES)}, e.g. postgresql://user:pass@host:5432/db."
            )
        if self.broker and not self.broker.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                "Config 'LIGHTCONE_BROKER' must be empty (one core node) or a URL starting "
                "with redis://, rediss:// or unix://, e.g. redis://127.0.0.1:6379/0."
            )
        if not 1 <= self.bounded_max_age_ms <= MAX_MAX_AGE_MS:
            raise ValueError(
                f"Config 'LIGHTCONE_BOUNDED_MAX_AGE_MS' must be 1..{MAX_MAX_AGE_MS}, "
                f"got {self.bounded_max_age_ms}."
            )
        if self.publish_delay_ms < 0 or self.min_searches < 0:
            raise ValueError("Config 'LIGHTCONE_PUBLISH_DELAY_MS' and MIN_SEARCHES must be >= 0.")

    @property
    def store_location(self) -> Path | str:
        """What :meth:`core_region.store.Store.open` opens: the URL, or the SQLite file."""
        return self.store or self.data_dir / "lightcone.db"
