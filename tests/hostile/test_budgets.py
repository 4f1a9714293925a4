"""Finding 8 (exhaustion) and finding 9 (silence instead of an answer), on real processes.

Each test shows the attack from the issue, then that the promise holds: the socket is
closed or refused with a clear answer, the next client is served, the node stays healthy.
All traffic comes from 127.0.0.1, so the per-address cap is tested with a small cap; the
same caps seen from another address are in tests/shared/test_listener.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from shared.protocol import Error, Join, Message, Move, Presence, decode, encode
from tests.helpers.nodes import Node, start_core, start_edge
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.e2e

CLIENT_CAP = 12
READ_TIMEOUT_S = 1.0
HTTP_BURST = 5
MAX_ROOMS = 4
LIMITS = {
    "LIGHTCONE_MAX_CLIENT_CONNECTIONS": str(CLIENT_CAP),
    "LIGHTCONE_READ_TIMEOUT_S": str(READ_TIMEOUT_S),
    "LIGHTCONE_HTTP_RATE": "0.5",
    "LIGHTCONE_HTTP_BURST": str(HTTP_BURST),
    # A low message rate, so that a burst is over it however slowly this machine sends.
    "LIGHTCONE_WS_RATE": "20",
    "LIGHTCONE_WS_BURST": "40",
    "LIGHTCONE_MAX_ROOMS": str(MAX_ROOMS),
}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Node]]:
    tmp: Path = tmp_path_factory.mktemp("budgets")
    core = start_core(tmp, env={"LIGHTCONE_READ_TIMEOUT_S": str(READ_TIMEOUT_S)})
    edge: Node | None = None
    try:
        edge = start_edge(tmp, core.url, "syd", env=LIMITS)
        yield core, edge
    finally:
        for node in [edge, core]:
            if node is not None:
                node.stop()
    for node in [core, edge]:
        assert node is not None and not node.errors(), node.errors()


def address(node: Node) -> tuple[str, int]:
    host, port = node.url.rsplit("/", 1)[-1].rsplit(":", 1)
    return host, int(port)


@contextlib.asynccontextmanager
async def raw_sockets(
    node: Node, count: int
) -> AsyncIterator[list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]:
    """``count`` TCP connections that send nothing unless the test writes."""
    opened = []
    try:
        for _ in range(count):
            opened.append(await asyncio.open_connection(*address(node)))
        yield opened
    finally:
        for _, writer in opened:
            writer.close()


async def until_closed(reader: asyncio.StreamReader, timeout_s: float = 10) -> bytes:
    """All the server sends before it closes the connection."""
    data = b""
    async with asyncio.timeout(timeout_s):
        while True:
            try:
                chunk = await reader.read(65536)
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk


async def metric(node: Node, name: str, **labels: str) -> float:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{node.url}/metrics/")).text
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{re.escape(name)}{re.escape('{' + wanted + '}') if wanted else ''} (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def received(frame: str | bytes) -> Message:
    assert isinstance(frame, bytes), frame  # msgpack: binary frames
    return decode(frame)


async def healthy(node: Node) -> bool:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{node.url}/healthz")).status_code == 200


# --- finding 8: idle and half-open sockets stay forever ------------------------------------


async def test_idle_sockets_that_never_send_a_request_head_are_closed(
    nodes: tuple[Node, Node],
) -> None:
    core, edge = nodes
    before = await metric(edge, "lightcone_connection_timeouts_total", phase="read")
    idle = CLIENT_CAP - 1  # one slot left for the bystander below
    async with raw_sockets(edge, idle) as sockets:
        assert await healthy(edge)  # served while the idle sockets are open
        answers = await asyncio.gather(*(until_closed(reader) for reader, _ in sockets))
    assert answers == [b""] * idle  # closed without a word, every one
    assert await metric(edge, "lightcone_connection_timeouts_total", phase="read") >= before + idle
    await eventually(lambda: _open_is(edge, 1), 5, "only the metrics request open")


async def _open_is(node: Node, count: int) -> bool:
    return await metric(node, "lightcone_connections_open") == count


async def test_a_request_head_that_never_ends_is_closed(nodes: tuple[Node, Node]) -> None:
    core, edge = nodes
    async with raw_sockets(edge, 1) as [(reader, writer)]:
        writer.write(b"GET /suggest?q=syd HTTP/1.1\r\nHost: edge\r\nX-Slow: ")
        assert await until_closed(reader) == b""
    assert await healthy(edge)


async def test_a_half_open_websocket_handshake_is_closed(nodes: tuple[Node, Node]) -> None:
    core, edge = nodes
    async with raw_sockets(edge, 1) as [(reader, writer)]:
        writer.write(
            b"GET /ws HTTP/1.1\r\nHost: edge\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Version: 13\r\n"  # the head never ends: no key, no blank line
        )
        assert await until_closed(reader) == b""
    async with websockets.connect(edge.url.replace("http", "ws") + "/ws") as ws:
        await ws.send(encode(Join("lobby", "Ada", "#1a2b3c", id="j")))
        assert isinstance(received(await ws.recv()), Presence)


async def test_the_core_closes_idle_sockets_and_keeps_its_edges(nodes: tuple[Node, Node]) -> None:
    core, edge = nodes
    async with raw_sockets(core, 3) as sockets:
        answers = await asyncio.gather(*(until_closed(reader) for reader, _ in sockets))
    assert answers == [b""] * 3
    assert await metric(core, "lightcone_connection_timeouts_total", phase="read") >= 3
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{edge.url}/status")).json()["link"] == "up"


# --- finding 8: no per-client connection cap -------------------------------------------------


async def test_connections_over_the_per_client_cap_are_refused_until_one_closes(
    nodes: tuple[Node, Node],
) -> None:
    core, edge = nodes
    ws_url = edge.url.replace("http", "ws") + "/ws"
    held: list[ClientConnection] = []
    try:
        for _ in range(CLIENT_CAP):
            held.append(await websockets.connect(ws_url))
        # The attack: one more socket from the same address.
        async with raw_sockets(edge, 1) as [(reader, _)]:
            refused = await until_closed(reader)
        assert refused.startswith(b"HTTP/1.1 503")
        body = json.loads(refused.partition(b"\r\n\r\n")[2])
        assert body["error"] == "too_many_connections"
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(ws_url)
        # Those already connected are still served.
        await held[0].send(encode(Join("cap", "Ada", "#1a2b3c", id=1)))
        assert isinstance(received(await held[0].recv()), Presence)
        await held.pop().close()  # a slot frees once one closes
        held.append(await _connect_eventually(ws_url))
    finally:
        for ws in held:
            await ws.close()
    await eventually(lambda: healthy(edge), 5, "the edge answers again")
    assert (
        await metric(edge, "lightcone_connections_refused_total", code="too_many_connections") >= 2
    )


async def _connect_eventually(url: str) -> ClientConnection:
    async def attempt() -> ClientConnection | None:
        try:
            return await websockets.connect(url)
        except websockets.InvalidStatus:
            return None

    return await eventually(attempt, 5, "a freed slot")


# --- finding 8: rooms per edge unbounded ------------------------------------------------------


async def test_rooms_per_edge_are_capped_and_the_hosted_ones_stay_served(
    nodes: tuple[Node, Node],
) -> None:
    core, edge = nodes
    await eventually(lambda: _rooms_are(edge, 0), 5, "no room left by earlier tests")
    ws_url = edge.url.replace("http", "ws") + "/ws"
    async with websockets.connect(ws_url) as host, websockets.connect(ws_url) as other:
        for n in range(MAX_ROOMS):  # the attack, scaled down: one room after another
            await host.send(encode(Join(f"room-{n}", "Ada", "#1a2b3c", id=n)))
            assert isinstance(await _next(host), Presence)
        await other.send(encode(Join("one-too-many", "Bo", "#1a2b3c", id="x")))
        refused = await _next(other)
        assert isinstance(refused, Error)
        assert (refused.code, refused.id, refused.room) == ("edge_full", "x", "one-too-many")
        await other.send(encode(Join("room-0", "Bo", "#1a2b3c", id="y")))  # hosted: served
        assert isinstance(await _next(other), Presence)
    await eventually(lambda: _rooms_are(edge, 0), 5, "rooms closed with their members")


async def _rooms_are(node: Node, count: int) -> bool:
    return await metric(node, "lightcone_cursor_rooms") == count


# --- finding 9: silence instead of an answer ---------------------------------------------------


async def test_a_join_right_after_a_burst_over_the_rate_is_answered(
    nodes: tuple[Node, Node],
) -> None:
    core, edge = nodes
    async with websockets.connect(edge.url.replace("http", "ws") + "/ws") as ws:
        # The attack: a burst of moves well over the rate, then a join.
        await ws.send(encode(Join("r9", "Ada", "#1a2b3c", id="first")))
        assert isinstance(await _next(ws), Presence)
        started = time.monotonic()
        for n in range(500):
            await ws.send(encode(Move(n % 100, 0, "r9")))
        await ws.send(encode(Join("r9-2", "Ada", "#1a2b3c", id="j-9")))
        await ws.send(encode(Join("r9-3", "Bo", "#1a2b3c")))
        seconds = time.monotonic() - started
        answers = [m for m in await _drain(ws) if isinstance(m, Error)]
    limited = [(e.id, e.room) for e in answers if e.code == "rate_limited"]
    assert ("j-9", "r9-2") in limited  # answered, with its id
    assert (None, "r9-3") in limited  # no id: the error names the room
    # The excess moves are dropped quietly: one error a second at most.
    assert sum(1 for e in answers if e.id is None and e.room is None) <= 1 + math.ceil(seconds)


async def _next(ws: ClientConnection) -> Message:
    return received(await asyncio.wait_for(ws.recv(), 5))


async def _drain(ws: ClientConnection) -> list[Message]:
    """Messages until the server has nothing more to say for a while (after a ping's pong:
    everything sent before it has arrived)."""
    pong = await ws.ping()
    await asyncio.wait_for(pong, 10)
    messages = []
    with contextlib.suppress(TimeoutError):
        while True:
            messages.append(received(await asyncio.wait_for(ws.recv(), 0.5)))
    return messages


async def test_http_over_the_per_client_rate_gets_429(nodes: tuple[Node, Node]) -> None:
    core, edge = nodes
    async with httpx.AsyncClient(base_url=edge.url) as client:
        statuses = [
            (await client.get("/suggest", params={"q": "syd"})).status_code
            for _ in range(HTTP_BURST + 3)
        ]
        assert statuses[:HTTP_BURST] == [200] * HTTP_BURST
        refused = await client.post("/search", json={"id": "h-1", "q": "Sydney"})
        assert refused.status_code == 429
        assert refused.json()["error"] == "rate_limited"
        assert int(refused.headers["retry-after"]) >= 1
        assert (await client.get("/readyz")).status_code == 200  # health is not limited
    assert statuses[HTTP_BURST:] == [429] * 3
