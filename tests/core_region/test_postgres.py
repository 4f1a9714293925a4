"""The store on a real PostgreSQL: versions stay dense and gapless with two writers on one
database, and a lost server turns into ``store_unavailable`` until it is back, with no
restart. (The store's other tests run on both engines: tests/core_region/test_writes.py.)"""

from __future__ import annotations

import asyncio

import pytest

from core_region.db.postgres import redacted, translate
from core_region.store import LoggedSearch, Store
from shared.errors import StoreUnavailable
from shared.folding import fold
from tests.helpers.postgres import Cluster, free_port

WRITES_EACH = 60
"""Small writes per writer in the race (each a transaction of its own)."""


def search(search_id: str, q: str) -> LoggedSearch:
    return LoggedSearch(search_id, fold(q), q, q, "syd", "s1")


def test_placeholders_are_numbered_for_asyncpg() -> None:
    assert translate("SELECT ? FROM t WHERE a = ? AND b IN (?, ?)") == (
        "SELECT $1 FROM t WHERE a = $2 AND b IN ($3, $4)"
    )
    assert translate("SELECT ?1, ?2 WHERE x = ?1 AND y < ?3") == (
        "SELECT $1, $2 WHERE x = $1 AND y < $3"
    )


def test_a_url_is_shown_without_its_password() -> None:
    assert redacted("postgresql://lc:s3cret@db:5432/lc") == "postgresql://lc:***@db:5432/lc"
    assert redacted("postgresql://lc@db/lc") == "postgresql://lc@db/lc"


async def test_two_writers_commit_dense_gapless_versions(postgres_url: str) -> None:
    """Two stores (two core processes, later) write at once: the versions committed are
    exactly 1..N, none skipped or used twice, and a write that rolls back leaves no gap."""
    one, two = await Store.open(postgres_url), await Store.open(postgres_url)
    try:

        async def writer(store: Store, name: str) -> list[int]:
            versions = []
            for n in range(WRITES_EACH):
                if n % 3 == 0:
                    version, _ = await store.upsert_term(f"{name} {n}", f"{name} {n}", n + 1)
                else:
                    one = [search(f"{name}-{n}", f"{name} {n}")]
                    result = await store.log_searches(one)
                    assert result.version is not None
                    version = result.version
                    # a repeated id rolls its transaction back: no version, no gap
                    assert (await store.log_searches(one)).version is None
                versions.append(version)
            return versions

        first, second = await asyncio.gather(writer(one, "one"), writer(two, "two"))
        committed = sorted(first + second)
        assert committed == list(range(1, 2 * WRITES_EACH + 1))
        assert first == sorted(first) and second == sorted(second)
        assert min(first) < max(second) and min(second) < max(first)  # they did interleave
        assert await one.version() == await two.version() == 2 * WRITES_EACH
    finally:
        await one.close()
        await two.close()


async def test_an_unreachable_store_is_named_without_its_password() -> None:
    url = f"postgresql://lightcone:s3cret@127.0.0.1:{free_port()}/lightcone"
    with pytest.raises(StoreUnavailable) as caught:
        await Store.open(url)
    message = str(caught.value)
    assert "postgresql://lightcone:***@127.0.0.1" in message and "s3cret" not in message
    assert caught.value.code == "store_unavailable" and caught.value.status == 503


async def test_a_lost_store_fails_writes_until_it_is_back(own_postgres: Cluster) -> None:
    """Stopped: writes raise StoreUnavailable at once. Started again: the next write
    commits the next version on the same Store (its pool reconnects by itself)."""
    store = await Store.open(own_postgres.url())
    try:
        before, _ = await store.upsert_term("lyon", "Lyon", 5)
        own_postgres.stop()
        with pytest.raises(StoreUnavailable):
            await store.upsert_term("nice", "Nice", 5)
        with pytest.raises(StoreUnavailable):
            await store.log_searches([search("a", "Nice")])
        own_postgres.start()
        after, row = await store.upsert_term("nice", "Nice", 5)
        assert after == before + 1 and row.base_weight == 5
        assert (await store.log_searches([search("a", "Nice")])).version == before + 2
    finally:
        await store.close()
