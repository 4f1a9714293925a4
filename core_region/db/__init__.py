"""The store's engines, behind one small interface: SQLite (the embedded default) and
PostgreSQL (``LIGHTCONE_STORE=postgresql://...``).

:class:`~core_region.store.Store` writes its SQL once, with ``?`` placeholders, in the dialect
both engines accept (``INSERT ... ON CONFLICT``, ``RETURNING``, no ``INSERT OR IGNORE``, no
``rowid``); an engine only runs it. Where the DDL must differ (types, the trigger on
``term_sources``) a :class:`Migration` carries the text per engine, so both are always at the
same schema number.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

Row = tuple[Any, ...]
"""One result row, as a plain tuple on every engine."""

LOAD_CHUNK = 10_000
"""Rows a bulk load (:meth:`Connection.load`) holds at a time."""

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
"""How a store URL names PostgreSQL (asyncpg's, and libpq's, two spellings)."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered schema change: its SQL script for SQLite and, where it differs, for
    PostgreSQL (``None``: the same text)."""

    sqlite: str
    postgres: str | None = None

    def text(self, engine: str) -> str:
        return self.sqlite if engine == "sqlite" or self.postgres is None else self.postgres


class Connection(Protocol):
    """What the store's SQL runs on: a connection, inside a transaction when writing."""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def load(
        self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], conflict: str
    ) -> None:
        """Insert many ``rows`` into ``columns`` of ``table`` (a bulk load, e.g. a corpus of
        a million terms), a row whose key is there already handled by ``ON CONFLICT
        {conflict}``. ``rows`` is consumed once, as it is read: the engine keeps at most
        :data:`LOAD_CHUNK` of them at a time. Values are text, integers and ``None`` (SQLite
        passes a chunk as JSON).

        Raises:
            TypeError: a value of another type."""
        ...


class Engine(Protocol):
    """A database the store runs on."""

    name: str
    """``sqlite`` or ``postgres``: picks a :class:`Migration`'s text."""

    where: str
    """The database, for messages: a SQLite file's folder, a URL without its password."""

    def reading(self) -> AbstractAsyncContextManager[Connection]:
        """A connection for reads outside any write transaction."""
        ...

    def writing(self) -> AbstractAsyncContextManager[Connection]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        ...

    async def migrate(self, migrations: Sequence[Migration]) -> None:
        """Apply the migrations this database lacks, each once, in its own transaction."""
        ...

    async def close(self) -> None:
        """Close once the write transaction in progress, if any, has ended: none is left
        open (holding its locks) after the engine is closed."""
        ...


def batched(rows: Iterable[Sequence[Any]], size: int) -> Iterator[list[Sequence[Any]]]:
    """``rows`` in lists of at most ``size``."""
    read = iter(rows)
    while chunk := list(islice(read, size)):
        yield chunk


def is_postgres(location: str) -> bool:
    return location.startswith(POSTGRES_SCHEMES)


async def open_engine(location: Path | str) -> Engine:
    """The engine at ``location``: a SQLite file (a path) or a PostgreSQL URL.

    Raises:
        StoreUnavailable: PostgreSQL cannot be reached (the message names the URL without
            its password).
    """
    if isinstance(location, Path):
        from core_region.db.sqlite import SqliteEngine

        return await SqliteEngine.open(location)
    if not is_postgres(location):
        raise ValueError(f"not a store URL: {location!r} (postgresql://user:pass@host:port/db)")
    from core_region.db.postgres import PostgresEngine

    return await PostgresEngine.open(location)
