"""An edge given two core nodes fails over when the one it is on dies: after ``kill -9``, and
when its link black-holes instead of resetting; both within link timeout + backoff (≤ 6 s with
the default timings, which these tests keep), serving suggestions all along, ``/status``
naming the new node. Each core here has its own SQLite file (two databases), so the switch
costs a snapshot; a node of the edge's own database sends none (the last test)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_node.cores import MIN_DIAL_GAP_S
from edge_node.settings import EdgeSettings
from tests.helpers.nodes import ADMIN_TOKEN, SMALL_CORPUS, Node, start_core, start_edge
from tests.helpers.proxy_thread import ProxyThread
from tests.helpers.waiting import POLL_S, eventually

pytestmark = pytest.mark.e2e

DEFAULTS = EdgeSettings(core_url="http://127.0.0.1:1")
BUDGET_S = DEFAULTS.link_timeout_s + max(DEFAULTS.reconnect_min_s, MIN_DIAL_GAP_S) + 0.9
"""Link timeout + the first backoff, and the dial, hello and snapshot: ≤ 6 s (issue 11)."""

EDGE_ENV = {"LIGHTCONE_HTTP_RATE": "1000000", "LIGHTCONE_HTTP_BURST": "1000000"}
"""Default link timings; only the per-client HTTP rate is lifted for the test's poller."""


def port(node: Node) -> int:
    return int(node.url.rsplit(":", 1)[1])


@dataclass
class Watch:
    """What the edge said while the test waited for it to move: each ``/suggest`` answer."""

    answers: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


async def moved_to(edge: Node, core: str, timeout_s: float) -> tuple[float, Watch]:
    """Seconds until the edge's ``/status`` says it is up on ``core``, asking ``/suggest``
    all the while (each answer kept)."""
    watch = Watch()
    status: dict[str, Any] = {}
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=5) as client:
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    answer = await client.get(f"{edge.url}/suggest", params={"q": "tok"})
                    if answer.status_code == 200:
                        watch.answers.append(answer.json())
                    else:
                        watch.failures.append(answer.text)
                    status = (await client.get(f"{edge.url}/status")).json()
                    if status["core"] == core and status["link"] == "up":
                        return time.monotonic() - started, watch
                    await asyncio.sleep(POLL_S)
        except TimeoutError:
            raise AssertionError(f"not on {core} within {timeout_s} s: {status}") from None


async def loads(edge: Node, n: int) -> bool:
    """The edge has loaded ``n`` snapshots (its log says so)."""
    return len([line for line in edge.lines if "loaded snapshot" in line]) >= n


async def status(edge: Node) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5) as client:
        answer: dict[str, Any] = (await client.get(f"{edge.url}/status")).json()
        return answer


@pytest.fixture
def two_cores(tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    a = start_core(tmp_path / "a", corpus=SMALL_CORPUS)
    try:
        b = start_core(tmp_path / "b", corpus=SMALL_CORPUS)
    except BaseException:
        a.stop()
        raise
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def served_throughout(watch: Watch) -> None:
    assert watch.failures == []
    assert watch.answers, "no suggestion asked during the switch"
    assert all(a["items"][0]["term"] == "Tokyo" for a in watch.answers)


async def test_kill_9_of_the_core_node_moves_the_edge_to_the_other(
    tmp_path: Path, two_cores: tuple[Node, Node]
) -> None:
    a, b = two_cores
    edge = start_edge(tmp_path, f"{a.url},{b.url}", "syd", env=EDGE_ENV)
    try:
        assert (await status(edge))["core"] == a.url
        a.kill()
        elapsed, watch = await moved_to(edge, b.url, 15)
        print(f"\nfailover after kill -9: {elapsed:.2f} s (budget {BUDGET_S:.1f} s)")
        assert elapsed <= BUDGET_S
        served_throughout(watch)
        # Another database: the edge loads its snapshot, and is fresh again.
        await eventually(partial(loads, edge, 2), 5, "the second snapshot loaded")
        assert (await status(edge))["stale"] is False
    finally:
        edge.stop()
    assert not edge.errors(), edge.errors()


async def test_a_black_holed_core_node_is_left_for_the_other(
    tmp_path: Path, two_cores: tuple[Node, Node]
) -> None:
    """The link to A stops answering without a reset (a dead host): the edge notices by its
    link timeout, and moves to B at once (it does not wait for A to answer its close)."""
    a, b = two_cores
    hole = ProxyThread("127.0.0.1", port(a), name="to-a")
    try:
        edge = start_edge(tmp_path, f"{hole.url},{b.url}", "syd", env=EDGE_ENV)
        try:
            assert (await status(edge))["core"] == hole.url
            hole.cut()
            elapsed, watch = await moved_to(edge, b.url, 15)
            print(f"\nfailover after a black hole: {elapsed:.2f} s (budget {BUDGET_S:.1f} s)")
            assert elapsed <= BUDGET_S
            served_throughout(watch)
            # Past LIGHTCONE_STALE_AFTER_MS of silence the answers said so.
            assert any(answer["stale"] for answer in watch.answers)
        finally:
            edge.stop()
    finally:
        hole.close()
    assert not edge.errors(), edge.errors()


async def test_a_node_with_the_edges_versions_sends_no_snapshot(tmp_path: Path) -> None:
    """Two URLs of one database (here: one core, directly and through a link that then
    black-holes): the edge resumes by version on the other, and a write made meanwhile
    arrives as a delta, not a snapshot."""
    core = start_core(tmp_path, corpus=SMALL_CORPUS)
    hole = ProxyThread("127.0.0.1", port(core), name="to-core")
    try:
        edge = start_edge(tmp_path, f"{hole.url},{core.url}", "syd", env=EDGE_ENV)
        try:
            hole.cut()
            headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            async with httpx.AsyncClient(headers=headers) as admin:
                put = await admin.put(f"{core.url}/admin/terms/Failover Town", json={"weight": 9})
            version = put.json()["version"]
            await moved_to(edge, core.url, 15)
            async with httpx.AsyncClient(timeout=5) as client:
                answer = await client.get(
                    f"{edge.url}/suggest", params={"q": "failover", "min_version": version}
                )
            assert answer.json()["items"][0]["term"] == "Failover Town"
            snapshots = [line for line in edge.lines if "loaded snapshot" in line]
            assert len(snapshots) == 1, snapshots  # the first one only
        finally:
            edge.stop()
    finally:
        hole.close()
        core.stop()
    assert not edge.errors(), edge.errors()
