"""All SQL of the core: one aiosqlite writer connection over a WAL database.

Every write runs in one ``BEGIN IMMEDIATE`` transaction that also advances the data version,
and returns only after ``COMMIT``: an acknowledgement is never ahead of the disk. Nothing
else in the project imports ``aiosqlite``.

Schema changes are numbered migrations tracked in ``PRAGMA user_version``; each runs once, in
its own transaction, at start.

Bounds: a term counts at most :data:`MAX_SOURCES_COUNTED` distinct sources (``term_sources``
rows), and :meth:`Store.prune` deletes old searches and the unserved terms they leave behind
in passes of a bounded number of rows, so the database does not grow without bound from
searches that never became suggestions.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from core_region.suggest.catalog import TermRow

logger = logging.getLogger(__name__)

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE terms (
        key TEXT PRIMARY KEY,
        term TEXT NOT NULL,
        base_weight INTEGER NOT NULL,
        searches INTEGER NOT NULL DEFAULT 0,
        blocked INTEGER NOT NULL DEFAULT 0,
        version INTEGER NOT NULL
    );
    CREATE TABLE searches (
        id TEXT PRIMARY KEY,
        key TEXT NOT NULL,
        q TEXT NOT NULL,
        region TEXT NOT NULL,
        version INTEGER NOT NULL,
        at REAL NOT NULL
    );
    CREATE TABLE flags (feature TEXT PRIMARY KEY, stale_ok INTEGER NOT NULL);
    INSERT INTO meta (name, value) VALUES ('version', '0');
    """,
    """
    ALTER TABLE terms ADD COLUMN sources INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE term_sources (
        key TEXT NOT NULL,
        source TEXT NOT NULL,
        PRIMARY KEY (key, source)
    ) WITHOUT ROWID;
    CREATE TRIGGER term_sources_counted AFTER INSERT ON term_sources BEGIN
        UPDATE terms SET sources = sources + 1 WHERE key = NEW.key;
    END;
    CREATE INDEX searches_at ON searches (at);
    CREATE INDEX searches_key ON searches (key);
    -- Sources were not recorded before: a term that searches alone made served keeps being
    -- served (its sources are unknown, not zero), counted as MAX_SOURCES_COUNTED (16).
    UPDATE terms SET sources = 16 WHERE base_weight <= 0 AND searches > 0;
    """,
)

MAX_SOURCES_COUNTED = 16
"""Distinct sources kept per term (rows of ``term_sources``): the source threshold
(``LIGHTCONE_MIN_SOURCES``) can be at most this."""

_CHUNK = 500  # host parameters per IN (...) query, well under SQLite's limit


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
class Pruned:
    """What one :meth:`Store.prune` pass deleted."""

    searches: int
    terms: int


class Store:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._lock = asyncio.Lock()  # one transaction at a time on the one connection

    @classmethod
    async def open(cls, path: Path) -> Store:
        """Open (creating if needed) and migrate the database at ``path``."""
        db = await aiosqlite.connect(path, isolation_level=None)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=FULL")
        await db.execute("PRAGMA busy_timeout=5000")
        store = cls(db)
        await store._migrate()
        return store

    async def close(self) -> None:
        await self._db.close()

    async def _migrate(self) -> None:
        async with self._db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        current = int(row[0]) if row else 0
        for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
            logger.info("applying schema migration %d", number)
            await self._db.executescript(
                f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;"
            )

    # --- reads ---------------------------------------------------------------------------

    async def version(self) -> int:
        return int(await self._meta("version") or 0)

    async def _meta(self, name: str) -> str | None:
        async with self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)) as cur:
            row = await cur.fetchone()
        return str(row[0]) if row else None

    async def epoch(self) -> str:
        """A random id made when the database was created: versions compare only within it."""
        epoch = await self._meta("epoch")
        if epoch is None:
            epoch = uuid.uuid4().hex
            async with self._lock:
                await self._set_meta("epoch", epoch)
        return epoch

    async def set_epoch(self, epoch: str) -> None:
        """Make ``epoch`` the database's epoch (a rollback was found: see ``Hub.connect``)."""
        async with self._lock:
            await self._set_meta("epoch", epoch)

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
        async with self._write(advance=False):
            await self._set_meta("epoch", epoch)
            await self._set_meta(name, value)
        return epoch

    async def corpus_id(self) -> str | None:
        """The id of the corpus the database was seeded from, or ``None`` if never seeded."""
        return await self._meta("corpus")

    async def terms(self) -> list[TermRow]:
        async with self._db.execute(f"SELECT {_TERM_COLUMNS} FROM terms") as cur:
            return [_row(r) for r in await cur.fetchall()]

    async def flags(self) -> dict[str, bool]:
        async with self._db.execute("SELECT feature, stale_ok FROM flags") as cur:
            return {str(f): bool(v) for f, v in await cur.fetchall()}

    async def counts(self) -> dict[str, int]:
        """Row counts for the admin status."""
        out: dict[str, int] = {}
        for table in ("terms", "searches", "term_sources"):
            async with self._db.execute(f"SELECT count(*) FROM {table}") as cur:
                row = await cur.fetchone()
            out[table] = int(row[0]) if row else 0
        return out

    # --- writes --------------------------------------------------------------------------

    async def seed(self, entries: Iterable[tuple[str, str, int]], corpus_id: str) -> int:
        """Load a corpus of ``(key, term, weight)`` into an empty database; returns the version."""
        rows = [(k, t, w) for k, t, w in entries]
        async with self._write() as version:
            await self._db.executemany(
                "INSERT INTO terms (key, term, base_weight, version) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET term = excluded.term,"
                " base_weight = excluded.base_weight",
                [(k, t, w, version) for k, t, w in rows],
            )
            await self._set_meta("corpus", corpus_id)
        return version

    async def init_flags(self, defaults: dict[str, bool]) -> dict[str, bool]:
        """Store ``defaults`` for features that have no stored flag yet; returns all flags."""
        async with self._lock:
            await self._db.executemany(
                "INSERT OR IGNORE INTO flags (feature, stale_ok) VALUES (?, ?)",
                [(f, int(v)) for f, v in defaults.items()],
            )
        return await self.flags()

    async def set_flag(self, feature: str, stale_ok: bool) -> None:
        async with self._lock:
            await self._db.execute(
                "INSERT INTO flags (feature, stale_ok) VALUES (?, ?)"
                " ON CONFLICT (feature) DO UPDATE SET stale_ok = excluded.stale_ok",
                (feature, int(stale_ok)),
            )

    async def upsert_term(self, key: str, term: str, weight: int) -> tuple[int, TermRow]:
        """Set a term's weight (and display form), clearing its searches and any takedown."""
        async with self._write() as version:
            await self._db.execute(
                "INSERT INTO terms (key, term, base_weight, version) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET term = excluded.term,"
                " base_weight = excluded.base_weight, searches = 0, blocked = 0,"
                " version = excluded.version",
                (key, term, weight, version),
            )
            rows = await self._rows([key])
        return version, rows[0]

    async def block_term(self, key: str, term: str) -> tuple[int, TermRow]:
        """Take a term down: it stays stored (searches still count) but is never served."""
        async with self._write() as version:
            await self._db.execute(
                "INSERT INTO terms (key, term, base_weight, blocked, version)"
                " VALUES (?, ?, 0, 1, ?)"
                " ON CONFLICT (key) DO UPDATE SET blocked = 1, version = excluded.version",
                (key, term, version),
            )
            rows = await self._rows([key])
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
        async with self._write() as version:
            known = await self._known_ids([s.id for s in searches])
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
            await self._db.executemany(
                "INSERT INTO searches (id, key, q, region, version, at) VALUES (?, ?, ?, ?, ?, ?)",
                [(s.id, s.key, s.q, s.region, version, now) for s in fresh.values()],
            )
            await self._db.executemany(
                "INSERT INTO terms (key, term, base_weight, searches, version)"
                " VALUES (?, ?, 0, 1, ?)"
                " ON CONFLICT (key) DO UPDATE SET searches = searches + 1,"
                " version = excluded.version",
                [(s.key, s.term, version) for s in fresh.values()],
            )
            await self._count_sources(fresh.values())
            rows = await self._rows(sorted({s.key for s in fresh.values()}))
        return SearchResult(acks, version, rows, len(fresh))

    async def _count_sources(self, searches: Iterable[LoggedSearch]) -> None:
        """Record each search's source for its term, if the term has no base weight (the
        only terms a source threshold applies to), up to ``MAX_SOURCES_COUNTED`` per term."""
        pairs = sorted({(s.key, s.source) for s in searches if s.source})
        if not pairs:
            return
        # A new row bumps terms.sources (trigger term_sources_counted); a known one is ignored.
        await self._db.executemany(
            "INSERT OR IGNORE INTO term_sources (key, source) SELECT ?1, ?2 WHERE EXISTS"
            " (SELECT 1 FROM terms WHERE key = ?1 AND base_weight <= 0 AND sources < ?3)",
            [(key, source, MAX_SOURCES_COUNTED) for key, source in pairs],
        )

    async def _known_ids(self, ids: list[str]) -> dict[str, tuple[int, str]]:
        """``id -> (version, q)`` of the ids committed before."""
        known: dict[str, tuple[int, str]] = {}
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            async with self._db.execute(
                f"SELECT id, version, q FROM searches WHERE id IN ({marks})", chunk
            ) as cur:
                known.update({str(k): (int(v), str(q)) for k, v, q in await cur.fetchall()})
        return known

    async def prune(
        self, before: float, max_rows: int, disposable: Callable[[TermRow], bool]
    ) -> Pruned:
        """Delete up to ``max_rows`` searches logged before ``before`` (Unix seconds), and the
        terms among theirs that have no search left and are ``disposable`` (never served).

        One transaction that produces no version: served data does not change. Callers
        repeat passes until one deletes fewer than ``max_rows`` searches.
        """
        async with self._write(advance=False):
            async with self._db.execute(
                "DELETE FROM searches WHERE rowid IN"
                " (SELECT rowid FROM searches WHERE at < ? ORDER BY at LIMIT ?) RETURNING key",
                (before, max_rows),
            ) as cur:
                deleted = [str(r[0]) for r in await cur.fetchall()]
            keys = sorted(set(deleted))
            left = await self._keys_with_searches(keys)
            orphans = await self._rows([k for k in keys if k not in left])
            dead = [r.key for r in orphans if disposable(r)]
            for i in range(0, len(dead), _CHUNK):
                chunk = dead[i : i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                await self._db.execute(f"DELETE FROM terms WHERE key IN ({marks})", chunk)
                await self._db.execute(f"DELETE FROM term_sources WHERE key IN ({marks})", chunk)
        return Pruned(len(deleted), len(dead))

    async def _keys_with_searches(self, keys: list[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            async with self._db.execute(
                f"SELECT DISTINCT key FROM searches WHERE key IN ({marks})", chunk
            ) as cur:
                found.update(str(r[0]) for r in await cur.fetchall())
        return found

    async def _rows(self, keys: list[str]) -> list[TermRow]:
        rows: list[TermRow] = []
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            async with self._db.execute(
                f"SELECT {_TERM_COLUMNS} FROM terms WHERE key IN ({marks})", chunk
            ) as cur:
                rows += [_row(r) for r in await cur.fetchall()]
        return rows

    async def _set_meta(self, name: str, value: str) -> None:
        await self._db.execute(
            "INSERT INTO meta (name, value) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def _write(self, *, advance: bool = True) -> _Transaction:
        return _Transaction(self, advance)


class _NothingToWrite(Exception):
    """Raised inside a write transaction to roll it back when every id was known."""

    def __init__(self, acks: list[int | None]) -> None:
        super().__init__("nothing to write")
        self.acks = acks


class _Transaction:
    """``async with store._write() as version``: BEGIN IMMEDIATE, bump the version, COMMIT.

    With ``advance=False`` the version stays (for writes that change nothing edges serve).
    """

    def __init__(self, store: Store, advance: bool) -> None:
        self._store = store
        self._advance = advance

    async def __aenter__(self) -> int:
        db = self._store._db
        await self._store._lock.acquire()
        try:
            await db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._store._lock.release()
            raise
        version = await self._store.version()
        if self._advance:
            version += 1
            await self._store._set_meta("version", str(version))
        return version

    async def __aexit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        db = self._store._db
        try:
            await db.execute("COMMIT" if exc is None else "ROLLBACK")
        finally:
            self._store._lock.release()


_TERM_COLUMNS = "key, term, base_weight, searches, blocked, sources"


def _row(r: Sequence[object]) -> TermRow:
    key, term, base_weight, searches, blocked, sources = r
    return TermRow(
        str(key),
        str(term),
        int(str(base_weight)),
        int(str(searches)),
        bool(blocked),
        int(str(sources)),
    )
