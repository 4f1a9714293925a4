"""Cursors across two real core nodes on one PostgreSQL and one Redis (the broker), an edge
on each: tolerant moves cross nodes, strict rooms keep one order on both edges (also after a
``kill -9`` of a node), the broker lost degrades as documented (operations §5d) and everything
comes back without a restart, an edge that fails over keeps its members (also against the
old node's late "edge gone"), a broker unreachable at start, and what a cross-node move
costs."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
import pytest

from load.histogram import parse_sum
from shared.protocol import Moves
from tests.helpers.cursor_client import CursorClient
from tests.helpers.nodes import ADMIN_TOKEN, FAST_LINK, SMALL_CORPUS, Node, start_core, start_edge
from tests.helpers.postgres import free_port
from tests.helpers.proxy_thread import ProxyThread
from tests.helpers.redis import Server
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.e2e

FAST = {**FAST_LINK, "LIGHTCONE_PRESENCE_TIMEOUT_S": "3.0"}


@dataclass
class Cluster:
    """Core nodes ``a`` and ``b`` on one store and one broker; edge ``syd`` on ``a`` (then
    ``b`` if ``a`` goes), edge ``lhr`` on ``b``."""

    a: Node
    b: Node
    syd: Node
    lhr: Node
    redis: Server
    hole: ProxyThread | None = None


def cluster_of(
    tmp: Path,
    store: str,
    redis: Server,
    *,
    strict: bool,
    hole: list[ProxyThread] | None = None,
    a_env: dict[str, str] | None = None,
) -> Iterator[Cluster]:
    """The :class:`Cluster`; with ``hole``, edge syd reaches node a through a proxy (appended
    to it) that the test may cut; ``a_env``: more settings of node a."""
    env = {
        **FAST,
        "LIGHTCONE_STORE": store,
        "LIGHTCONE_BROKER": redis.url,
        "LIGHTCONE_CURSORS_STALE_OK": "false" if strict else "true",
    }
    nodes: list[Node] = []
    try:
        nodes.append(start_core(tmp / "a", corpus=SMALL_CORPUS, env={**env, **(a_env or {})}))
        nodes.append(start_core(tmp / "b", corpus=SMALL_CORPUS, env=env))
        a, b = nodes
        to_a = a.url
        if hole is not None:
            hole.append(ProxyThread("127.0.0.1", int(a.url.rsplit(":", 1)[1]), name="to-a"))
            to_a = hole[0].url
        nodes.append(start_edge(tmp, f"{to_a},{b.url}", "syd", env=FAST))
        nodes.append(start_edge(tmp, b.url, "lhr", env=FAST))
        yield Cluster(a, b, nodes[2], nodes[3], redis)
    finally:
        for node in reversed(nodes):
            node.stop()
    for node in nodes:
        assert not node.errors(), node.errors()


@pytest.fixture
def tolerant(tmp_path: Path, postgres_url: str, own_redis: Server) -> Iterator[Cluster]:
    yield from cluster_of(tmp_path, postgres_url, own_redis, strict=False)


@pytest.fixture
def strict(tmp_path: Path, postgres_url: str, own_redis: Server) -> Iterator[Cluster]:
    yield from cluster_of(tmp_path, postgres_url, own_redis, strict=True)


async def clients_on(cluster: Cluster, *placed: tuple[str, str]) -> list[CursorClient]:
    """Cursor clients ``(edge, name)``, each joined to room ``r`` (pinging, as the presence
    timeout here is short), once every one sees every other."""
    edges = {"syd": cluster.syd, "lhr": cluster.lhr}
    made = [await CursorClient(edges[edge].url, name).open() for edge, name in placed]
    for client in made:
        client.keep_alive(0.3)
        await client.join("r")
    everyone = {c.name for c in made}
    for client in made:
        await client.wait_for(partial(has_names, client, everyone), 10, "full presence")
    return made


@pytest.fixture
async def opened() -> AsyncIterator[list[CursorClient]]:
    """The test's clients, closed at the end."""
    made: list[CursorClient] = []
    yield made
    for client in made:
        await client.close()


def has_names(client: CursorClient, names: set[str]) -> bool:
    return client.names() == names


def unreachable(client: CursorClient, ids: set[str]) -> bool:
    return bool(client.statuses) and set(client.statuses[-1].unreachable) == ids


async def broker_status(core: Node) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(headers=headers) as client:
        response = await client.get(f"{core.url}/admin/status")
    assert response.status_code == 200, response.text
    broker: dict[str, object] = response.json()["broker"]
    return broker


async def both_see_each_other(cluster: Cluster) -> None:
    for core in (cluster.a, cluster.b):

        async def sees(core: Node = core) -> bool:
            status = await broker_status(core)
            return status["up"] is True and status["nodes"] == 1

        await eventually(sees, 10, f"{core.name} on the broker with the other node")


def numbered(client: CursorClient) -> list[Moves]:
    return [m.message for m in client.moves if isinstance(m.message, Moves)]


async def test_tolerant_moves_cross_core_nodes(
    tolerant: Cluster, opened: list[CursorClient]
) -> None:
    await both_see_each_other(tolerant)
    opened += await clients_on(tolerant, ("syd", "a1"), ("syd", "a2"), ("lhr", "b1"))
    a1, a2, b1 = opened
    assert b1.members[a1.you].region == "syd" and a1.members[b1.you].region == "lhr"
    await a1.move(100, 200)
    for client in (a2, b1):
        await client.seen(a1.you, 100, 200)
    await b1.move(7, 8)
    for client in (a1, a2):
        await client.seen(b1.you, 7, 8)
    await a2.send_leave()
    await b1.wait_for(partial(has_names, b1, {"a1", "b1"}), 5, "a2's leave, across nodes")


async def test_strict_rooms_keep_one_order_across_core_nodes(
    strict: Cluster, opened: list[CursorClient]
) -> None:
    """Members on both nodes' edges get the same numbered batches, in the same order."""
    await both_see_each_other(strict)
    placed = (("syd", "a1"), ("syd", "a2"), ("lhr", "b1"), ("lhr", "b2"))
    opened += await clients_on(strict, *placed)
    for client in opened:
        await client.wait_for(partial(client.in_mode, "strict"), 5, "strict mode")
    for step in range(15):
        await asyncio.gather(*(c.move(step, n) for n, c in enumerate(opened)))
    for client in opened:
        for n, mover in enumerate(opened):
            await client.seen(mover.you, 14, n, timeout_s=10)
    sequences = [numbered(c) for c in opened]
    assert sequences[0] and all(s == sequences[0] for s in sequences[1:])
    seqs = [m.seq for m in sequences[0]]
    assert all(seq is not None for seq in seqs) and seqs == sorted(seqs)  # type: ignore[type-var]
    assert len(set(seqs)) == len(seqs)


async def test_the_broker_lost_degrades_and_everything_comes_back(
    strict: Cluster, opened: list[CursorClient]
) -> None:
    """Redis stopped: the other node's members turn unreachable, then are removed after the
    presence timeout; strict moves pause for everyone (none is relayed, so no order can
    differ). Redis started again: members and numbered moves come back, no restart."""
    await both_see_each_other(strict)
    opened += await clients_on(strict, ("syd", "a1"), ("syd", "a2"), ("lhr", "b1"))
    a1, a2, b1 = opened
    strict.redis.stop()
    await a1.wait_for(partial(unreachable, a1, {b1.you}), 10, "b1 unreachable at syd")
    await b1.wait_for(partial(unreachable, b1, {a1.you, a2.you}), 10, "a's unreachable")
    await a1.move(11, 22)  # a strict move: paused while the broker is lost
    await a2.wait_for(partial(has_names, a2, {"a1", "a2"}), 10, "b1 removed at timeout")
    assert a2.saw_position(a1.you, 11, 22) is None
    assert (await broker_status(strict.a))["up"] is False

    strict.redis.start()
    await both_see_each_other(strict)
    for client in opened:
        await client.wait_for(partial(has_names, client, {"a1", "a2", "b1"}), 10, "all back")
    assert a1.members[b1.you].reachable and b1.members[a1.you].reachable
    await a1.move(33, 44)
    for client in opened:
        await client.seen(a1.you, 33, 44)
    assert a2.saw_position(a1.you, 11, 22) is None  # paused moves are dropped, not replayed
    after = [[m for m in numbered(c) if m.moves[0].x == 33] for c in opened]
    assert after[0] == after[1] == after[2] and after[0][0].seq is not None


async def test_the_broker_lost_keeps_tolerant_moves_within_a_node(
    tolerant: Cluster, opened: list[CursorClient]
) -> None:
    """Redis stopped, tolerant: members of this node's edges still see each other's moves;
    the other node's are unreachable; after Redis is back, moves cross nodes again."""
    await both_see_each_other(tolerant)
    opened += await clients_on(tolerant, ("syd", "a1"), ("syd", "a2"), ("lhr", "b1"))
    a1, a2, b1 = opened
    tolerant.redis.stop()
    await a1.wait_for(partial(unreachable, a1, {b1.you}), 10, "b1 unreachable at syd")
    await b1.wait_for(partial(unreachable, b1, {a1.you, a2.you}), 10, "a's unreachable")
    await a1.move(12, 34)
    await a2.seen(a1.you, 12, 34)
    tolerant.redis.start()
    await both_see_each_other(tolerant)  # and each announced its edges to the other
    await a1.move(56, 78)
    await b1.seen(a1.you, 56, 78)
    assert b1.saw_position(a1.you, 12, 34) is None  # not replayed


async def test_an_edge_that_fails_over_keeps_its_members(
    tolerant: Cluster, opened: list[CursorClient]
) -> None:
    """kill -9 of node a: edge syd moves to node b and re-announces its members there; node
    a counted as gone (and the presence timeout past) does not remove them."""
    await both_see_each_other(tolerant)
    opened += await clients_on(tolerant, ("syd", "a1"), ("lhr", "b1"))
    a1, b1 = opened
    tolerant.a.kill()
    pattern = "link up to " + re.escape(tolerant.b.url)
    await asyncio.to_thread(tolerant.syd.wait_for, pattern, 10)
    await a1.move(5, 5)
    await b1.seen(a1.you, 5, 5, timeout_s=10)

    async def a_gone() -> bool:
        return (await broker_status(tolerant.b))["nodes"] == 0

    await eventually(a_gone, 10, "node a counted as gone on node b")
    # A member that stays silent from now on is removed after the presence timeout: once
    # b1 sees it go, that timeout has passed since node a was counted gone, too.
    silent = await CursorClient(tolerant.lhr.url, "s1").open()
    opened.append(silent)
    await silent.join("r")
    await b1.wait_for(partial(has_names, b1, {"a1", "b1", "s1"}), 5, "s1 joined")
    await b1.wait_for(partial(has_names, b1, {"a1", "b1"}), 10, "s1 timed out")
    assert not unreachable(b1, {a1.you})
    await b1.move(6, 6)
    await a1.seen(b1.you, 6, 6)


@pytest.fixture
def black_holed(tmp_path: Path, postgres_url: str, own_redis: Server) -> Iterator[Cluster]:
    """syd reaches node a through a proxy (``cluster.hole``); node a notices a silent link
    only after 3 s, long after syd (1 s) has moved to node b."""
    hole: list[ProxyThread] = []
    try:
        late = {"LIGHTCONE_LINK_TIMEOUT_S": "3.0"}
        for cluster in cluster_of(
            tmp_path, postgres_url, own_redis, strict=False, hole=hole, a_env=late
        ):
            cluster.hole = hole[0]
            yield cluster
    finally:
        for proxy in hole:
            proxy.close()


async def test_the_old_nodes_late_edge_gone_does_not_remove_what_moved(
    black_holed: Cluster, opened: list[CursorClient]
) -> None:
    """syd's link to node a black-holes: syd moves to node b and re-announces its members
    there first; node a's "syd gone", seconds later, must not mark them unreachable nor
    remove them (operations §5d, "An edge moves")."""
    cluster = black_holed
    await both_see_each_other(cluster)
    opened += await clients_on(cluster, ("syd", "a1"), ("lhr", "b1"))
    a1, b1 = opened
    assert cluster.hole is not None
    cluster.hole.cut()
    pattern = "link up to " + re.escape(cluster.b.url)
    await asyncio.to_thread(cluster.syd.wait_for, pattern, 10)
    await asyncio.to_thread(cluster.a.wait_for, "silent for", 10)  # a's link timeout
    # A member silent from now on is removed after the presence timeout: once b1 sees it
    # go, that timeout has passed since node a dropped syd's old link.
    silent = await CursorClient(cluster.lhr.url, "s1").open()
    opened.append(silent)
    await silent.join("r")
    await b1.wait_for(partial(has_names, b1, {"a1", "b1", "s1"}), 5, "s1 joined")
    await b1.wait_for(partial(has_names, b1, {"a1", "b1"}), 10, "s1 timed out")
    assert a1.you in b1.members and b1.members[a1.you].reachable
    assert not any(a1.you in status.unreachable for status in b1.statuses)
    await a1.move(9, 9)
    await b1.seen(a1.you, 9, 9)


async def held_s(edge: Node) -> float:
    """Total time moves waited at ``edge`` for its tick so far (its histogram's sum)."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{edge.url}/metrics/")).text
    return parse_sum(text, "lightcone_cursor_held_seconds") or 0.0


async def test_cross_node_moves_cost_one_broker_hop(
    tolerant: Cluster, tmp_path: Path, opened: list[CursorClient]
) -> None:
    """Side by side: moves from edge syd (node a) and from edge fra (node b) to a member on
    lhr (node b), tolerant then strict (the flag set on node a only). Each path's mean latency
    less the mean time its moves waited for their edge's tick (which depends on the tick's
    phase, not on the path) is what the relay costs. Printed with ``-s``; the bound only
    catches a relay that waits for something (a timer, a lost message)."""
    fra = start_edge(tmp_path, tolerant.b.url, "fra", env=FAST)
    try:
        await both_see_each_other(tolerant)
        opened += await clients_on(tolerant, ("syd", "a1"), ("lhr", "b1"))
        f1 = await CursorClient(fra.url, "f1").open()
        opened.append(f1)
        f1.keep_alive(0.3)
        await f1.join("r")
        a1, b1 = opened[:2]
        await b1.wait_for(partial(has_names, b1, {"a1", "b1", "f1"}), 10, "f1 joined")
        moves = 40
        for mode in ("tolerant", "strict"):
            if mode == "strict":  # set on node a: node b reads it again from the store
                await set_cursor_flag(tolerant.a, stale_ok=False)
                for client in opened:
                    await client.wait_for(partial(client.in_mode, "strict"), 5, "strict")
            relay: dict[str, float] = {}
            for path, mover, edge in (("cross node", a1, tolerant.syd), ("same node", f1, fra)):
                total, held = 0.0, await held_s(edge)
                for step in range(moves):
                    x = 1000 + step + (5000 if mode == "strict" else 0)
                    sent = await mover.move(x, 10)
                    total += await b1.seen(mover.you, x, 10) - sent
                held = await held_s(edge) - held
                relay[path] = (total - held) / moves
                print(
                    f"\n{mode} {path}: mean {total / moves * 1000:.1f} ms, of which the "
                    f"tick {held / moves * 1000:.1f} ms, relay {relay[path] * 1000:.1f} ms"
                )
            assert relay["cross node"] < 0.25
    finally:
        fra.stop()
    assert not fra.errors(), fra.errors()


async def set_cursor_flag(core: Node, *, stale_ok: bool) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(headers=headers) as client:
        response = await client.put(f"{core.url}/admin/flags/cursors", json={"stale_ok": stale_ok})
    assert response.status_code == 200, response.text


async def test_a_strict_room_resumes_with_one_order_after_kill_9_of_a_node(
    strict: Cluster, opened: list[CursorClient]
) -> None:
    """Members on both nodes' edges, moving, when node a is killed: edge syd moves to node
    b; after it, both members get the same numbered batches in the same order again."""
    await both_see_each_other(strict)
    opened += await clients_on(strict, ("syd", "a1"), ("lhr", "b1"))
    a1, b1 = opened
    for step in range(5):
        await asyncio.gather(a1.move(step, 1), b1.move(step, 2))
    strict.a.kill()
    pattern = "link up to " + re.escape(strict.b.url)
    await asyncio.to_thread(strict.syd.wait_for, pattern, 10)
    await a1.wait_for(partial(paused, a1, False), 10, "syd's room not paused")
    for step in range(100, 115):
        await asyncio.gather(a1.move(step, 1), b1.move(step, 2))
    for client in opened:
        for y, mover in ((1, a1), (2, b1)):
            await client.seen(mover.you, 114, y, timeout_s=10)
    after = [[m for m in numbered(c) if m.moves[0].x >= 100] for c in opened]
    assert after[0] and after[0] == after[1]
    seqs = [m.seq for m in after[0]]
    assert all(seq is not None for seq in seqs) and seqs == sorted(seqs)  # type: ignore[type-var]


def paused(client: CursorClient, expected: bool) -> bool:
    return bool(client.statuses) and client.statuses[-1].paused == expected


async def test_a_core_starts_without_an_unreachable_broker_and_says_so(tmp_path: Path) -> None:
    """Documented choice (operations §5d): the node starts alone and keeps dialling; the
    log and ``/admin/status`` say so, without the broker's password."""
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    core = start_core(tmp_path, corpus=SMALL_CORPUS, env={**FAST, "LIGHTCONE_BROKER": url})
    try:
        line = core.wait_for("is unreachable: starting without it", 10).string
        assert "s3cret" not in line and ":***@" in line
        status = await broker_status(core)
        assert status == {"url": url.replace("s3cret", "***"), "up": False, "nodes": 0}
    finally:
        core.stop()
