"""The core in process: room tokens minted by the admin API, and the link token checked
before the websocket is accepted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient, WebSocketDenialResponse

from core_region.app import create_app
from shared import roomtoken
from tests.core_region.test_app import TOKEN, settings

SECRET = "core-room-secret-" + "r" * 32


def test_admin_mints_room_tokens_an_edge_accepts(tmp_path: Path) -> None:
    with TestClient(create_app(settings(tmp_path, room_secret=SECRET))) as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        before = time.time()
        body = {"room": "lobby", "name": "Ada", "session": "s-1", "ttl_s": 120}
        minted = client.post("/admin/room-tokens", json=body)
        assert minted.status_code == 200
        answer = minted.json()
        claims = roomtoken.verify(answer["token"], [SECRET], now=time.time())
        assert (claims.room, claims.name, claims.session) == ("lobby", "Ada", "s-1")
        assert claims.expires_at == answer["expires_at"]
        assert before + 119 <= answer["expires_at"] <= time.time() + 120
        default = client.post("/admin/room-tokens", json={"room": "r", "name": "n"}).json()
        assert default["expires_at"] >= before + roomtoken.DEFAULT_TTL_S - 1

        for bad, code in (
            ({"room": "r"}, "bad_field"),
            ({"room": "", "name": "n"}, "bad_field"),
            ({"room": "r", "name": 5}, "bad_field"),
            ({"room": "r", "name": "n", "session": ""}, "bad_field"),
            ({"room": "r", "name": "n", "ttl_s": 0}, "bad_ttl"),
            ({"room": "r", "name": "n", "ttl_s": roomtoken.MAX_TTL_S + 1}, "bad_ttl"),
            ({"room": "r", "name": "n", "ttl_s": True}, "bad_ttl"),
        ):
            refused = client.post("/admin/room-tokens", json=bad)
            assert refused.status_code == 400 and refused.json()["error"] == code, bad

        client.headers["Authorization"] = "Bearer wrong"
        assert client.post("/admin/room-tokens", json=body).status_code == 401


def test_a_core_without_a_room_secret_says_so(tmp_path: Path) -> None:
    with TestClient(create_app(settings(tmp_path))) as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        answer = client.post("/admin/room-tokens", json={"room": "r", "name": "n"})
        assert answer.status_code == 404 and answer.json()["error"] == "no_room_secret"


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic bGluay1zZWNyZXQ="])
def test_a_link_with_a_bad_token_is_refused_before_accept(
    tmp_path: Path, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    with TestClient(create_app(settings(tmp_path))) as client:
        with pytest.raises(WebSocketDenialResponse) as denied:
            with client.websocket_connect("/link", headers=headers):
                pass
    assert denied.value.status_code == 401
    assert denied.value.json()["error"] == "unauthorized"
