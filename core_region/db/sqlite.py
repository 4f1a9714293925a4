"""The SQLite engine: one aiosqlite connection over a WAL database (the embedded default).

Writes run one at a time in ``BEGIN IMMEDIATE`` transactions on the one connection; reads
run on it between them. The schema number is ``PRAGMA user_version``, so databases made
before engines were split keep working. Nothing else in the project imports ``aiosqlite``.

Closing waits for the write transaction in progress to end (:meth:`SqliteEngine.close`):
SQLite does not end a transaction whose connection is closed while one of its statements is
still referenced (e.g. by the traceback of a writer that failed on the closed connection); the
connection lingers, holding the database's write lock, until that statement is freed, and every
other connection to the file gets ``database is locked`` meanwhile (a core restarted in the same
process could not claim its store).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from core_region.db import LOAD_CHUNK, Connection, Migration, Row, batched

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
"""How long a statement waits for another connection's write lock before ``database is
locked`` (another core process on the same file, or one being closed)."""


class _Connection:
    def __init__(self, db: aiosqlite.Connection, where: str = "") -> None:
        self._db = db
        self.where = where

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self._db.execute(sql, params)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._db.executemany(sql, rows)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self._db.execute(sql, params) as cur:
            return [tuple(r) for r in await cur.fetchall()]

    async def load(
        self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], conflict: str
    ) -> None:
        # A chunk goes in as one JSON array of rows, taken apart by SQLite (json_each): one
        # statement per chunk, and the rows are read without Python's lock, so a core seeding
        # a million terms builds its first snapshot beside the writes (not one row bound at a
        # time between the build's turns).
        values = ", ".join(f"value ->> {i}" for i in range(len(columns)))
        sql = (
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values} FROM json_each(?)"
            f" WHERE true ON CONFLICT {conflict}"  # WHERE: no "ON" read as a join's
        )
        for chunk in batched(rows, LOAD_CHUNK):
            await self._db.execute(sql, (json.dumps(chunk, ensure_ascii=False),))


class SqliteEngine:
    name = "sqlite"

    def __init__(self, db: aiosqlite.Connection, where: str = "") -> None:
        self._db = db
        self.where = where
        self._conn = _Connection(db)
        self._lock = asyncio.Lock()  # one transaction at a time on the one connection

    @classmethod
    async def open(cls, path: Path) -> SqliteEngine:
        """Open (creating if needed) the database at ``path``."""
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            # The busy timeout first: switching to WAL waits for other connections too.
            await db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=FULL")
        except BaseException:
            await db.close()
            raise
        return cls(db, str(path.parent))

    async def close(self) -> None:
        """Close the connection once the write transaction in progress, if any, has ended
        (committed or rolled back by its writer): never inside one (module docstring). A
        write transaction awaits the database alone (and, once per database, the first base
        snapshot's build: :meth:`~core_region.store.Store.first_base`), so the wait is short.
        A write that starts after this fails (``ValueError``: no active connection)."""
        async with self._lock:
            await self._db.close()

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[Connection]:
        yield self._conn

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[Connection]:
        async with self._lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                yield self._conn
            except BaseException:
                # Also when cancelled during BEGIN: the BEGIN still runs on aiosqlite's thread,
                # and this ROLLBACK, queued behind it, ends the transaction it opened (never
                # one left open for the next writer). No transaction open, or the connection
                # closed: nothing to undo (and the writer's own error is the one raised).
                with contextlib.suppress(sqlite3.Error, ValueError):
                    await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def migrate(self, migrations: Sequence[Migration]) -> None:
        async with self._db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        current = int(row[0]) if row else 0
        for number, migration in enumerate(migrations[current:], start=current + 1):
            logger.info("applying schema migration %d", number)
            await self._db.executescript(
                f"BEGIN IMMEDIATE;\n{migration.text(self.name)}\n"
                f"PRAGMA user_version = {number};\nCOMMIT;"
            )
