"""The edge app in process: a room frame that cannot be encoded is dropped alone at the tick's
delivery, and the room's other frames still reach its members; a connection whose writer
crashes is closed and unregistered."""

from __future__ import annotations

import socket

from starlette.testclient import TestClient

from edge_node.app import create_app
from edge_node.cursors.feature import CursorsFeature
from edge_node.cursors.rooms import Out
from edge_node.settings import EdgeSettings
from shared.config import from_environ
from shared.errors import CloseCode
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
        cursors = app.state.node.features["cursors"]
        assert isinstance(cursors, CursorsFeature)
        conns = [client.conn for client in app.state.node.clients]
        bad = Moves("r", [Position("\udfff", 1, 1)])  # no codec can carry it
        good = Moves("r", [Position("ok", 2, 2)])
        assert client.portal is not None
        client.portal.call(cursors.deliver, Out(clients=[(conns, bad), (conns, good)]))
        assert decode(ws.receive_bytes()) == good
        metrics = client.get("/metrics/").text
    assert 'lightcone_items_dropped_total{where="room_tick"} 1.0' in metrics


def test_a_crashed_writer_ends_its_connection_and_unregisters_it() -> None:
    """Finding 2: the writer died and the reader waited for ever (and shutdown hung). Now the
    crash is logged and counted, the connection closed with 1011 and unregistered."""
    settings = from_environ(EdgeSettings, {}, core_url=unreachable_core(), region="syd")
    app = create_app(settings)
    with TestClient(app) as client, client.websocket_connect("/ws") as ws:
        ws.send_bytes(encode(Join("r", "Ada", "#1a2b3c")))
        assert isinstance(decode(ws.receive_bytes()), Presence)
        cursors = app.state.node.features["cursors"]
        assert isinstance(cursors, CursorsFeature)
        (sock,) = app.state.node.clients

        async def broken(data: bytes) -> None:
            raise ValueError("the transport broke in an unexpected way")

        def inject() -> None:  # a fault in the server stack, under the writer
            sock.websocket.send_bytes = broken
            sock.push(b"anything")

        assert client.portal is not None
        client.portal.call(inject)
        closed = ws.receive()
        assert closed["type"] == "websocket.close" and closed["code"] == CloseCode.INTERNAL_ERROR
        assert len(app.state.node.clients) == 0
        assert cursors.rooms.room_count() == 0
        metrics = client.get("/metrics/").text
    assert 'lightcone_task_crashes_total{task="ws_writer"} 1.0' in metrics
