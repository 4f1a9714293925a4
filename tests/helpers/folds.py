"""Stores as an older or a newer fold left them, for the re-key tests (unit and end to end)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from core_region.store import LoggedSearch, Store
from core_region.suggest.catalog import TermRow
from load.quality.generate import fold_v1
from shared.folding import FOLD_VERSION

CORPUS = [
    ("Xi’an", 9_600_000),
    ("Xian", 3_000),
    ("New York City", 8_804_190),
    ("Saint Petersburg", 5_351_935),
    ("St. Petersburg", 257_083),
    ("Stockholm", 975_551),
    ("Paris", 2_138_551),
    ("'", 5),  # version 1 kept a key of punctuation alone
]

SEARCHES = [
    ("a1", "St. Petersburg", "s1"),
    ("a2", "St. Petersburg", "s2"),
    ("a3", "saint petersburg", "s2"),
    ("a4", "Foo-Bar", "s1"),
    ("a5", "foo bar", "s2"),
    ("a6", "foo bar", "s3"),
    ("a7", "'", "s1"),
]


async def make_old_store(location: Path | str, *, block: bool = True) -> tuple[str, int]:
    """A store as a build of fold version 1 left it: its keys (with "Xian" taken down unless
    not ``block``), a base snapshot and term log of them, and no ``fold`` row. Returns its
    epoch and head."""
    store = await Store.open(location)
    try:
        await store.seed([(fold_v1(t), t, w) for t, w in CORPUS], "corpus")
        if block:
            await store.block_term(fold_v1("Xian"), "Xian")
        for search_id, q, source in SEARCHES:
            await store.log_searches([LoggedSearch(search_id, fold_v1(q), q, q, "syd", source)])

        async def build(version: int, read: Callable[[], Awaitable[list[TermRow]]]) -> bytes:
            return b"a snapshot of version-1 keys"

        await store.first_base("rules of fold 1", build)
        async with store._engine.writing() as db:  # the row an older build never wrote
            await db.execute("DELETE FROM meta WHERE name = 'fold'")
        return await store.epoch(), await store.version()
    finally:
        await store.close()


async def make_newer(location: Path | str) -> None:
    """A store whose keys a newer fold made."""
    store = await Store.open(location)
    try:
        async with store._engine.writing() as db:
            await db.execute(
                "UPDATE meta SET value = ? WHERE name = 'fold'", (str(FOLD_VERSION + 1),)
            )
    finally:
        await store.close()
