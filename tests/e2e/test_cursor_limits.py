"""Cursor limits and bad input: slow consumers, floods, full rooms, spoofing, bad values."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from shared.protocol import (
    SUBPROTOCOL_JSON,
    Error,
    Join,
    Message,
    Move,
    Moves,
    Position,
    Presence,
    decode,
    decode_json,
    encode,
    pack,
)
from tests.helpers.cursor_client import CursorClient
from tests.helpers.nodes import SMALL_CORPUS, Node, start_core, start_edge
from tests.helpers.raw_client import RawClient

pytestmark = pytest.mark.e2e

TIGHT = {
    "LIGHTCONE_MAX_ROOM_MEMBERS": "30",
    "LIGHTCONE_MAX_QUEUED_FRAMES": "16",
    "LIGHTCONE_TICK_MS": "10",
    "LIGHTCONE_WS_RATE": "100000",
    "LIGHTCONE_WS_BURST": "100000",
    "LIGHTCONE_SOCKET_SNDBUF": "4096",
}


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """An edge with small limits, so tests reach them quickly."""
    tmp = tmp_path_factory.mktemp("tight")
    core = start_core(tmp, corpus=SMALL_CORPUS)
    try:
        edge = start_edge(tmp, core.url, "syd", env=TIGHT)
        try:
            yield edge
        finally:
            edge.stop()
    finally:
        core.stop()
    assert not edge.errors(), edge.errors()


async def metric(edge: Node, name: str) -> float:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{edge.url}/metrics/")).text
    line = next(line for line in text.splitlines() if line.startswith(name + " "))
    return float(line.split()[1])


def rss_kb(node: Node) -> int:
    status = Path(f"/proc/{node.process.pid}/status").read_text()
    return int(next(x for x in status.splitlines() if x.startswith("VmRSS")).split()[1])


async def test_a_client_that_stops_reading_delays_nobody(tight: Node) -> None:
    """A client that stops reading loses cursor frames (bounded memory), the others keep
    getting moves promptly, and once it reads again a fresh presence repairs its view."""
    slow = await RawClient(tight.url).open()
    await slow.send(Join("slow-room", "sleepy", "#000000"))
    assert isinstance(await slow.receive(), Presence)
    movers = [await CursorClient(tight.url, f"m{n}").open() for n in range(20)]
    watcher = await CursorClient(tight.url, "watcher").open()
    before = rss_kb(tight)
    try:
        for client in [*movers, watcher]:
            await client.join("slow-room")
        step = 0
        async with asyncio.timeout(30):  # flood until the slow client's frames are dropped
            while await metric(tight, "lightcone_ws_frames_dropped_total") == 0:
                for _ in range(50):
                    step += 1
                    await asyncio.gather(*(m.move(step % 10000, n) for n, m in enumerate(movers)))
        sent = await movers[0].move(9999, 9999)
        seen = await watcher.seen(movers[0].you, 9999, 9999)
        assert seen - sent < 0.5, "the watcher was held up by the slow client"
        assert rss_kb(tight) - before < 50 * 1024, "edge memory grew with the backlog"

        final = {m.you: (step % 10000 if m is not movers[0] else 9999) for m in movers}
        latest: dict[str, int] = {}
        async with asyncio.timeout(20):
            while any(latest.get(i) != x for i, x in final.items()):
                message = await slow.receive()
                if isinstance(message, Presence):
                    latest.update({m.id: m.x for m in message.members})
                elif isinstance(message, Moves):
                    latest.update({p.id: p.x for p in message.moves})
    finally:
        for client in [*movers, watcher]:
            await client.close()
        slow.close()


async def test_room_full_and_too_many_rooms(tight: Node) -> None:
    """Joining past the room's member limit or the connection's room limit is refused."""
    clients = [await CursorClient(tight.url, f"f{n}").open() for n in range(31)]
    try:
        for client in clients[:30]:
            await client.join("full-room")
        await clients[30].send(Join("full-room", "late", "#ffffff"))
        await clients[30].wait_for(lambda: clients[30].errors, 5, "room_full error")
        assert clients[30].errors[0].code == "room_full"
        for n in range(4):
            await clients[30].send(Join(f"room-{n}", "many", "#ffffff"))
        await clients[30].send(Join("room-4", "many", "#ffffff"))
        await clients[30].wait_for(lambda: len(clients[30].errors) == 2, 5, "second error")
        assert clients[30].errors[1].code == "too_many_rooms"
    finally:
        for client in clients:
            await client.close()


@pytest.fixture
async def bystander(tight: Node) -> AsyncIterator[CursorClient]:
    """A member of the room whose view must stay right while others misbehave."""
    client = await CursorClient(tight.url, "bystander").open()
    await client.join("bad-room")
    yield client
    mover = await CursorClient(tight.url, "mover").open()
    await mover.join("bad-room")
    await mover.move(1, 2)
    await client.seen(mover.you, 1, 2)
    await mover.close()
    await client.close()


NAN = float("nan")


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (pack({"type": "join", "room": "bad-room", "name": 5, "color": "#000000"}), "bad_field"),
        (pack({"type": "join", "room": "bad-room", "name": "n", "color": "red"}), "bad_color"),
        (pack({"type": "join", "room": "x" * 65, "name": "n", "color": "#000000"}), "bad_room"),
        (pack({"type": "join", "room": "", "name": "n", "color": "#000000"}), "bad_room"),
        # A control character is refused by the decoder's text door, before the room rules.
        (pack({"type": "join", "room": "r\n", "name": "n", "color": "#000000"}), "bad_text"),
        (pack({"type": "join", "room": "r", "name": "", "color": "#000000"}), "bad_name"),
        (pack({"type": "join", "room": "r", "name": "n" * 33, "color": "#000000"}), "bad_name"),
        (encode(Move(1, 2)), "bad_room"),
        (pack({"type": "move", "x": NAN, "y": 1}), "bad_field"),
        (pack({"type": "move", "x": math.inf, "y": 1}), "bad_field"),
        (pack({"type": "move", "x": 1.5, "y": 1}), "bad_field"),
        (pack({"type": "move", "x": "1", "y": 1}), "bad_field"),
        (pack({"type": "move", "x": 1, "y": 1, "id": "someone-else"}), "bad_message"),
        (encode(Moves("bad-room", [Position("someone-else", 1, 1)])), "unexpected_type"),
        (pack({"type": "leave", "room": "nowhere"}), "not_joined"),
    ],
)
async def test_bad_cursor_messages_get_errors(
    tight: Node, bystander: CursorClient, frame: bytes, code: str
) -> None:
    """Each bad cursor message gets an error with its code; the room is unharmed."""
    async with connect(tight.url.replace("http://", "ws://") + "/ws") as ws:
        await ws.send(frame)
        answer = decode(await ws.recv(decode=False))
    assert isinstance(answer, Error) and answer.code == code, answer


@pytest.mark.parametrize(
    ("join", "move", "code"),
    [
        (True, '{"type": "move", "x": NaN, "y": 1}', "bad_message"),
        (True, '{"type": "move", "x": Infinity, "y": 1}', "bad_message"),
        (True, '{"type": "move", "x": 10001, "y": 1}', "bad_position"),
        (True, '{"type": "move", "x": -1, "y": 1}', "bad_position"),
        (
            True,
            '{"type": "join", "room": "bad-room", "name": "n", "color": "#000000"}',
            "already_joined",
        ),
    ],
)
async def test_bad_values_over_json(
    tight: Node, bystander: CursorClient, join: bool, move: str, code: str
) -> None:
    """Over the JSON subprotocol, bad numbers and repeated joins get errors too."""
    url = tight.url.replace("http://", "ws://") + "/ws"
    async with connect(url, subprotocols=[SUBPROTOCOL_JSON]) as ws:  # type: ignore[list-item]
        await ws.send('{"type": "join", "room": "bad-room", "name": "j", "color": "#123456"}')
        first = await _next(ws, lambda m: isinstance(m, Presence))
        assert isinstance(first, Presence)
        await ws.send(move)
        answer = await _next(ws, lambda m: isinstance(m, Error))
    assert isinstance(answer, Error) and answer.code == code, answer


async def _next(ws: object, wanted: object) -> Message:
    async with asyncio.timeout(5):
        while True:
            data = await ws.recv()  # type: ignore[attr-defined]
            message = decode_json(data) if isinstance(data, str) else decode(data)
            if wanted(message):  # type: ignore[operator]
                return message


async def test_a_flood_of_moves_is_refused_past_the_rate(tmp_path: Path) -> None:
    """Moves past the per-connection rate are dropped (counted, one error a second) while the
    room keeps working for everyone."""
    core = start_core(tmp_path, corpus=SMALL_CORPUS)
    edge = start_edge(
        tmp_path, core.url, "syd", env={"LIGHTCONE_WS_RATE": "50", "LIGHTCONE_WS_BURST": "50"}
    )
    try:
        flooder = await CursorClient(edge.url, "flooder").open()
        other = await CursorClient(edge.url, "other").open()
        await flooder.join("flood")
        await other.join("flood")
        for n in range(500):
            await flooder.send(Move(n, n))
        await flooder.wait_for(lambda: flooder.errors, 5, "rate_limited error")
        assert {e.code for e in flooder.errors} == {"rate_limited"}
        assert len(flooder.errors) <= 2
        assert await metric(edge, "lightcone_cursor_moves_refused_total") >= 400
        await other.move(5, 5)
        await flooder.seen(other.you, 5, 5)
        await flooder.close()
        await other.close()
    finally:
        edge.stop()
        core.stop()
