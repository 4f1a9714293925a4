"""The edge mesh with real processes: a core and two edges whose mesh leg and link to the
core each run through a proxy the test can cut.

``lhr`` sorts before ``syd``, so ``lhr`` dials; ``syd`` has the mesh listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.asyncio.client import connect

from shared.protocol import PROTOCOL_VERSION, MeshHello, Moves, decode, encode
from tests.e2e.test_cursors import has_names, join_all
from tests.helpers.cursor_client import CursorClient
from tests.helpers.nodes import FAST_LINK, LINK_TOKEN, SMALL_CORPUS, Node, start_core, start_edge
from tests.helpers.proxy_thread import ProxyThread
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.e2e

PRESENCE_TIMEOUT_S = 1.5
FAST = {**FAST_LINK, "LIGHTCONE_PRESENCE_TIMEOUT_S": str(PRESENCE_TIMEOUT_S)}
HEARTBEAT_S = float(FAST_LINK["LIGHTCONE_HEARTBEAT_S"])


@dataclass
class Mesh:
    core: Node
    lhr: Node
    syd: Node
    leg: ProxyThread  # lhr → syd's mesh listener
    link: ProxyThread  # lhr → core

    @property
    def mesh_url(self) -> str:
        return self.leg.url.replace("http://", "ws://") + "/mesh"


@pytest.fixture
def mesh(tmp_path: Path) -> Iterator[Mesh]:
    core = start_core(tmp_path, corpus=SMALL_CORPUS, env=FAST)
    nodes = [core]
    proxies: list[ProxyThread] = []
    try:
        syd = start_edge(tmp_path, core.url, "syd", env={**FAST, "LIGHTCONE_MESH_PORT": "0"})
        nodes.append(syd)
        port = int(httpx.get(f"{syd.url}/status").json()["mesh"]["port"])
        proxies.append(ProxyThread("127.0.0.1", port, name="mesh"))
        proxies.append(ProxyThread("127.0.0.1", int(core.url.rsplit(":", 1)[1]), name="link"))
        peers = "syd=" + proxies[0].url.replace("http://", "ws://") + "/mesh"
        lhr = start_edge(
            tmp_path, proxies[1].url, "lhr", env={**FAST, "LIGHTCONE_MESH_PEERS": peers}
        )
        nodes.append(lhr)
        yield Mesh(core, lhr, syd, proxies[0], proxies[1])
    finally:
        for node in reversed(nodes):
            node.stop()
        for proxy in proxies:
            proxy.close()
    for node in nodes:
        assert not node.errors(), node.errors()


@pytest.fixture
async def clients(mesh: Mesh) -> AsyncIterator[list[CursorClient]]:
    """l1 on lhr, s1 on syd, joined in room ``r``, once the mesh link is up."""
    await eventually(partial(peer_state, mesh.lhr, "syd", "up"), 10, "mesh up")
    made = [
        await CursorClient(mesh.lhr.url, "l1").open(),
        await CursorClient(mesh.syd.url, "s1").open(),
    ]
    await join_all(made)
    yield made
    for client in made:
        await client.close()


async def peer_state(edge: Node, region: str, state: str) -> bool:
    async with httpx.AsyncClient() as client:
        peers = (await client.get(f"{edge.url}/status")).json()["mesh"]["peers"]
    return bool(peers[region]["state"] == state)


async def metric(node: Node, name: str, labels: str = "") -> float:
    """A counter's value (0 before its first increment)."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{node.url}/metrics/")).text
    pattern = rf"^{re.escape(name)}_total{re.escape(labels)} (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def shown_once(client: CursorClient, member: str) -> bool:
    """No position of ``member`` reached ``client`` twice, none after a newer one: the
    x of each test's moves goes up, so the shown x's must go up strictly."""
    xs = [
        p.x
        for r in client.moves
        if isinstance(r.message, Moves)
        for p in r.message.moves
        if p.id == member
    ]
    return xs == sorted(set(xs))


async def test_moves_go_over_the_mesh_and_the_core_relays_none(
    mesh: Mesh, clients: list[CursorClient]
) -> None:
    """Moves between two edges go straight over the mesh: the core counts them as left to
    the mesh and relays none; each position is shown once, in order."""
    l1, s1 = clients
    for x in range(1, 21):
        await l1.move(x, 1)
        await s1.move(x, 2)
        await s1.seen(l1.you, x, 1)
        await l1.seen(s1.you, x, 2)
    assert await metric(mesh.core, "lightcone_cursor_relayed", '{path="core"}') == 0
    assert await metric(mesh.core, "lightcone_cursor_relayed", '{path="mesh"}') >= 40
    assert await metric(mesh.syd, "lightcone_mesh_moves_received") >= 20
    assert shown_once(s1, l1.you) and shown_once(l1, s1.you)


async def test_the_mesh_is_private_and_authenticated(mesh: Mesh) -> None:
    """The public listener has no /mesh; the mesh listener wants the link token."""
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{mesh.syd.url}/mesh")).status_code == 404
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with connect(mesh.mesh_url, proxy=None):
            pass
    assert refused.value.response.status_code == 401
    refusals = [
        (b"\x80", 1008, "expected mesh_hello"),  # an empty map
        (encode(MeshHello("syd", "syd-x", PROTOCOL_VERSION)), 1008, "same region"),
        (encode(MeshHello("zrh", "zrh-x", PROTOCOL_VERSION)), 1008, "sorts first dials"),
        (encode(MeshHello("ams", "ams-x", PROTOCOL_VERSION + 99)), 4426, "unsupported_protocol"),
    ]
    for hello, code, reason in refusals:
        got_code, got_reason = await mesh_answer(mesh, hello)
        assert got_code == code and reason in got_reason, (got_code, got_reason)
    async with connect(mesh.mesh_url, additional_headers=AUTH, proxy=None) as ws:
        await ws.send(encode(MeshHello("ams", "ams-x", PROTOCOL_VERSION)))  # ams dials syd
        answer = decode(await ws.recv(decode=False))
    assert isinstance(answer, MeshHello) and answer.region == "syd"


AUTH = {"Authorization": f"Bearer {LINK_TOKEN}"}


async def mesh_answer(mesh: Mesh, hello: bytes) -> tuple[int, str]:
    """How syd's mesh listener closes a link whose first frame is ``hello``."""
    async with connect(mesh.mesh_url, additional_headers=AUTH, proxy=None) as ws:
        await ws.send(hello)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_a_cut_mesh_leg_falls_back_to_the_core_and_heals(
    mesh: Mesh, clients: list[CursorClient]
) -> None:
    """The mesh leg cut: moves keep flowing through the core's relay; healed: back on the
    mesh. Never a position shown twice or out of order."""
    l1, s1 = clients
    await l1.move(1, 1)
    await s1.seen(l1.you, 1, 1)
    mesh.leg.cut()
    cut_at = time.monotonic()
    x = 1
    async with asyncio.timeout(5):
        while True:  # a move every 0.1 s until one arrives (through the core)
            x += 1
            sent = await l1.move(x, 1)
            with contextlib.suppress(AssertionError):
                await s1.seen(l1.you, x, 1, timeout_s=0.1)
                break
    # The leg went silent: within a heartbeat (0.2 s here) the ticks took the core's path.
    assert sent - cut_at < 2 * HEARTBEAT_S
    await eventually(partial(peer_state, mesh.lhr, "syd", "down"), 10, "mesh down")
    for through_core in range(x + 1, x + 11):
        await l1.move(through_core, 1)
        await s1.seen(l1.you, through_core, 1)
    assert await metric(mesh.core, "lightcone_cursor_relayed", '{path="core"}') >= 10
    mesh.leg.heal()  # what the cut held flows now: late, older moves, never shown
    await eventually(partial(peer_state, mesh.lhr, "syd", "up"), 10, "mesh up again")
    before = await metric(mesh.core, "lightcone_cursor_relayed", '{path="core"}')
    for meshed in range(x + 11, x + 21):
        await l1.move(meshed, 1)
        await s1.seen(l1.you, meshed, 1)
    assert await metric(mesh.core, "lightcone_cursor_relayed", '{path="core"}') == before
    assert shown_once(s1, l1.you)


async def test_cut_off_from_the_core_an_edge_keeps_its_peers(
    mesh: Mesh, clients: list[CursorClient]
) -> None:
    """lhr loses the core but not syd: moves of members already present keep flowing both
    ways, past the core's presence timeout, and the room says so; a new member on syd
    reaches lhr only once the core is back."""
    l1, s1 = clients
    mesh.link.cut()
    cut_at = time.monotonic()
    await l1.wait_for(
        lambda: bool(l1.statuses) and l1.statuses[-1].direct == ["syd"], 10, "direct status"
    )
    assert l1.statuses[-1].reachable is False and l1.statuses[-1].unreachable == []
    # The core loses lhr after its link timeout, and would drop its members a presence
    # timeout later: syd's mesh still reaching lhr keeps them.
    outlived = float(FAST_LINK["LIGHTCONE_LINK_TIMEOUT_S"]) + PRESENCE_TIMEOUT_S + 1
    x = 0
    async with asyncio.timeout(20):
        while time.monotonic() - cut_at < outlived:
            x += 1
            await l1.move(x, 5)
            await s1.seen(l1.you, x, 5)
            await s1.move(x, 6)
            await l1.seen(s1.you, x, 6)
    assert s1.names() == {"l1", "s1"} and l1.names() == {"l1", "s1"}

    s2 = await CursorClient(mesh.syd.url, "s2").open()
    try:
        s2.keep_alive(0.3)
        await s2.join("r")
        await s1.wait_for(partial(has_names, s1, {"l1", "s1", "s2"}), 5, "s2 on syd")
        assert l1.names() == {"l1", "s1"}  # the join waits for the core
        mesh.link.heal()
        await l1.wait_for(partial(has_names, l1, {"l1", "s1", "s2"}), 10, "s2 after the heal")
    finally:
        await s2.close()
