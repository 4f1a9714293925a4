"""The edge app in process, with no core to reach: what it answers before it has data."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from edge_node.app import create_app
from edge_node.settings import EdgeSettings
from shared.config import from_environ
from shared.protocol import Error, Suggest, decode, encode


def unreachable_core() -> str:
    """A URL nothing listens on: bind a port, close it, and point the edge at it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def client() -> Iterator[TestClient]:
    settings = from_environ(EdgeSettings, {}, core_url=unreachable_core(), region="syd")
    with TestClient(create_app(settings)) as client:
        yield client


def test_not_ready_without_a_snapshot(client: TestClient) -> None:
    """Alive but not ready: /readyz and /suggest answer 503 not_ready."""
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["error"] == "not_ready"
    suggest = client.get("/suggest", params={"q": "a"})
    assert suggest.status_code == 503 and suggest.json()["error"] == "not_ready"


def test_search_is_queued_while_the_core_is_unreachable(client: TestClient) -> None:
    """A search is accepted into the outbox and answered 202 queued."""
    response = client.post("/search", json={"id": "s1", "q": "Sydney"})
    assert response.status_code == 202
    assert response.json() == {"id": "s1", "status": "queued", "version": None}
    assert "lightcone_outbox_depth 1.0" in client.get("/metrics/").text


def test_websocket_reports_not_ready(client: TestClient) -> None:
    """Over /ws, a suggestion before the first snapshot gets an error message."""
    with client.websocket_connect("/ws") as ws:
        ws.send_bytes(encode(Suggest(id=7, q="syd")))
        answer = decode(ws.receive_bytes())
    assert answer == Error(7, "not_ready", "the edge has no data yet")


def test_a_full_outbox_refuses_new_searches_and_counts_them() -> None:
    """Past LIGHTCONE_OUTBOX_MAX, a new search gets 503 outbox_full (accepted ones stay),
    a repeat of a queued id is still accepted, and the refusal is counted."""
    settings = from_environ(EdgeSettings, {}, core_url=unreachable_core(), outbox_max=2)
    with TestClient(create_app(settings)) as client:
        for n in range(2):
            assert client.post("/search", json={"id": f"s{n}", "q": "Sydney"}).status_code == 202
        refused = client.post("/search", json={"id": "s2", "q": "Sydney"})
        assert refused.status_code == 503 and refused.json()["error"] == "outbox_full"
        assert client.post("/search", json={"id": "s0", "q": "Sydney"}).status_code == 202
        metrics = client.get("/metrics/").text
    assert "lightcone_outbox_rejected_total 1.0" in metrics
    assert "lightcone_outbox_depth 2.0" in metrics


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ('{"id": "\\udfff-1", "q": "paris"}', "bad_text"),
        ('{"id": "s-1", "q": "\\udfff"}', "bad_text"),
        ('{"id": "s-1", "q": "par\\u0000is"}', "bad_text"),
        ('{"id": "s-1", "q": "' + "\\ufdfa" * 98 + 'ab"}', "key_too_long"),
        ('{"id": "s-1", "q": "' + "St " * 33 + 'x"}', "key_too_long"),  # folds to 166
        ('{"id": "s-1", "q": " .-\u2019 "}', "empty_query"),  # punctuation alone folds to ""
        ('{"id": "s-1", "q": ' + "[" * 2000 + "]" * 2000 + "}", "bad_json"),
    ],
)
def test_search_refuses_what_is_not_text_with_a_json_400(
    client: TestClient, body: str, code: str
) -> None:
    """A surrogate id, control characters, an expanding query, deep nesting: 400 with a code,
    never a 500, and nothing reaches the outbox."""
    response = client.post("/search", content=body.encode())
    assert response.status_code == 400, response.text
    assert response.json()["error"] == code
    assert "lightcone_outbox_depth 0.0" in client.get("/metrics/").text


@pytest.mark.parametrize(
    ("q", "code"),
    [("a\x00", "bad_text"), ("\u202eadmin", "bad_text"), ("\ufdfa" * 98 + "ab", "key_too_long")],
)
def test_suggest_refuses_what_is_not_text(client: TestClient, q: str, code: str) -> None:
    """The query string passes the door before anything looks at the index."""
    response = client.get("/suggest", params={"q": q})
    assert response.status_code == 400 and response.json()["error"] == code
