"""Two core nodes on one PostgreSQL with a broker, end to end: a write through either reaches
the edges of both; an edge whose node is killed (``kill -9``) or black-holed moves to the other
within link timeout + backoff (≤ 6 s with the default timings, which these tests keep), resumes
by version (no snapshot: it is the same database), and no search acknowledged to a client is
lost or counted twice."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.e2e.test_failover import BUDGET_S, EDGE_ENV, loads, moved_to, port, status
from tests.helpers.clients import prefix_terms
from tests.helpers.nodes import ADMIN_TOKEN, SMALL_CORPUS, Node, start_core, start_edge
from tests.helpers.proxy_thread import ProxyThread
from tests.helpers.redis import Server
from tests.helpers.waiting import eventually, until_equal

pytestmark = pytest.mark.e2e

SERVE_EVERY_SEARCH = {"LIGHTCONE_MIN_SOURCES": "0"}


@dataclass
class Pair:
    a: Node
    b: Node
    store: str


def two_nodes(tmp_path: Path, store: str, broker: str, *, clean: bool) -> Iterator[Pair]:
    """Two core nodes on ``store`` sharing ``broker``; with ``clean``, neither logs an error."""
    env = {"LIGHTCONE_STORE": store, "LIGHTCONE_BROKER": broker, **SERVE_EVERY_SEARCH}
    a = start_core(tmp_path / "a", corpus=SMALL_CORPUS, env=env)
    try:
        b = start_core(tmp_path / "b", corpus=SMALL_CORPUS, env=env)
    except BaseException:
        a.stop()
        raise
    try:
        yield Pair(a, b, store)
    finally:
        a.stop()
        b.stop()
    for node in (a, b) if clean else ():
        assert not node.errors(), node.errors()


@pytest.fixture
def pair(tmp_path: Path, postgres_url: str, redis_url: str) -> Iterator[Pair]:
    yield from two_nodes(tmp_path, postgres_url, redis_url, clean=True)


@pytest.fixture
def pair_own_redis(tmp_path: Path, postgres_url: str, own_redis: Server) -> Iterator[Pair]:
    """Two nodes whose broker this test may stop (they log its loss)."""
    yield from two_nodes(tmp_path, postgres_url, own_redis.url, clean=False)


async def terms(edge: Node, q: str) -> list[str]:
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(f"{edge.url}/suggest", params={"q": q})
    return prefix_terms(answer.json()["items"])


async def served_at(edge: Node, q: str, version: int) -> list[str]:
    """What ``edge`` serves for ``q`` once it holds ``version`` (it waits for it)."""
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(f"{edge.url}/suggest", params={"q": q, "min_version": version})
    assert answer.status_code == 200, answer.text
    return prefix_terms(answer.json()["items"])


async def test_a_write_through_either_node_reaches_the_edges_of_both(
    tmp_path: Path, pair: Pair
) -> None:
    on_a = start_edge(tmp_path, pair.a.url, "syd", env=EDGE_ENV)
    on_b = start_edge(tmp_path, pair.b.url, "lhr", env=EDGE_ENV)
    try:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with httpx.AsyncClient(headers=headers) as admin:
            for n, core in enumerate((pair.a, pair.b, pair.a)):
                put = await admin.put(f"{core.url}/admin/terms/Nodetown {n}", json={"weight": 9})
                version = put.json()["version"]
                started = time.monotonic()
                for edge in (on_a, on_b):
                    assert await served_at(edge, f"nodetown {n}", version) == [f"Nodetown {n}"]
                assert time.monotonic() - started < 3
                # Either node reads every write back, whichever took it.
                for reader in (pair.a, pair.b):
                    got = await admin.get(f"{reader.url}/admin/terms/nodetown {n}")
                    assert got.json()["weight"] == 9, got.text
    finally:
        on_a.stop()
        on_b.stop()
    for edge in (on_a, on_b):
        assert not edge.errors(), edge.errors()


async def searched(store: str, ids: list[str]) -> tuple[int, int]:
    """How many of ``ids`` are committed, and how many searches the term counts."""
    db = await asyncpg.connect(store)
    try:
        rows = await db.fetchval("SELECT count(*) FROM searches WHERE id = ANY($1)", ids)
        count = await db.fetchval("SELECT searches FROM terms WHERE key = 'failoversearch'")
        return int(rows), int(count or 0)
    finally:
        await db.close()


async def search_until(edge: Node, stop: asyncio.Event, acked: list[str]) -> None:
    """Send searches for one term through ``edge``, one after the other (at most 2,001, on
    loopback), until ``stop``; keep each id a client was told is committed or queued (both
    are promises)."""
    async with httpx.AsyncClient(timeout=5) as client:
        for n in itertools.count():
            if stop.is_set() or n > 2000:
                return
            search_id = f"fo-{n}"
            answer = await client.post(
                f"{edge.url}/search", json={"id": search_id, "q": "Failover Search"}
            )
            if answer.status_code in (200, 202):
                acked.append(search_id)


async def at_least(items: list[str], n: int) -> bool:
    return len(items) >= n


async def test_kill_9_of_a_node_loses_no_acknowledged_search(tmp_path: Path, pair: Pair) -> None:
    edge = start_edge(tmp_path, f"{pair.a.url},{pair.b.url}", "syd", env=EDGE_ENV)
    try:
        assert (await status(edge))["core"] == pair.a.url
        stop, acked = asyncio.Event(), list[str]()
        load = asyncio.create_task(search_until(edge, stop, acked))
        await eventually(partial(at_least, acked, 20), 10, "searches acknowledged")
        pair.a.kill()
        elapsed, _ = await moved_to(edge, pair.b.url, 15)
        print(f"\nfailover after kill -9 (one store): {elapsed:.2f} s (budget {BUDGET_S:.1f} s)")
        assert elapsed <= BUDGET_S
        await eventually(partial(at_least, acked, len(acked) + 20), 10, "searches after it")
        stop.set()
        await load
        await until_equal(partial(searched, pair.store, acked), (len(acked), len(acked)), 10)
        # The same database: the edge resumed by version, without a snapshot.
        assert await loads(edge, 1) and not await loads(edge, 2)
    finally:
        edge.stop()
    assert not edge.errors(), edge.errors()


async def test_a_black_holed_node_is_left_and_the_edge_resumes_by_version(
    tmp_path: Path, pair: Pair
) -> None:
    hole = ProxyThread("127.0.0.1", port(pair.a), name="to-a")
    try:
        edge = start_edge(tmp_path, f"{hole.url},{pair.b.url}", "syd", env=EDGE_ENV)
        try:
            hole.cut()
            headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            async with httpx.AsyncClient(headers=headers) as admin:
                put = await admin.put(f"{pair.a.url}/admin/terms/Holetown", json={"weight": 9})
            version = put.json()["version"]
            elapsed, _ = await moved_to(edge, pair.b.url, 15)
            print(f"\nfailover after a black hole (one store): {elapsed:.2f} s")
            assert elapsed <= BUDGET_S
            # Written through the node it left, served through the one it is on: a delta.
            assert await served_at(edge, "holetown", version) == ["Holetown"]
            assert not await loads(edge, 2)
        finally:
            edge.stop()
    finally:
        hole.close()
    assert not edge.errors(), edge.errors()


def test_a_node_that_would_build_another_stream_refuses_to_join(
    tmp_path: Path, pair: Pair, redis_url: str
) -> None:
    """Every node on one store must build the same stream: one with another hot threshold
    refuses to start beside live nodes, naming the settings."""
    env = {
        **os.environ,
        "LIGHTCONE_STORE": pair.store,
        "LIGHTCONE_BROKER": redis_url,
        "LIGHTCONE_HOT_THRESHOLD": "3",
        **SERVE_EVERY_SEARCH,
    }
    result = subprocess.run(
        [sys.executable, "-m", "shared.cli", "core", "--port", "0", "--corpus", str(SMALL_CORPUS)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 2
    assert "needs the same" in result.stderr, result.stderr[-2000:]
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("lightcone core: error: the core nodes on") and "hot=3" in line


async def test_writes_reach_the_other_nodes_edges_while_the_broker_is_lost(
    tmp_path: Path, pair_own_redis: Pair, own_redis: Server
) -> None:
    """Redis lost: a node misses the other's notices, and finds its marks in the store at its
    next heartbeat instead: writes still reach every edge, a heartbeat later. Redis back:
    notices again, no restart."""
    pair = pair_own_redis
    on_b = start_edge(tmp_path, pair.b.url, "lhr", env=EDGE_ENV)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    try:
        async with httpx.AsyncClient(headers=headers) as admin:
            for n, lost in enumerate((True, False)):
                if lost:
                    own_redis.stop()
                else:
                    own_redis.start()
                put = await admin.put(
                    f"{pair.a.url}/admin/terms/Brokertown {n}", json={"weight": 9}
                )
                assert put.status_code == 200, put.text
                # A plain read (no min_version: that would make B publish, and so follow).
                await until_equal(partial(terms, on_b, f"brokertown {n}"), [f"Brokertown {n}"], 5)
    finally:
        on_b.stop()
    assert not on_b.errors(), on_b.errors()
