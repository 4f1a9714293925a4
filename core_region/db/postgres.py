"""The PostgreSQL engine: an asyncpg pool (``LIGHTCONE_STORE=postgresql://...``).

The store's SQL is written once with ``?`` placeholders (``?N`` for a numbered one); they are
translated here to asyncpg's ``$1..$n``. The schema number lives in the one-row table
``lightcone_schema``; migrations take its row ``FOR UPDATE``, so core nodes starting together
apply each one once.

Bounds: at most :data:`POOL_SIZE` connections per core process; a connection attempt gives
up after :data:`CONNECT_TIMEOUT_S` and a statement after :data:`STATEMENT_TIMEOUT_S`, so a
lost or black-holed server turns into :class:`~shared.errors.StoreUnavailable` (HTTP 503
``store_unavailable``) instead of a hang. The pool reconnects by itself on the next use once
the server is back: nothing needs a restart.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from core_region.db import LOAD_CHUNK, Connection, Migration, Row, batched
from shared.errors import StoreUnavailable

logger = logging.getLogger(__name__)

POOL_SIZE = 4
"""Connections one core process holds at most: writes are one at a time per node anyway
(the node's write lock), the rest serve reads (start-up, admin status)."""

CONNECT_TIMEOUT_S = 5.0
"""Longest wait for a new connection (the server unreachable or black-holed)."""

STATEMENT_TIMEOUT_S = 10.0
"""Longest wait for one statement's answer (a write behind another node's lock included)."""

LOAD_TIMEOUT_S = 300.0
"""Longest wait for the one statement that moves a bulk load (:meth:`Connection.load`, the
seed of a corpus: a few seconds a million rows) from its staging table into its table."""

_LOST = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.OperatorInterventionError,
)
"""What a lost, refused, restarting or stopped server raises."""

_PLACEHOLDER = re.compile(r"\?(\d*)")


@functools.lru_cache(maxsize=256)
def translate(sql: str) -> str:
    """``sql`` with ``?`` placeholders numbered ``$1..$n`` (``?N`` becomes ``$N``).

    The store's SQL has no ``?`` inside a string literal, so no parsing is needed.
    """
    counter = iter(range(1, 10_000))

    def number(match: re.Match[str]) -> str:
        return f"${match.group(1) or next(counter)}"

    return _PLACEHOLDER.sub(number, sql)


def redacted(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


class _Connection:
    def __init__(self, conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record]) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self._conn.execute(translate(sql), *params)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            await self._conn.executemany(translate(sql), rows)

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return [tuple(r) for r in await self._conn.fetch(translate(sql), *params)]

    async def load(
        self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], conflict: str
    ) -> None:
        # COPY (the fastest way in) cannot resolve conflicts: the rows go to a temporary table
        # of the same columns, then into the table in one INSERT ... SELECT ... ON CONFLICT.
        staging = f"{table}_load"
        names = ", ".join(columns)
        await self._conn.execute(
            f"CREATE TEMPORARY TABLE {staging} ON COMMIT DROP AS"
            f" SELECT {names} FROM {table} WITH NO DATA"
        )
        for chunk in batched(rows, LOAD_CHUNK):
            await self._conn.copy_records_to_table(
                staging, records=chunk, columns=list(columns), timeout=STATEMENT_TIMEOUT_S
            )
        await self._conn.execute(
            f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging} ON CONFLICT {conflict}",
            timeout=LOAD_TIMEOUT_S,
        )


class PostgresEngine:
    name = "postgres"

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], url: str) -> None:
        self._pool = pool
        self.url = url
        self.where = redacted(url)

    @classmethod
    async def open(cls, url: str) -> PostgresEngine:
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=0,  # no floor to restore in the background (it logs tracebacks)
                max_size=POOL_SIZE,
                timeout=CONNECT_TIMEOUT_S,
                command_timeout=STATEMENT_TIMEOUT_S,
                # A plan per query: with a cached generic plan the known-ids lookup of a batch
                # ran slow under the version row's lock, and two writers fell to a quarter of
                # one (docs/BENCHMARKS.md, "The store on PostgreSQL").
                server_settings={"plan_cache_mode": "force_custom_plan"},
            )
        except _LOST as exc:
            raise _unavailable(url, exc) from None
        except asyncpg.PostgresError as exc:  # e.g. a wrong password, an unknown database
            raise StoreUnavailable(f"the store {redacted(url)} refused us: {exc}") from None
        return cls(pool, url)

    async def close(self) -> None:
        await self._pool.close()

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[Connection]:
        async with self._lost(), self._pool.acquire() as conn:
            yield _Connection(conn)

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[Connection]:
        async with self._lost(), self._pool.acquire() as conn, conn.transaction():
            yield _Connection(conn)

    @contextlib.asynccontextmanager
    async def _lost(self) -> AsyncIterator[None]:
        """Turn a lost server into :class:`StoreUnavailable` (the pool reconnects later)."""
        try:
            yield
        except _LOST as exc:
            raise _unavailable(self.url, exc) from None

    async def migrate(self, migrations: Sequence[Migration]) -> None:
        async with self._lost(), self._pool.acquire() as conn:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS lightcone_schema"
                " (one INTEGER PRIMARY KEY CHECK (one = 1), number INTEGER NOT NULL);"
                " INSERT INTO lightcone_schema (one, number) VALUES (1, 0) ON CONFLICT DO NOTHING"
            )
            for number, migration in enumerate(migrations, start=1):
                async with conn.transaction():
                    current = await conn.fetchval(
                        "SELECT number FROM lightcone_schema WHERE one = 1 FOR UPDATE"
                    )
                    if current >= number:
                        continue
                    logger.info("applying schema migration %d", number)
                    await conn.execute(migration.text(self.name))
                    await conn.execute(
                        "UPDATE lightcone_schema SET number = $1 WHERE one = 1", number
                    )


def _unavailable(url: str, exc: BaseException) -> StoreUnavailable:
    reason = str(exc) or type(exc).__name__
    return StoreUnavailable(f"the store {redacted(url)} is unreachable: {reason}")
