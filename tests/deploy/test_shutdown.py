"""SIGTERM, as Fly sends it (kill_signal): websockets close with 1001, exit within kill_timeout."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from shared.errors import CloseCode
from shared.protocol import SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK, Join, encode_json
from tests.deploy.conftest import Running, start_edge
from tests.deploy.image import fly_toml, port_of, start_as_image
from tests.helpers.nodes import Node

pytestmark = pytest.mark.e2e


def _terminate(node: Node, kind: str) -> float:
    """SIGTERM ``node``; seconds until it exited, which must be within the kill_timeout."""
    toml = fly_toml(kind)
    assert toml["kill_signal"] == "SIGTERM"
    started = time.monotonic()
    node.process.send_signal(signal.SIGTERM)
    try:
        code = node.process.wait(toml["kill_timeout"])
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{kind} still running after kill_timeout") from None
    # uvicorn re-raises the signal once shut down: a clean exit shows as killed by SIGTERM.
    assert code in (0, -signal.SIGTERM), node.lines[-10:]
    return time.monotonic() - started


async def _closed(ws: ClientConnection, timeout_s: float) -> tuple[int | None, str | None]:
    async with asyncio.timeout(timeout_s):
        await ws.wait_closed()
    return ws.close_code, ws.close_reason


async def test_sigterm_closes_client_websockets_with_going_away(
    tmp_path: Path, image_core: Running
) -> None:
    """Each client socket (JSON, msgpack, in a room) gets 1001 before the edge exits in time."""
    edge = start_edge(tmp_path, image_core, "nrt")
    url = f"ws://127.0.0.1:{edge.port}/ws"
    clients: list[ClientConnection] = []
    try:
        for protocols in ([SUBPROTOCOL_JSON], [SUBPROTOCOL_MSGPACK], None):
            offered = [Subprotocol(p) for p in protocols] if protocols else None
            clients.append(await connect(url, subprotocols=offered))
        await clients[0].send(encode_json(Join("lobby", "ann", "#f80")))
        await clients[0].recv()  # the room's presence: the socket is in a room
        elapsed = await asyncio.to_thread(_terminate, edge.node, "edge")
        closes = [await _closed(ws, 1) for ws in clients]
    finally:
        for ws in clients:
            await ws.close()
        edge.node.stop()
    assert closes == [(CloseCode.GOING_AWAY, "edge shutting down")] * 3
    assert elapsed < fly_toml("edge")["kill_timeout"]
    assert not edge.node.errors(), edge.node.errors()


def test_sigterm_closes_edge_links_with_going_away(tmp_path: Path) -> None:
    """The core tells each edge 1001 on its link (not uvicorn's 1012), then exits in time."""
    core = start_as_image(
        "core",
        tmp_path,
        fly_toml("core")["primary_region"],
        {"LIGHTCONE_DATA_DIR": str(tmp_path / "data")},
    )
    edge: Running | None = None
    try:
        core.wait_for("Application startup complete", 60)
        edge = start_edge(tmp_path, Running(core, port_of(core)), "gru")
        elapsed = _terminate(core, "core")
        edge.node.wait_for(r"link closed: received 1001 \(going away\) core shutting down", 5)
    finally:
        core.stop()
        if edge is not None:
            edge.node.stop()
    assert elapsed < fly_toml("core")["kill_timeout"]
    assert not core.errors(), core.errors()
