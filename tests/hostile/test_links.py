"""Hostile: the link and the queues behind it (issue 9, findings 2, 3, 4 and 8).

Each test first plays the attack with real core and edge processes, then checks the promise:
the link comes back and stays up, searches commit, strict reads work once the core answers,
and the connection that carried a poison item keeps being served.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from shared.protocol import (
    MAX_LINK_MESSAGE_BYTES,
    SUBPROTOCOL_JSON,
    Heartbeat,
    Hello,
    Join,
    Joined,
    Member,
    Moves,
    MovesBatch,
    Position,
    RoomSync,
    Suggest,
    decode,
    encode,
)
from shared.tasks import stop
from tests.helpers.nodes import (
    ADMIN_TOKEN,
    FAST_LINK,
    LINK_TOKEN,
    SMALL_CORPUS,
    Node,
    start_core,
    start_edge,
)
from tests.helpers.proxy_thread import ProxyThread
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.e2e

HEARTBEAT_S = 0.5
"""How often the raw edge of the relay test says it is alive (under the link timeout)."""


@dataclass
class Linked:
    core: Node
    edge: Node
    proxy: ProxyThread


@contextlib.contextmanager
def linked(tmp: Path, core_env: dict[str, str], edge_env: dict[str, str]) -> Iterator[Linked]:
    """A core, and an edge whose link runs through a proxy the test can cut."""
    core = start_core(tmp, corpus=SMALL_CORPUS, env=core_env)
    proxy = ProxyThread("127.0.0.1", int(core.url.rsplit(":", 1)[1]), name="link")
    try:
        edge = start_edge(tmp, proxy.url, "syd", env=edge_env)
        try:
            yield Linked(core, edge, proxy)
        finally:
            edge.stop()
    finally:
        proxy.close()
        core.stop()


async def status(edge: Node) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as client:
        answer: dict[str, Any] = (await client.get(f"{edge.url}/status")).json()
    return answer


async def committed(edge: Node) -> bool:
    async with httpx.AsyncClient(timeout=10) as client:
        ack = await client.post(f"{edge.url}/search", json={"id": uuid.uuid4().hex, "q": "Oslo"})
    return ack.status_code == 200 and ack.json()["status"] == "committed"


def metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


async def edge_metric(edge: Node, name: str) -> float:
    async with httpx.AsyncClient(timeout=10) as client:
        return metric((await client.get(f"{edge.url}/metrics/")).text, name)


# --- finding 4: a room_sync bigger than the core's frame limit --------------------------------

MEMBERS = 650
ROOMS_PER_MEMBER = 4
WIDE = "\U0001d538"  # MATHEMATICAL DOUBLE-STRUCK CAPITAL A: printable, 4 bytes in UTF-8


def room_name(client: int, n: int) -> str:
    """64 characters, ~250 bytes: 2,600 such rooms make a room_sync over 1 MiB."""
    head = f"{client:04d}-{n}-"
    return head + WIDE * (64 - len(head))


async def member_socket(url: str, client: int) -> ClientConnection:
    # Spread over loopback addresses, as many users would be (and per-address caps allow).
    source = f"127.0.{client // 200}.{2 + client % 200}"
    ws = await connect(url.replace("http://", "ws://") + "/ws", local_addr=(source, 0))
    for n in range(ROOMS_PER_MEMBER):
        name = f"{client:04d}" + WIDE * 28
        await ws.send(encode(Join(room_name(client, n), name, "#3366ff", f"s-{client}")))
    return ws


def test_the_attack_payload_is_over_the_core_limit() -> None:
    """The set-up below would have been one frame of more than 1 MiB."""
    rooms = {
        room_name(c, n): [Member(f"m{c:012x}", f"{c:04d}" + WIDE * 28, "#3366ff", "syd")]
        for c in range(MEMBERS)
        for n in range(ROOMS_PER_MEMBER)
    }
    assert len(encode(RoomSync(rooms))) > MAX_LINK_MESSAGE_BYTES


async def test_a_big_room_sync_does_not_lock_the_edge_out(tmp_path: Path) -> None:
    """650 sockets × 4 rooms with long names: after a link blip the edge re-announces them all
    (in parts under the limit) and the link stays up; searches commit again."""
    with linked(tmp_path, FAST_LINK, FAST_LINK) as net:
        sockets = await asyncio.gather(*(member_socket(net.edge.url, c) for c in range(MEMBERS)))
        try:

            async def all_joined() -> bool:
                members = await edge_metric(net.edge, "lightcone_cursor_members")
                return members >= MEMBERS * ROOMS_PER_MEMBER

            await eventually(all_joined, 60, "every member joined at the edge")

            net.proxy.cut()  # the blip
            await eventually(lambda: _link_is(net.edge, "down"), 10, "the edge saw the cut")
            net.proxy.heal()

            await eventually(lambda: _link_is(net.edge, "up"), 10, "the link came back")
            await eventually(lambda: committed(net.edge), 10, "a search commits after the blip")
            # It stays up: had the core refused the sync (1009), the link would be cycling.
            reconnects = await edge_metric(net.edge, "lightcone_link_reconnects_total")
            assert await committed(net.edge)
            assert (await status(net.edge))["link"] == "up"
            assert await edge_metric(net.edge, "lightcone_link_reconnects_total") == reconnects
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        assert not [line for line in net.core.lines if "1009" in line or "too big" in line]
        assert not net.core.errors() and not net.edge.errors()


async def _link_is(edge: Node, state: str) -> bool:
    return bool((await status(edge))["link"] == state)


# --- finding 3: the breaker's trial cancelled by a client that leaves -------------------------

BREAKER_ENV = {
    "LIGHTCONE_STRICT_TIMEOUT_MS": "300",
    "LIGHTCONE_BREAKER_FAILURES": "1",
    "LIGHTCONE_BREAKER_RESET_S": "0.3",
}


async def strict_status(edge: Node) -> tuple[int, str]:
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(f"{edge.url}/suggest", params={"q": "tok"})
    body = answer.json()
    return answer.status_code, str(body.get("error") or body.get("mode"))


async def test_a_cancelled_half_open_trial_does_not_jam_the_breaker(tmp_path: Path) -> None:
    """A strict read whose websocket client disconnects during the half-open trial: once the
    core answers again, strict reads work (they used to answer 503 "circuit breaker open"
    for ever, with the link up)."""
    with linked(tmp_path, {}, BREAKER_ENV) as net:
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as c:
            answer = await c.put(f"{net.core.url}/admin/flags/suggest", json={"stale_ok": False})
            assert answer.status_code == 200

        async def strict() -> bool:
            return await strict_status(net.edge) == (200, "strict")

        await eventually(strict, 10, "strict reads served")

        net.proxy.cut()  # the core stops answering; the link stays up (5 s timeout)
        assert await strict_status(net.edge) == (503, "strict_timeout")  # the breaker opens
        ws = await connect(net.edge.url.replace("http://", "ws://") + "/ws")
        try:
            await eventually(lambda: _trial_in_flight(ws), 5, "a trial sync in flight")
        finally:
            await ws.close()  # the client leaves during the trial: the read is cancelled
        net.proxy.heal()

        await eventually(strict, 10, "strict reads served again after the core answers")
        assert (await status(net.edge))["link"] == "up"
    assert not net.core.errors() and not net.edge.errors()


async def _trial_in_flight(ws: ClientConnection) -> bool:
    """Ask a strict suggest; ``True`` if no answer comes at once (it is the trial)."""
    await ws.send(encode(Suggest(1, "tok")))
    try:
        async with asyncio.timeout(0.15):
            await ws.recv()  # answered at once: "circuit breaker open", not yet half-open
    except TimeoutError:
        return True
    return False


# --- finding 2: a search the link cannot carry ----------------------------------------------


async def test_a_search_the_link_cannot_carry_does_not_wedge_the_outbox(tmp_path: Path) -> None:
    """``{"id": "\\udfff-1", "q": "paris"}``: refused (or dropped alone), and every search
    after it still commits (it used to stay ``queued`` for ever)."""
    with linked(tmp_path, {}, {}) as net:
        body = '{"id": "\\udfff-1", "q": "paris"}'  # a lone surrogate, as JSON allows
        async with httpx.AsyncClient(timeout=10) as client:
            bad = await client.post(
                f"{net.edge.url}/search",
                content=body.encode(),
                headers={"Content-Type": "application/json"},
            )
        assert bad.status_code == 400
        assert bad.json()["error"]  # a clear error code, whichever check refused it
        for _ in range(3):
            assert await committed(net.edge)
        assert (await status(net.edge))["outbox"] == 0


async def test_an_unsendable_echo_does_not_kill_the_connection(tmp_path: Path) -> None:
    """A websocket request whose ``id`` cannot be echoed: the connection keeps being served,
    and closing it unregisters it (its writer used to die, leaving it hung for ever)."""
    with linked(tmp_path, {}, {}) as net:
        async with connect(
            net.edge.url.replace("http://", "ws://") + "/ws",
            subprotocols=[Subprotocol(SUBPROTOCOL_JSON)],
        ) as ws:
            await ws.send('{"type": "suggest", "id": "\\udfff-1", "q": 5}')
            await ws.send('{"type": "ping", "id": 7}')
            answers = [json.loads(await ws.recv()) for _ in range(1)]
            while answers[-1].get("type") != "pong":
                answers.append(json.loads(await ws.recv()))
            assert answers[-1] == {"type": "pong", "id": 7}


# --- finding 8: many shared rooms must not get the other edge disconnected --------------------

SHARED_ROOMS = 1000


@dataclass
class RawEdge:
    """A simulated edge on the core's link: it joins rooms and counts what it receives."""

    ws: ClientConnection
    edge_id: str
    relayed: int = 0
    closed: int | None = None

    async def read(self) -> None:
        try:
            async for frame in self.ws:
                message = decode(frame if isinstance(frame, bytes) else frame.encode())
                if isinstance(message, Moves):
                    self.relayed += len(message.moves)
                elif isinstance(message, MovesBatch):
                    self.relayed += sum(len(m.moves) for m in message.batches)
        except ConnectionClosed as exc:
            self.closed = exc.rcvd.code if exc.rcvd else -1
        else:
            self.closed = self.ws.close_code

    async def beat(self) -> None:
        """Heartbeats as an edge sends them (a period, not a wait for a condition)."""
        with contextlib.suppress(ConnectionClosed):
            while True:
                await self.ws.send(encode(Heartbeat(-1)))
                await asyncio.sleep(HEARTBEAT_S)


async def raw_edge(core: Node, edge_id: str) -> RawEdge:
    ws = await connect(
        core.url.replace("http://", "ws://") + "/link",
        additional_headers={"Authorization": f"Bearer {LINK_TOKEN}"},
        max_size=None,
    )
    await ws.send(encode(Hello("syd", edge_id, -1, "")))
    return RawEdge(ws, edge_id)


async def test_a_burst_over_a_thousand_shared_rooms_does_not_starve_the_other_edge(
    tmp_path: Path,
) -> None:
    """Edge A shares 1,000 rooms with edge B and sends a move in each, one frame per room,
    back to back: the core yields between frames, so B's queue drains and B stays connected
    (it used to be closed 1008 "too slow" again and again)."""
    core = start_core(tmp_path, corpus=SMALL_CORPUS)
    edges: list[RawEdge] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        for edge_id in ("edge-b", "edge-a"):
            edge = await raw_edge(core, edge_id)
            edges.append(edge)
            tasks += [asyncio.create_task(edge.read()), asyncio.create_task(edge.beat())]
            for n in range(SHARED_ROOMS):
                member = Member(f"{edge_id}-{n}", "Ada", "#1a2b3c", "syd")
                await edge.ws.send(encode(Joined(f"room-{n}", member)))
        b, a = edges
        for tick in range(3):
            for n in range(SHARED_ROOMS):
                await a.ws.send(encode(Moves(f"room-{n}", [Position(f"edge-a-{n}", tick, n)])))

        async def all_relayed() -> bool:
            return b.relayed >= 3 * SHARED_ROOMS or b.closed is not None

        await eventually(all_relayed, 30, "every move relayed to B")
        assert b.closed is None and b.relayed == 3 * SHARED_ROOMS
    finally:
        await stop(*tasks)
        for edge in edges:
            await edge.ws.close()
        core.stop()
    assert not [line for line in core.lines if "too slow" in line]
    assert not core.errors()


async def test_links_that_hang_up_before_hello_log_no_error(tmp_path: Path) -> None:
    """Anyone holding the link token (or a proxy releasing connections it held during a cut)
    can open links and drop them before hello: each ends quietly, with no traceback."""
    core = start_core(tmp_path, corpus=SMALL_CORPUS)
    try:
        url = core.url.replace("http://", "ws://") + "/link"
        auth = {"Authorization": f"Bearer {LINK_TOKEN}"}
        for _ in range(20):
            ws = await connect(url, additional_headers=auth)
            ws.transport.abort()  # no closing handshake: the TCP connection just goes
        async with connect(url, additional_headers=auth) as ws:
            await ws.close()
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{core.url}/readyz")).status_code == 200
    finally:
        core.stop()
    assert not core.errors(), core.errors()
