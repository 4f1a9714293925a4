"""Who may do what at an edge, in process: the /ws Origin rule, room tokens, /status's link
view and /demo/config's loopback rule."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient, WebSocketDenialResponse

from edge_node.app import create_app, link_view
from edge_node.settings import EdgeSettings
from shared import roomtoken
from shared.config import ConfigError, from_environ
from shared.protocol import Error, Join, Presence, decode, encode
from tests.edge_node.test_app import unreachable_core

SECRET = "room-secret-" + "x" * 32


def edge(**overrides: object) -> TestClient:
    settings = from_environ(
        EdgeSettings, {}, core_url=unreachable_core(), region="syd", **overrides
    )
    return TestClient(create_app(settings))


@pytest.fixture
def client() -> Iterator[TestClient]:
    with edge() as client:
        yield client


def refused_count(client: TestClient) -> float:
    for line in client.get("/metrics/").text.splitlines():
        if line.startswith("lightcone_ws_origin_refused_total "):
            return float(line.split()[1])
    raise AssertionError("no lightcone_ws_origin_refused_total")


def test_a_cross_site_page_gets_no_websocket(client: TestClient) -> None:
    """403 with a JSON error before the handshake completes, counted in a metric."""
    with pytest.raises(WebSocketDenialResponse) as denied:
        with client.websocket_connect("/ws", headers={"Origin": "https://evil.example"}):
            pass
    assert denied.value.status_code == 403
    assert denied.value.json()["error"] == "origin_not_allowed"
    assert refused_count(client) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},  # not a browser
        {"Origin": "http://testserver"},  # the page this edge serves (Host: testserver)
        {"Origin": "http://127.0.0.1:5173"},  # a page on loopback (the local demo)
    ],
)
def test_allowed_clients_are_served(client: TestClient, headers: dict[str, str]) -> None:
    with client.websocket_connect("/ws", headers=headers) as ws:
        ws.send_bytes(encode(Join("lobby", "Ada", "#123456")))
        assert isinstance(decode(ws.receive_bytes()), Presence)
    assert refused_count(client) == 0


def test_the_allow_list_is_configurable() -> None:
    with edge(ws_allowed_origins="https://app.example") as client:
        with client.websocket_connect("/ws", headers={"Origin": "https://app.example"}):
            pass
        with pytest.raises(WebSocketDenialResponse):
            with client.websocket_connect("/ws", headers={"Origin": "http://localhost:3000"}):
                pass
    with edge(ws_allowed_origins="*") as client:
        with client.websocket_connect("/ws", headers={"Origin": "https://evil.example"}):
            pass


def join_answer(client: TestClient, join: Join) -> object:
    with client.websocket_connect("/ws") as ws:
        ws.send_bytes(encode(join))
        return decode(ws.receive_bytes())


def test_room_tokens_gate_joins() -> None:
    """With LIGHTCONE_ROOM_AUTH=token a join needs a token for its room, name and session;
    the previous secret still works (rotation)."""
    old = "old-secret-" + "y" * 32
    with edge(room_auth="token", room_secret=SECRET, room_secret_previous=old) as client:
        now = time.time()
        good = roomtoken.mint(SECRET, room="lobby", name="Ada", session="s-1", now=now)
        rotated = roomtoken.mint(old, room="lobby", name="Ada", session="s-1", now=now)
        expired = roomtoken.mint(SECRET, room="lobby", name="Ada", session="s-1", now=now - 7200)
        forged = roomtoken.mint("z" * 32, room="lobby", name="Ada", session="s-1", now=now)
        for token, code in (
            (None, "unauthorized"),
            ("not-a-token", "bad_token"),
            (forged, "bad_token"),
            (expired, "token_expired"),
        ):
            answer = join_answer(client, Join("lobby", "Ada", "#123456", "s-1", token))
            assert isinstance(answer, Error) and answer.code == code, token
        other_name = join_answer(client, Join("lobby", "Eve", "#123456", "s-1", good))
        assert isinstance(other_name, Error) and other_name.code == "bad_token"
        for token in (good, rotated):
            answer = join_answer(client, Join("lobby", "Ada", "#123456", "s-1", token))
            assert isinstance(answer, Presence) and answer.members[0].name == "Ada"
        assert client.get("/demo/config").json()["room_auth"] == "token"


def test_room_auth_settings_are_checked_at_start() -> None:
    with pytest.raises(ConfigError, match="LIGHTCONE_ROOM_SECRET"):
        from_environ(EdgeSettings, {"LIGHTCONE_ROOM_AUTH": "token"}, core_url="http://c")
    with pytest.raises(ConfigError, match="32 bytes"):
        env = {"LIGHTCONE_ROOM_AUTH": "token", "LIGHTCONE_ROOM_SECRET": "short"}
        from_environ(EdgeSettings, env, core_url="http://c")
    with pytest.raises(ConfigError, match="LIGHTCONE_ROOM_AUTH"):
        from_environ(EdgeSettings, {"LIGHTCONE_ROOM_AUTH": "maybe"}, core_url="http://c")
    with pytest.raises(ConfigError, match="LIGHTCONE_WS_ALLOWED_ORIGINS"):
        env = {"LIGHTCONE_WS_ALLOWED_ORIGINS": "evil.example"}
        from_environ(EdgeSettings, env, core_url="http://c")


def test_status_says_what_the_edge_knows_of_its_link(client: TestClient) -> None:
    status = client.get("/status").json()
    assert status["last_heard_ms"] is None  # never reached the core
    assert status["link"] in ("connecting", "down")


def test_the_link_is_suspect_after_missed_heartbeats() -> None:
    assert link_view("up", 1500, 1.0) == "up"
    assert link_view("up", 2001, 1.0) == "suspect"
    assert link_view("up", None, 1.0) == "up"
    assert link_view("down", 60_000, 1.0) == "down"


def test_demo_config_gives_the_control_url_to_loopback_hosts_only() -> None:
    control = "http://127.0.0.1:1234/c/capability"
    with edge(demo_control_url=control) as client:
        local = client.get("/demo/config", headers={"Host": "127.0.0.1:8080"}).json()
        assert local["control_url"] == control
        rebound = client.get("/demo/config", headers={"Host": "evil.example:8080"}).json()
        assert rebound["control_url"] is None
