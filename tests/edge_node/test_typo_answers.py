"""Typo matches through the edge app in process: HTTP and both websocket codecs say how
each suggestion matched; prefix matches carry no ``match`` field, as before."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from edge_node.app import create_app
from edge_node.settings import EdgeSettings
from shared import snapshot
from shared.config import from_environ
from shared.protocol import SUBPROTOCOL_JSON, Item, Suggest, Suggestions, decode, encode
from shared.snapshot import Entry
from tests.edge_node.test_app import unreachable_core

ENTRIES = [
    Entry("sydney", "Sydney", 500),
    Entry("sydneymines", "Sydney Mines", 20),
    Entry("sydenham", "Sydenham", 30),
    Entry("sanfrancisco", "San Francisco", 80),
]


@pytest.fixture
def client() -> Iterator[TestClient]:
    settings = from_environ(EdgeSettings, {}, core_url=unreachable_core(), region="syd")
    app = create_app(settings)
    hot = snapshot.hot_lists(sorted(ENTRIES, key=lambda e: e.key), threshold=2, depth=5)
    blob = snapshot.build(ENTRIES, version=1, hot=hot, hot_threshold=2, depth=5)
    with TestClient(app) as client:
        app.state.node.features["suggest"].replica.load(snapshot.parse(blob), "")
        yield client


def test_http_marks_typo_matches(client: TestClient) -> None:
    """``sydny`` finds Sydney with one typo; ``syd`` finds it as a plain prefix."""
    typo = client.get("/suggest", params={"q": "Sydny", "limit": 2})
    assert typo.status_code == 200
    assert typo.json()["items"] == [
        {"term": "Sydney", "weight": 500, "match": "typo", "typos": 1},
        {"term": "Sydney Mines", "weight": 20, "match": "typo", "typos": 1},
    ]
    prefix = client.get("/suggest", params={"q": "syd", "limit": 1})
    assert prefix.json()["items"] == [{"term": "Sydney", "weight": 500}]


def test_two_typos_from_eight_characters(client: TestClient) -> None:
    """A long query allows two typos, and says so."""
    answer = client.get("/suggest", params={"q": "san fransiscp", "limit": 3})
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert items == [{"term": "San Francisco", "weight": 80, "match": "typo", "typos": 2}]


def test_websocket_codecs_carry_the_match(client: TestClient) -> None:
    """msgpack and JSON answers decode to items with ``match`` and ``typos``."""
    with client.websocket_connect("/ws") as ws:
        ws.send_bytes(encode(Suggest(id=1, q="sydeny", limit=1)))
        answer = decode(ws.receive_bytes(), strict=False)
    assert isinstance(answer, Suggestions)
    assert answer.items == [Item("Sydney", 500, "typo", 1)]
    with client.websocket_connect("/ws", subprotocols=[SUBPROTOCOL_JSON]) as ws:
        ws.send_text(json.dumps({"type": "suggest", "id": 2, "q": "sydeny", "limit": 1}))
        raw = json.loads(ws.receive_text())
    assert raw["items"] == [{"term": "Sydney", "weight": 500, "match": "typo", "typos": 1}]
