"""Cursors across a real core and two real edges: presence, moves, modes, partitions."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import AsyncIterator, Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest

from shared.protocol import Moves
from tests.helpers.cursor_client import CursorClient
from tests.helpers.nodes import ADMIN_TOKEN, FAST_LINK, Node, Pair, core_and_two_edges

pytestmark = pytest.mark.e2e

FAST = {**FAST_LINK, "LIGHTCONE_PRESENCE_TIMEOUT_S": "1.5"}


@pytest.fixture
def pair(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Pair]:
    """Edge ``far`` (``syd``, through the proxy, ``request.param`` s each way) and ``near``."""
    delay_s = getattr(request, "param", 0.0)
    with core_and_two_edges(
        tmp_path, far="syd", near="lhr", core_env=FAST, edge_env=FAST, delay_s=delay_s
    ) as made:
        yield made


@pytest.fixture
async def clients(pair: Pair) -> AsyncIterator[list[CursorClient]]:
    """a1, a2 on edge far; b1, b2 on edge near; none joined yet."""
    made = [
        await CursorClient(edge.url, name).open()
        for edge, name in ((pair.far, "a1"), (pair.far, "a2"), (pair.near, "b1"), (pair.near, "b2"))
    ]
    yield made
    for client in made:
        await client.close()


async def set_cursor_flag(core: Node, stale_ok: bool) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(headers=headers) as client:
        response = await client.put(f"{core.url}/admin/flags/cursors", json={"stale_ok": stale_ok})
    assert response.status_code == 200


async def join_all(clients: list[CursorClient], room: str = "r") -> None:
    """Join everyone (pinging, as the presence timeout here is short) and await full views."""
    for client in clients:
        client.keep_alive(0.3)
        await client.join(room)
    everyone = {c.name for c in clients}
    for client in clients:
        await client.wait_for(partial(has_names, client, everyone), 5, "full presence")


def has_names(client: CursorClient, names: set[str]) -> bool:
    return client.names() == names


def unreachable(client: CursorClient, ids: set[str]) -> bool:
    return bool(client.statuses) and set(client.statuses[-1].unreachable) == ids


async def test_presence_moves_leave_and_timeout_across_edges(
    pair: Pair, clients: list[CursorClient]
) -> None:
    """Every member sees every other; moves reach local and remote members; leave, disconnect
    and a silent member's timeout are seen everywhere."""
    a1, a2, b1, b2 = clients
    await join_all(clients)
    assert b2.members[a1.you].region == "syd" and a1.members[b2.you].region == "lhr"

    await a1.move(100, 200)
    for client in (a2, b1, b2):
        await client.seen(a1.you, 100, 200)
    await b2.move(7, 8)
    for client in (a1, a2, b1):
        await client.seen(b2.you, 7, 8)

    await a2.send_leave()
    await b2.close()
    for client in (a1, b1):
        await client.wait_for(partial(has_names, client, {"a1", "b1"}), 5, "leave seen")

    a1.stop_keep_alive()  # a1 goes silent: the edge drops it after the presence timeout
    await b1.wait_for(partial(has_names, b1, {"b1"}), 10, "timeout seen across edges")


async def test_strict_mode_gives_every_member_the_same_order(
    pair: Pair, clients: list[CursorClient]
) -> None:
    """With the cursors flag strict, all members receive the same sequenced batches."""
    await set_cursor_flag(pair.core, False)
    await join_all(clients)
    for client in clients:
        await client.wait_for(partial(client.in_mode, "strict"), 5, "strict mode")
    for step in range(15):
        await asyncio.gather(*(c.move(step, n) for n, c in enumerate(clients)))
    for client in clients:
        for n, mover in enumerate(clients):
            await client.seen(mover.you, 14, n, timeout_s=10)
    sequences = [[m.message for m in c.moves if isinstance(m.message, Moves)] for c in clients]
    assert sequences[0] and all(s == sequences[0] for s in sequences[1:])
    seqs = [m.seq or 0 for m in sequences[0]]
    assert all(m.seq is not None for m in sequences[0]) and seqs == sorted(seqs)


@pytest.mark.parametrize("pair", [0.15], indirect=True)
async def test_tolerant_local_delivery_does_not_wait_for_the_core(
    pair: Pair, clients: list[CursorClient]
) -> None:
    """With edge a's link 150 ms each way, a2 sees a1's moves within a tick or so while b1
    sees them after a→core→b (at least 150 ms later)."""
    a1, a2, b1, _ = clients
    await join_all(clients[:3])
    local, remote = [], []
    for step in range(8):
        sent = await a1.move(1000 + step, 1000)
        local.append(await a2.seen(a1.you, 1000 + step, 1000) - sent)
        remote.append(await b1.seen(a1.you, 1000 + step, 1000) - sent)
    assert statistics.median(local) < 0.025 + 0.030, local
    assert statistics.median(remote) >= 0.150, remote


async def test_tolerant_cut_keeps_local_members_and_reconverges_after_heal(
    pair: Pair, clients: list[CursorClient]
) -> None:
    """During a cut, edge a's members keep seeing each other, are told b's members are
    unreachable, and everyone converges again after heal."""
    a1, a2, b1, b2 = clients
    await join_all(clients)
    pair.proxy.cut()
    await a1.wait_for(partial(unreachable, a1, {b1.you, b2.you}), 5, "b's unreachable")
    assert not a1.statuses[-1].reachable and not a1.statuses[-1].paused
    await a1.move(50, 60)
    await a2.seen(a1.you, 50, 60)
    pair.proxy.heal()
    await a1.wait_for(partial(unreachable, a1, set()), 10, "healed")
    assert a1.statuses[-1].reachable
    await a1.move(70, 80)
    await b1.seen(a1.you, 70, 80)
    for client in clients:
        await client.wait_for(partial(has_names, client, {"a1", "a2", "b1", "b2"}), 5, "all")


async def test_strict_cut_pauses_moves_and_resumes_after_heal(
    pair: Pair, clients: list[CursorClient]
) -> None:
    """In strict mode a cut edge tells its clients moves are paused; after heal they flow."""
    a1, a2, b1, _ = clients
    await set_cursor_flag(pair.core, False)
    await join_all(clients[:3])
    await a1.wait_for(partial(a1.in_mode, "strict"), 5, "strict")
    pair.proxy.cut()
    await a1.wait_for(partial(paused, a1, True), 5, "paused")
    await a1.move(11, 22)
    await a2.move(33, 44)
    pair.proxy.heal()
    await a1.wait_for(partial(paused, a1, False), 10, "resumed")
    assert a2.saw_position(a1.you, 11, 22) is None  # paused moves are dropped, not replayed
    await a1.move(55, 66)
    for client in (a2, b1):
        await client.seen(a1.you, 55, 66)


def paused(client: CursorClient, expected: bool) -> bool:
    return bool(client.statuses) and client.statuses[-1].paused == expected
