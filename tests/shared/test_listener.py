"""The listener's budgets on a real uvicorn server in this process (``shared.server``).

A small app stands in for edge and core: the budgets live in the protocol classes, not in
the app, and this way each test picks its own caps and timeouts and reads the counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import uvicorn
import websockets
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from shared.limits import ListenerBudgets, ListenerMetrics
from shared.server import bind, close_quietly, uvicorn_config
from tests.helpers.waiting import eventually

Check = Callable[[], Awaitable[bool]]

TIMEOUT_S = 0.3
"""Read and handshake deadline of the test server: short, so a test waits little."""


class Listener:
    """A running server: its port, budgets and metrics."""

    def __init__(self, port: int, budgets: ListenerBudgets, registry: CollectorRegistry) -> None:
        self.port = port
        self.budgets = budgets
        self.registry = registry

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@contextlib.asynccontextmanager
async def listener(
    *,
    max_connections: int = 100,
    max_client_connections: int = 100,
    trusted_header: str | None = None,
    host: str = "127.0.0.1",
) -> AsyncIterator[Listener]:
    release = asyncio.Event()

    async def hello(request: Request) -> Response:
        await request.body()
        return JSONResponse({"client": request.client.host if request.client else None})

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        async for text in websocket.iter_text():
            await websocket.send_text(text)

    async def stuck(websocket: WebSocket) -> None:
        await release.wait()  # never accepts while the test runs

    app = Starlette(
        routes=[
            Route("/", hello, methods=["GET", "POST"]),
            WebSocketRoute("/ws", echo),
            WebSocketRoute("/stuck", stuck),
        ]
    )
    registry = CollectorRegistry()
    budgets = ListenerBudgets.create(
        ListenerMetrics.register(registry),
        max_connections=max_connections,
        max_client_connections=max_client_connections,
        read_timeout_s=TIMEOUT_S,
        handshake_timeout_s=TIMEOUT_S,
        trusted_header=trusted_header,
    )
    app.state.budgets = budgets
    sockets = bind(host, 0)
    server = uvicorn.Server(uvicorn_config(app, ws_max_size=65536, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=sockets))

    async def started() -> bool:
        return server.started

    await eventually(started, 10, "server started")
    try:
        yield Listener(sockets[0].getsockname()[1], budgets, registry)
    finally:
        release.set()
        server.should_exit = True
        await task
        for sock in sockets:
            sock.close()


async def connect(
    port: int, host: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(host, port)


async def closed(reader: asyncio.StreamReader, timeout_s: float = 10) -> bytes:
    """Everything the server sends until it closes the connection."""
    async with asyncio.timeout(timeout_s):
        data = b""
        while chunk := await _read(reader):
            data += chunk
        return data


async def _read(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.read(65536)
    except ConnectionResetError:
        return b""


def json_body(response: bytes) -> dict[str, str]:
    head, _, body = response.partition(b"\r\n\r\n")
    value: dict[str, str] = json.loads(body)
    return value


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


async def get(port: int, path: str = "/", headers: str = "", host: str = "127.0.0.1") -> bytes:
    reader, writer = await connect(port, host)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n".encode())
    try:
        return await closed(reader)
    finally:
        writer.close()


async def test_a_socket_that_sends_nothing_is_closed_after_the_read_timeout() -> None:
    async with listener() as server:
        reader, writer = await connect(server.port)
        assert await closed(reader) == b""  # closed without a word
        writer.close()
        assert server.sample("lightcone_connection_timeouts_total", phase="read") == 1
        await eventually(_zero(server), 5, "slot returned")


async def test_a_request_head_that_never_ends_is_closed() -> None:
    async with listener() as server:
        reader, writer = await connect(server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # no blank line: the head goes on
        assert await closed(reader) == b""
        writer.close()
        assert server.sample("lightcone_connection_timeouts_total", phase="read") == 1


async def test_a_body_that_never_ends_is_closed() -> None:
    async with listener() as server:
        reader, writer = await connect(server.port)
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        assert await closed(reader) == b""
        writer.close()


async def test_a_keep_alive_connection_gets_the_deadline_again_for_its_next_request() -> None:
    async with listener() as server:
        reader, writer = await connect(server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await reader.readuntil(b"}")).startswith(b"HTTP/1.1 200")
        writer.write(b"GET / HTTP/1.1\r\n")  # the next head starts, never ends
        assert await closed(reader) == b""
        writer.close()


async def test_a_complete_request_is_served() -> None:
    async with listener() as server:
        answer = await get(server.port)
        assert status(answer) == 200
        assert json_body(answer) == {"client": "127.0.0.1"}


async def test_over_the_per_client_cap_a_connection_gets_503_and_a_slot_frees_on_close() -> None:
    async with listener(max_client_connections=2) as server:
        url = f"ws://127.0.0.1:{server.port}/ws"
        async with websockets.connect(url) as first, websockets.connect(url):
            refused = await get(server.port)
            assert status(refused) == 503
            assert json_body(refused)["error"] == "too_many_connections"
            assert b"retry-after: 1" in refused.lower()
            await first.close()
            await eventually(_answers(server.port), 5, "a slot freed")
        assert server.sample("lightcone_connections_refused_total", code="too_many_connections")


async def test_over_the_global_cap_a_connection_gets_503_server_full() -> None:
    async with listener(max_connections=1) as server:
        url = f"ws://127.0.0.1:{server.port}/ws"
        async with websockets.connect(url) as ws:
            refused = await get(server.port)
            assert status(refused) == 503
            assert json_body(refused)["error"] == "server_full"
            with pytest.raises(websockets.InvalidStatus) as info:
                async with websockets.connect(url):
                    pass
            assert info.value.response.status_code == 503
            await ws.send("still served")
            assert await ws.recv() == "still served"
        await eventually(_answers(server.port), 5, "the slot freed")
        assert server.sample("lightcone_connections_refused_total", code="server_full") == 2


async def test_a_websocket_handshake_the_app_never_completes_is_closed() -> None:
    async with listener() as server:
        reader, writer = await connect(server.port)
        writer.write(
            b"GET /stuck HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        assert await closed(reader) == b""
        writer.close()
        assert server.sample("lightcone_connection_timeouts_total", phase="handshake") == 1
        await eventually(_zero(server), 5, "slot returned")


async def test_an_open_websocket_outlives_both_deadlines() -> None:
    async with listener() as server:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
            await asyncio.wait_for(_quiet(ws), TIMEOUT_S * 3)  # nothing comes, nothing closes
            await ws.send("hi")
            assert await ws.recv() == "hi"
        assert server.sample("lightcone_connection_timeouts_total", phase="handshake") == 0


async def _quiet(ws: websockets.ClientConnection) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ws.recv(), TIMEOUT_S * 2)
        raise AssertionError("unexpected message")


async def test_behind_a_trusted_proxy_the_cap_is_per_header_address() -> None:
    async with listener(max_client_connections=1, trusted_header="Fly-Client-IP") as server:
        url = f"ws://127.0.0.1:{server.port}/ws"
        async with websockets.connect(url, additional_headers={"Fly-Client-IP": "203.0.113.7"}):
            refused = await get(server.port, headers="Fly-Client-IP: 203.0.113.7\r\n")
            assert json_body(refused)["error"] == "too_many_connections"
            with pytest.raises(websockets.InvalidStatus):
                async with websockets.connect(
                    url, additional_headers={"Fly-Client-IP": "203.0.113.7"}
                ):
                    pass
            # Another client behind the same proxy (the same peer address) is served.
            other = await get(server.port, headers="Fly-Client-IP: 198.51.100.1\r\n")
            assert status(other) == 200
        assert server.budgets.connections.held_by("203.0.113.7") == 0


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
async def test_a_bystander_from_another_address_is_served_while_one_address_is_capped() -> None:
    async with listener(max_client_connections=1, host="::") as server:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws"):
            assert status(await get(server.port)) == 503
            assert status(await get(server.port, host="::1")) == 200


def _answers(port: int) -> Check:
    async def check() -> bool:
        return status(await get(port)) == 200

    return check


def _zero(server: Listener) -> Check:
    async def check() -> bool:
        return server.budgets.connections.total == 0

    return check


def test_a_second_close_of_a_server_websocket_is_quiet() -> None:
    """Closing a websocket another task closed (or the peer left) is no error of ours: the
    race behind a link sender that stopped because its edge hung up (core_region/link.py)."""
    closed: list[str] = []

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close(4000, "first")
        await close_quietly(websocket, 4001, "second")
        closed.append("twice")

    with TestClient(Starlette(routes=[WebSocketRoute("/ws", endpoint)])) as client:
        with client.websocket_connect("/ws") as ws:
            with pytest.raises(Exception):  # noqa: B017 (the close, as the client sees it)
                ws.receive_text()
    assert closed == ["twice"]
