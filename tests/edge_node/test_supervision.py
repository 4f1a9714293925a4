"""The edge app in process: a room frame that cannot be encoded is dropped alone at the tick's
delivery, and the room's other frames still reach its members."""

from __future__ import annotations

import socket

from starlette.testclient import TestClient

from edge_node.app import create_app
from edge_node.cursors import Cursors
from edge_node.rooms import Out
from edge_node.settings import EdgeSettings
from shared.config import from_environ
from shared.protocol import Join, Moves, Position, Presence, decode, encode


def unreachable_core() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_a_poison_room_frame_is_dropped_alone() -> None:
    settings = from_environ(EdgeSettings, {}, core_url=unreachable_core(), region="syd")
    app = create_app(settings)
    with TestClient(app) as client, client.websocket_connect("/ws") as ws:
        ws.send_bytes(encode(Join("r", "Ada", "#1a2b3c")))
        assert isinstance(decode(ws.receive_bytes()), Presence)
        cursors: Cursors = app.state.cursors
        conns = list(cursors.clients)
        bad = Moves("r", [Position("\udfff", 1, 1)])  # no codec can carry it
        good = Moves("r", [Position("ok", 2, 2)])
        assert client.portal is not None
        client.portal.call(cursors.deliver, Out(clients=[(conns, bad), (conns, good)]))
        assert decode(ws.receive_bytes()) == good
        metrics = client.get("/metrics/").text
    assert 'lightcone_items_dropped_total{where="room_tick"} 1.0' in metrics
