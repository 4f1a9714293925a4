"""All SQL of the core, written once for both engines (:mod:`core_region.db`): SQLite under
``--data-dir`` (the default) or PostgreSQL (``--store postgresql://...``).

Every write runs in one transaction that first advances the data version (the ``meta``
row ``version``, taken with ``UPDATE ... RETURNING``: on PostgreSQL that row lock serializes
every writer of the database, whatever process it is in, until it commits or rolls back), and
returns only after ``COMMIT``: an acknowledgement is never ahead of the disk, and versions are
dense, gapless and in commit order for the whole database (a rolled-back write leaves no gap).

Schema changes are the numbered :data:`~core_region.db.schema.MIGRATIONS`, each with its text
per engine where the engines differ; each runs once, in its own transaction, at start. Keys
made by an older fold (:data:`shared.folding.FOLD_VERSION`) are re-keyed once, after them
(:mod:`core_region.db.rekey`).

Bounds: a term counts at most :data:`MAX_SOURCES_COUNTED` distinct sources (``term_sources``
rows), and :meth:`Store.prune` deletes old searches and the unserved terms they leave behind
in passes of a bounded number of rows, so the database does not grow without bound from
searches that never became suggestions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from core_region.db import Connection, Engine, open_engine, rekey
from core_region.db.schema import MIGRATIONS
from core_region.suggest.catalog import TermRow
from shared.errors import StoreUnavailable
from shared.folding import FOLD_VERSION
from shared.names import from_stored, stored
from shared.protocol import Level

logger = logging.getLogger(__name__)

__all__ = [
    "MIGRATIONS",
    "MAX_SOURCES_COUNTED",
    "LoggedSearch",
    "Pruned",
    "SearchResult",
    "Seeded",
    "Store",
]

MAX_SOURCES_COUNTED = 16
"""Distinct sources kept per term (rows of ``term_sources``): the source threshold
(``LIGHTCONE_MIN_SOURCES``) can be at most this."""


def _level(stale_ok: bool, level: str | None, params: str) -> Level:
    """A stored flag. A build from before levels writes ``stale_ok`` alone: a row without a
    ``level``, or whose level disagrees with ``stale_ok``, is read from ``stale_ok``."""
    if level is None or Level(level).stale_ok != stale_ok:
        return Level.of(stale_ok)
    return Level(level, {str(k): int(v) for k, v in json.loads(params or "{}").items()})


def _flag_row(feature: str, level: Level) -> tuple[str, int, str, str]:
    return (feature, int(level.stale_ok), level.level, json.dumps(level.params, sort_keys=True))


_CHUNK = 500  # host parameters per IN (...) query, well under either engine's limit


@dataclass(frozen=True, slots=True)
class LoggedSearch:
    """A search to log: client-made ``id``, folded ``key``, display ``term``, raw ``q``, and
    the hashed ``source`` the edge saw it come from (empty: unknown, counts for none)."""

    id: str
    key: str
    term: str
    q: str
    region: str
    source: str = ""


@dataclass(frozen=True, slots=True)
class SearchResult:
    """``acks`` holds, for each search in order, the version that committed its id (now or
    earlier), or ``None`` if that id was committed with another ``q`` (a conflict).
    ``fresh`` counts the searches committed now, at ``version``."""

    acks: list[int | None]
    version: int | None
    rows: list[TermRow]
    fresh: int = 0


@dataclass(frozen=True, slots=True)
class Seeded:
    """What :meth:`Store.seed` did: the ``version`` it committed, and whether the corpus is
    the ``only`` terms (the database had none before)."""

    version: int
    only: bool


@dataclass(frozen=True, slots=True)
class CoreNodeLease:
    """A core node's lease on the store: who it is, and until when (Unix time) it holds."""

    node_id: str
    host: str
    pid: int
    region: str
    lease_until: float
    shared: bool = False
    """It shares the store with other nodes through a broker."""


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one :meth:`Store.prune` pass deleted."""

    searches: int
    terms: int


class Store:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def engine(self) -> str:
        """``sqlite`` or ``postgres``."""
        return self._engine.name

    @property
    def where(self) -> str:
        """The database, for messages: its folder, or its URL without the password."""
        return self._engine.where

    @classmethod
    async def open(cls, location: Path | str) -> Store:
        """Open (creating if needed) and migrate the database at ``location``: a SQLite file
        (a path) or a PostgreSQL URL (a ``postgresql://`` string).

        Raises:
            StoreUnavailable: PostgreSQL cannot be reached.
            ConfigError: the store's keys were made by a newer fold than this node's.
        """
        engine = await open_engine(location)
        store = cls(engine)
        try:
            await engine.migrate(MIGRATIONS)
            await store._refold()
        except BaseException:
            await engine.close()
            raise
        return store

    async def _refold(self) -> None:
        """Record the fold version of a fresh store; re-key one made by an older fold (once,
        under the version row's lock: a node that waited for it finds it done).

        A node that waits for another's re-key longer than a statement may wait (PostgreSQL's
        statement timeout) tries again, for at most :data:`~core_region.db.rekey.WAIT_S`.

        Raises:
            ConfigError: the store's keys were made by a newer fold than this node's.
            StoreUnavailable: the store cannot be reached, or another node's re-key took
                longer than that.
        """
        if await self._meta(rekey.FOLD_META) == str(FOLD_VERSION):
            return
        started = time.perf_counter()
        while True:
            try:
                async with self._engine.writing() as db:
                    old = await rekey.check(db, await _lock_head(db))
                    if old is None:
                        return
                    logger.warning(
                        "re-keying the store made by fold version %d for version %d: every "
                        "term is read and rewritten in one transaction (about 30 s a million "
                        "terms); the node is not ready until it is done",
                        old,
                        FOLD_VERSION,
                    )
                    version, plan = await rekey.rekey(db, max_sources=MAX_SOURCES_COUNTED)
                break
            except StoreUnavailable:
                if time.perf_counter() - started > rekey.WAIT_S:
                    raise
                logger.info("waiting for the store: another core node may be re-keying it")
                await asyncio.sleep(1.0)
        logger.warning(
            "re-keyed the store from fold version %d to %d at v%d in %.1f s: %d rows written "
            "(%d merged into another), %d dropped; new epoch, edges load a snapshot",
            old,
            FOLD_VERSION,
            version,
            time.perf_counter() - started,
            len(plan.rows),
            plan.merged,
            plan.dropped,
        )

    async def fold_version(self) -> int:
        """The fold version of the stored keys (:data:`shared.folding.FOLD_VERSION`)."""
        return int(await self._meta(rekey.FOLD_META) or 1)

    async def close(self) -> None:
        await self._engine.close()

    # --- reads ---------------------------------------------------------------------------

    async def version(self) -> int:
        return int(await self._meta("version") or 0)

    async def _meta(self, name: str) -> str | None:
        async with self._engine.reading() as db:
            rows = await db.fetch("SELECT value FROM meta WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    async def epoch(self) -> str:
        """A random id made when the database was created: versions compare only within it."""
        epoch = await self._meta("epoch")
        if epoch is None:  # the first node to get here makes it; every node reads that one
            async with self._engine.writing() as db:
                await db.execute(
                    "INSERT INTO meta (name, value) VALUES ('epoch', ?) ON CONFLICT DO NOTHING",
                    (uuid.uuid4().hex,),
                )
            epoch = await self._meta("epoch")
            assert epoch is not None
        return epoch

    async def set_epoch(self, epoch: str) -> None:
        """Make ``epoch`` the database's epoch (a rollback was found: see ``Hub.connect``)."""
        async with self._engine.writing() as db:
            await _set_meta(db, "epoch", epoch)

    async def note_restore(self, restored_from: str) -> str | None:
        """Rotate the epoch once per restore.

        ``restored_from`` names the backup the database was restored from
        (``LIGHTCONE_RESTORED_FROM``). If it is not the one recorded, it is recorded with a
        new epoch, which is returned; else (already done, e.g. a later restart) ``None``.
        """
        if not restored_from:
            return None
        return await self._rotate_unless("restored_from", restored_from)

    async def note_rules(self, rules: str) -> str | None:
        """Rotate the epoch when the rules that make stored rows served changed.

        ``rules`` describes them (the serving settings and the text door's limits). The
        served set then changes without a new version, so edges at the head must not keep
        what they hold: a new epoch, returned, makes every edge load a snapshot. ``None`` if
        the rules are the ones recorded.
        """
        return await self._rotate_unless("serving_rules", rules)

    async def _rotate_unless(self, name: str, value: str) -> str | None:
        """Unless ``value`` is the one recorded under ``name``: record it with a new epoch,
        in one transaction that advances no version, and return that epoch."""
        if await self._meta(name) == value:
            return None
        epoch = uuid.uuid4().hex
        async with self._write(advance=False) as (db, _):
            await _set_meta(db, "epoch", epoch)
            await _set_meta(db, name, value)
        return epoch

    async def corpus_id(self) -> str | None:
        """The id of the corpus the database was seeded from, or ``None`` if never seeded."""
        return await self._meta("corpus")

    async def terms(self) -> list[TermRow]:
        async with self._engine.reading() as db:
            return [_row(r) for r in await db.fetch(f"SELECT {_TERM_COLUMNS} FROM terms")]

    async def flags(self) -> dict[str, Level]:
        """Every feature's stored flag."""
        async with self._engine.reading() as db:
            rows = await db.fetch("SELECT feature, stale_ok, level, params FROM flags")
        return {str(f): _level(bool(ok), level, params) for f, ok, level, params in rows}

    async def counts(self) -> dict[str, int]:
        """Row counts for the admin status."""
        out: dict[str, int] = {}
        async with self._engine.reading() as db:
            for table in ("terms", "searches", "term_sources"):
                rows = await db.fetch(f"SELECT count(*) FROM {table}")
                out[table] = int(rows[0][0]) if rows else 0
        return out

    # --- writes --------------------------------------------------------------------------

    async def seed(
        self,
        entries: Iterable[tuple[str, str, int]],
        corpus_id: str,
        names: Mapping[str, Sequence[str]] | None = None,
    ) -> Seeded:
        """Load a corpus of ``(key, term, weight)`` (unique keys) and the terms' other
        ``names`` (by key) into the database, in one transaction that streams the rows
        (:meth:`core_region.db.Connection.load`: no copy of the corpus is made); returns its
        version, and whether the database had no terms before (then, until another version
        commits, its terms are exactly these rows)."""
        named = {key: stored(these) for key, these in (names or {}).items()}
        async with self._write() as (db, version):
            rows = await db.fetch("SELECT count(*) FROM (SELECT key FROM terms LIMIT 1) AS one")
            await db.load(
                "terms",
                ("key", "term", "base_weight", "version", "names"),
                ((k, t, w, version, named.get(k)) for k, t, w in entries),
                "(key) DO UPDATE SET term = excluded.term, base_weight = excluded.base_weight,"
                " names = excluded.names",
            )
            await _set_meta(db, "corpus", corpus_id)
        return Seeded(version, only=not int(rows[0][0]))

    async def init_flags(self, defaults: dict[str, Level]) -> dict[str, Level]:
        """Store ``defaults`` for features that have no stored flag yet; returns all flags."""
        async with self._engine.writing() as db:
            await db.executemany(
                "INSERT INTO flags (feature, stale_ok, level, params)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (feature) DO NOTHING",
                [_flag_row(f, level) for f, level in defaults.items()],
            )
        return await self.flags()

    async def set_flag(self, feature: str, level: Level) -> None:
        async with self._engine.writing() as db:
            await db.execute(
                "INSERT INTO flags (feature, stale_ok, level, params) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (feature) DO UPDATE SET stale_ok = excluded.stale_ok,"
                " level = excluded.level, params = excluded.params",
                _flag_row(feature, level),
            )

    async def claim_node(
        self, lease: CoreNodeLease, now: float, still_running: Callable[[int], bool]
    ) -> list[CoreNodeLease]:
        """Register ``lease`` unless another core node holds a live one (for a ``shared``
        lease: unless one of them is not shared); returns the other live leases.

        One transaction (no version taken). A lease of this host whose process is gone
        (``still_running(pid)`` false: this node crashed and was restarted) or has this
        process's id (a restarted container) is taken over; an expired lease binds no one.
        """
        async with self._write(advance=False) as (db, _):
            rows = await db.fetch(
                "SELECT node_id, host, pid, region, lease_until, shared FROM core_nodes"
                " WHERE lease_until > ? AND node_id <> ?",
                (now, lease.node_id),
            )
            live = [
                held
                for held in (_lease(r) for r in rows)
                if held.host != lease.host or (held.pid != lease.pid and still_running(held.pid))
            ]
            if not live or (lease.shared and all(held.shared for held in live)):
                await db.execute("DELETE FROM core_nodes WHERE lease_until <= ?", (now,))
                await db.execute(
                    "INSERT INTO core_nodes (node_id, host, pid, region, lease_until, shared)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (node_id) DO UPDATE SET"
                    " host = excluded.host, pid = excluded.pid, region = excluded.region,"
                    " lease_until = excluded.lease_until, shared = excluded.shared",
                    (
                        lease.node_id,
                        lease.host,
                        lease.pid,
                        lease.region,
                        lease.lease_until,
                        int(lease.shared),
                    ),
                )
        return live

    async def live_nodes(self, now: float) -> list[CoreNodeLease]:
        """The core nodes whose lease is live at ``now``, by id."""
        async with self._engine.reading() as db:
            rows = await db.fetch(
                "SELECT node_id, host, pid, region, lease_until, shared FROM core_nodes"
                " WHERE lease_until > ? ORDER BY node_id",
                (now,),
            )
        return [_lease(r) for r in rows]

    async def renew_node(self, node_id: str, lease_until: float) -> None:
        async with self._write(advance=False) as (db, _):
            await db.execute(
                "UPDATE core_nodes SET lease_until = ? WHERE node_id = ?", (lease_until, node_id)
            )

    async def release_node(self, node_id: str) -> None:
        """A clean stop: the lease ends now."""
        async with self._write(advance=False) as (db, _):
            await db.execute("DELETE FROM core_nodes WHERE node_id = ?", (node_id,))

    async def next_version(self) -> int:
        """Take the next version for a change kept outside this database (a feature with
        storage of its own, docs/extending.md): one transaction that only advances it."""
        async with self._write() as (_, version):
            pass
        return version

    # --- the published stream (core_region/suggest/feature.py) ------------------------------

    async def mark(self) -> int:
        """End a delta at the head: record the head as a mark unless it is one already;
        returns the newest mark.

        Under the version row's lock (it waits for writes in progress and holds off new
        ones), so marks are recorded in order and a mark covers every version up to it: a
        reader that sees a mark sees every mark and term-log row before it. When the head is
        marked already (a strict read with no write since the last mark) it is one read.
        """
        async with self._engine.reading() as db:
            rows = await db.fetch(
                "SELECT (SELECT value FROM meta WHERE name = 'version'),"
                " (SELECT max(version) FROM marks)"
            )
        if rows and rows[0][1] is not None and int(str(rows[0][0])) == int(str(rows[0][1])):
            return int(str(rows[0][1]))
        async with self._engine.writing() as db:
            head = await _lock_head(db)
            rows = await db.fetch("SELECT max(version) FROM marks")
            last = int(str(rows[0][0])) if rows and rows[0][0] is not None else -1
            if head > last:
                await db.execute("INSERT INTO marks (version) VALUES (?)", (head,))
                return head
        return last

    async def last_mark(self) -> int:
        """The newest mark (-1: none yet)."""
        async with self._engine.reading() as db:
            rows = await db.fetch("SELECT max(version) FROM marks")
        return int(str(rows[0][0])) if rows and rows[0][0] is not None else -1

    async def marks(self, after: int, upto: int | None = None) -> list[int]:
        """The marks after ``after`` (up to ``upto``), in order."""
        async with self._engine.reading() as db:
            if upto is None:
                rows = await db.fetch(
                    "SELECT version FROM marks WHERE version > ? ORDER BY version", (after,)
                )
            else:
                rows = await db.fetch(
                    "SELECT version FROM marks WHERE version > ? AND version <= ? ORDER BY version",
                    (after, upto),
                )
        return [int(str(r[0])) for r in rows]

    async def logged(self, after: int, upto: int) -> list[tuple[int, TermRow]]:
        """The term-log rows of the versions after ``after`` up to ``upto``: ``(version,
        row)`` in version order, then key order."""
        async with self._engine.reading() as db:
            rows = await db.fetch(
                f"SELECT version, {_TERM_COLUMNS} FROM term_log"
                " WHERE version > ? AND version <= ? ORDER BY version, key",
                (after, upto),
            )
        return [(int(str(r[0])), _row(r[1:])) for r in rows]

    async def base(self, rules: str) -> tuple[int, bytes] | None:
        """The newest base snapshot made under ``rules``: ``(version, data)``, or ``None``."""
        async with self._engine.reading() as db:
            return await _newest_base(db, rules)

    async def newest_base_key(self) -> str | None:
        """The ``rules`` key of the newest base snapshot, or ``None`` if there is none."""
        async with self._engine.reading() as db:
            rows = await db.fetch("SELECT rules FROM snapshots ORDER BY version DESC LIMIT 1")
        return str(rows[0][0]) if rows else None

    async def first_base(
        self,
        rules: str,
        build: Callable[[int, Callable[[], Awaitable[list[TermRow]]]], Awaitable[bytes]],
    ) -> tuple[int, bytes]:
        """The newest base snapshot under ``rules``; if there is none, make the first one.

        The first is made at the head, from every term, under the version row's lock: no
        write lands between the head and the rows read, and a node starting at the same time
        waits, then finds it. ``build(version, read)`` makes its data; ``read()`` reads every
        term row (a builder that knows them, e.g. from the seed it just committed at that
        head, need not). The lock is held while it runs (once per database, or after the
        serving rules change).
        """
        async with self._engine.writing() as db:
            head = await _lock_head(db)
            found = await _newest_base(db, rules)
            if found is not None:
                return found

            async def read() -> list[TermRow]:
                return [_row(r) for r in await db.fetch(f"SELECT {_TERM_COLUMNS} FROM terms")]

            data = await build(head, read)
            await db.execute("DELETE FROM snapshots WHERE rules <> ?", (rules,))
            await db.execute(
                "INSERT INTO marks (version) VALUES (?) ON CONFLICT DO NOTHING", (head,)
            )
            await db.execute(
                "INSERT INTO snapshots (version, rules, data) VALUES (?, ?, ?)",
                (head, rules, data),
            )
        return head, data

    async def save_base(self, version: int, rules: str, data: bytes, keep_after: int) -> None:
        """Record the base snapshot every node built at ``version`` (the first one stored
        wins; they are the same bytes) and forget what no node needs any more: snapshots,
        marks and term-log rows up to ``keep_after`` (the base before it: a node still
        following from there reads the rows after it)."""
        async with self._engine.writing() as db:
            await db.execute(
                "INSERT INTO snapshots (version, rules, data) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (version, rules, data),
            )
            await db.execute("DELETE FROM snapshots WHERE version < ?", (keep_after,))
            await db.execute("DELETE FROM marks WHERE version < ?", (keep_after,))
            await db.execute("DELETE FROM term_log WHERE version <= ?", (keep_after,))

    async def oldest_base(self) -> int | None:
        """The oldest base snapshot kept: a node that published less than it fell behind
        what the term log keeps."""
        async with self._engine.reading() as db:
            rows = await db.fetch("SELECT min(version) FROM snapshots")
        return int(str(rows[0][0])) if rows and rows[0][0] is not None else None

    async def upsert_term(
        self, key: str, term: str, weight: int, names: Sequence[str] | None = None
    ) -> tuple[int, TermRow]:
        """Set a term's weight (and display form), clearing its searches and any takedown;
        and its other ``names`` if given (``None`` keeps them)."""
        async with self._write() as (db, version):
            await db.execute(
                "INSERT INTO terms (key, term, base_weight, version, names) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET term = excluded.term,"
                " base_weight = excluded.base_weight, searches = 0, blocked = 0,"
                " version = excluded.version,"
                " names = CASE WHEN ? THEN excluded.names ELSE terms.names END",
                (key, term, weight, version, stored(names or ()), names is not None),
            )
            rows = await _logged(db, version, [key])
        return version, rows[0]

    async def block_term(self, key: str, term: str) -> tuple[int, TermRow]:
        """Take a term down: it stays stored (searches still count) but is never served."""
        async with self._write() as (db, version):
            await db.execute(
                "INSERT INTO terms (key, term, base_weight, blocked, version)"
                " VALUES (?, ?, 0, 1, ?)"
                " ON CONFLICT (key) DO UPDATE SET blocked = 1, version = excluded.version",
                (key, term, version),
            )
            rows = await _logged(db, version, [key])
        return version, rows[0]

    async def log_searches(
        self, searches: Sequence[LoggedSearch], *, now: float | None = None
    ) -> SearchResult:
        """Commit searches not seen before; an id seen before with the same ``q`` is
        acknowledged with its first version, with another ``q`` it is a conflict (``None``).

        ``now`` (Unix seconds, default the clock) stamps the rows for :meth:`prune`.
        """
        try:
            return await self._log_searches(searches, time.time() if now is None else now)
        except _NothingToWrite as nothing:
            return SearchResult(nothing.acks, None, [])

    async def _log_searches(self, searches: Sequence[LoggedSearch], now: float) -> SearchResult:
        # The version row is taken first: ids another writer committed are visible below.
        async with self._write() as (db, version):
            known = await _known_ids(db, [s.id for s in searches])
            fresh: dict[str, LoggedSearch] = {}
            acks: list[int | None] = []
            for s in searches:
                if s.id in known:
                    first_version, first_q = known[s.id]
                    acks.append(first_version if first_q == s.q else None)
                elif s.id in fresh:
                    acks.append(version if fresh[s.id].q == s.q else None)
                else:
                    fresh[s.id] = s
                    acks.append(version)
            if not fresh:
                raise _NothingToWrite(acks)
            await db.executemany(
                "INSERT INTO searches (id, key, q, region, version, at) VALUES (?, ?, ?, ?, ?, ?)",
                [(s.id, s.key, s.q, s.region, version, now) for s in fresh.values()],
            )
            await db.executemany(
                "INSERT INTO terms (key, term, base_weight, searches, version)"
                " VALUES (?, ?, 0, 1, ?)"
                " ON CONFLICT (key) DO UPDATE SET searches = terms.searches + 1,"
                " version = excluded.version",
                [(s.key, s.term, version) for s in fresh.values()],
            )
            await _count_sources(db, fresh.values())
            rows = await _logged(db, version, sorted({s.key for s in fresh.values()}))
        return SearchResult(acks, version, rows, len(fresh))

    async def prune(
        self, before: float, max_rows: int, disposable: Callable[[TermRow], bool]
    ) -> Pruned:
        """Delete up to ``max_rows`` searches logged before ``before`` (Unix seconds), and the
        terms among theirs that have no search left and are ``disposable`` (never served).

        One transaction that produces no version: served data does not change. Callers
        repeat passes until one deletes fewer than ``max_rows`` searches.
        """
        async with self._write(advance=False) as (db, _):
            deleted = [
                str(r[0])
                for r in await db.fetch(
                    "DELETE FROM searches WHERE id IN"
                    " (SELECT id FROM searches WHERE at < ? ORDER BY at LIMIT ?) RETURNING key",
                    (before, max_rows),
                )
            ]
            keys = sorted(set(deleted))
            left = await _keys_with_searches(db, keys)
            orphans = await _rows(db, [k for k in keys if k not in left])
            dead = [r.key for r in orphans if disposable(r)]
            for chunk, marks in _chunks(dead):
                await db.execute(f"DELETE FROM terms WHERE key IN ({marks})", chunk)
                await db.execute(f"DELETE FROM term_sources WHERE key IN ({marks})", chunk)
        return Pruned(len(deleted), len(dead))

    @asynccontextmanager
    async def _write(self, *, advance: bool = True) -> AsyncIterator[tuple[Connection, int]]:
        """``async with store._write() as (db, version)``: one transaction that first takes
        the next version (the row lock every writer queues on), then the body's writes.

        With ``advance=False`` the version stays (for writes that change nothing edges serve).
        """
        async with self._engine.writing() as db:
            if advance:
                rows = await db.fetch(
                    "UPDATE meta SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT)"
                    " WHERE name = 'version' RETURNING value"
                )
            else:
                rows = await db.fetch("SELECT value FROM meta WHERE name = 'version'")
            yield db, int(rows[0][0])


async def _count_sources(db: Connection, searches: Iterable[LoggedSearch]) -> None:
    """Record each search's source for its term, if the term has no base weight (the
    only terms a source threshold applies to), up to ``MAX_SOURCES_COUNTED`` per term."""
    pairs = sorted({(s.key, s.source) for s in searches if s.source})
    if not pairs:
        return
    # A new row bumps terms.sources (trigger term_sources_counted); a known one is ignored.
    await db.executemany(
        "INSERT INTO term_sources (key, source) SELECT ?1, ?2 WHERE EXISTS"
        " (SELECT 1 FROM terms WHERE key = ?1 AND base_weight <= 0 AND sources < ?3)"
        " ON CONFLICT DO NOTHING",
        [(key, source, MAX_SOURCES_COUNTED) for key, source in pairs],
    )


def _chunks(keys: list[str]) -> Iterable[tuple[list[str], str]]:
    """``keys`` in chunks of at most ``_CHUNK``, each with its ``?, ?, ...`` placeholders."""
    for i in range(0, len(keys), _CHUNK):
        chunk = keys[i : i + _CHUNK]
        yield chunk, ",".join("?" * len(chunk))


async def _known_ids(db: Connection, ids: list[str]) -> dict[str, tuple[int, str]]:
    """``id -> (version, q)`` of the ids committed before."""
    known: dict[str, tuple[int, str]] = {}
    for chunk, marks in _chunks(ids):
        rows = await db.fetch(f"SELECT id, version, q FROM searches WHERE id IN ({marks})", chunk)
        known.update({str(k): (int(v), str(q)) for k, v, q in rows})
    return known


async def _keys_with_searches(db: Connection, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk, marks in _chunks(keys):
        rows = await db.fetch(f"SELECT DISTINCT key FROM searches WHERE key IN ({marks})", chunk)
        found.update(str(r[0]) for r in rows)
    return found


async def _rows(db: Connection, keys: list[str]) -> list[TermRow]:
    rows: list[TermRow] = []
    for chunk, marks in _chunks(keys):
        found = await db.fetch(f"SELECT {_TERM_COLUMNS} FROM terms WHERE key IN ({marks})", chunk)
        rows += [_row(r) for r in found]
    return rows


async def _lock_head(db: Connection) -> int:
    """The database's head, its row locked to the end of the transaction: writes in progress
    are committed and no new one commits meanwhile."""
    rows = await db.fetch("UPDATE meta SET value = value WHERE name = 'version' RETURNING value")
    return int(str(rows[0][0]))


async def _newest_base(db: Connection, rules: str) -> tuple[int, bytes] | None:
    """The newest base snapshot stored under the stream key ``rules``: ``(version, data)``."""
    rows = await db.fetch(
        "SELECT version, data FROM snapshots WHERE rules = ? ORDER BY version DESC LIMIT 1",
        (rules,),
    )
    return (int(str(rows[0][0])), bytes(rows[0][1])) if rows else None


async def _logged(db: Connection, version: int, keys: list[str]) -> list[TermRow]:
    """The rows of ``keys`` as ``version`` leaves them, also written to the term log."""
    rows = await _rows(db, keys)
    await db.executemany(
        f"INSERT INTO term_log (version, {_TERM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                version,
                r.key,
                r.term,
                r.base_weight,
                r.searches,
                int(r.blocked),
                r.sources,
                stored(r.names),
            )
            for r in rows
        ],
    )
    return rows


async def _set_meta(db: Connection, name: str, value: str) -> None:
    await db.execute(
        "INSERT INTO meta (name, value) VALUES (?, ?)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (name, value),
    )


class _NothingToWrite(Exception):
    """Raised inside a write transaction to roll it back when every id was known."""

    def __init__(self, acks: list[int | None]) -> None:
        super().__init__("nothing to write")
        self.acks = acks


_TERM_COLUMNS = "key, term, base_weight, searches, blocked, sources, names"


def _row(r: Sequence[object]) -> TermRow:
    key, term, base_weight, searches, blocked, sources, names = r
    return TermRow(
        str(key),
        str(term),
        int(str(base_weight)),
        int(str(searches)),
        bool(blocked),
        int(str(sources)),
        from_stored(names),
    )


def _lease(r: Sequence[object]) -> CoreNodeLease:
    node_id, host, pid, region, lease_until, shared = r
    return CoreNodeLease(
        str(node_id),
        str(host),
        int(str(pid)),
        str(region),
        float(str(lease_until)),
        bool(shared),
    )
