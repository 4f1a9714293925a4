"""Every request is answered, in process: over the message rate a join, leave, suggest,
search or ping gets ``rate_limited`` with its id (and a join or leave its room); only moves
are dropped quietly. HTTP has a per-client rate too: 429 with Retry-After."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient, WebSocketTestSession as Session

from edge_node.app import create_app
from edge_node.settings import EdgeSettings
from shared.config import from_environ
from shared.protocol import (
    SUBPROTOCOL_JSON,
    SUBPROTOCOL_MSGPACK,
    Error,
    Join,
    Leave,
    Message,
    Move,
    Ping,
    Pong,
    Search,
    Suggest,
    decode,
    decode_json,
    encode,
    encode_json,
)
from tests.edge_node.test_app import unreachable_core

BURST = 4


@pytest.fixture
def client() -> Iterator[TestClient]:
    # A bucket that does not refill while the test runs: the burst, then nothing.
    settings = from_environ(
        EdgeSettings,
        {},
        core_url=unreachable_core(),
        region="syd",
        ws_rate=0.001,
        ws_burst=BURST,
        http_rate=0.001,
        http_burst=BURST,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def exchange(ws: Session, message: Message) -> Message:
    ws.send_bytes(encode(message))
    return decode(ws.receive_bytes())


def spend_the_burst(ws: Session) -> None:
    for n in range(BURST):
        assert exchange(ws, Ping(n)) == Pong(n)


@pytest.mark.parametrize(
    ("request_", "room"),
    [
        (Join("lobby", "Ada", "#1a2b3c", id="j1"), "lobby"),
        (Leave("lobby", id=2), "lobby"),
        (Suggest("s1", "syd"), None),
        (Search("w1", "Sydney"), None),
        (Ping("p1"), None),
    ],
)
def test_a_request_over_the_rate_gets_rate_limited_with_its_id(
    client: TestClient, request_: Join | Leave | Suggest | Search | Ping, room: str | None
) -> None:
    with client.websocket_connect("/ws") as ws:
        spend_the_burst(ws)
        answer = exchange(ws, request_)
    assert isinstance(answer, Error)
    assert (answer.code, answer.id, answer.room) == ("rate_limited", request_.id, room)


def test_a_join_without_an_id_is_answered_with_its_room(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        spend_the_burst(ws)
        answer = exchange(ws, Join("lobby", "Ada", "#1a2b3c"))
    assert isinstance(answer, Error)
    assert (answer.code, answer.id, answer.room) == ("rate_limited", None, "lobby")


def test_moves_over_the_rate_are_dropped_quietly_but_a_join_after_them_is_answered(
    client: TestClient,
) -> None:
    with client.websocket_connect("/ws") as ws:
        spend_the_burst(ws)
        for x in range(50):
            ws.send_bytes(encode(Move(x, 0, "lobby")))
        first = decode(ws.receive_bytes())  # one error for the whole burst of moves
        assert isinstance(first, Error) and first.code == "rate_limited" and first.id is None
        answer = exchange(ws, Join("lobby", "Ada", "#1a2b3c", id="j2"))
    assert isinstance(answer, Error)
    assert (answer.code, answer.id, answer.room) == ("rate_limited", "j2", "lobby")


def test_errors_of_a_join_within_the_rate_carry_its_id_and_room(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        answer = exchange(ws, Join("lobby", "", "#1a2b3c", id=9))
        assert isinstance(answer, Error)
        assert (answer.code, answer.id, answer.room) == ("bad_name", 9, "lobby")
        answer = exchange(ws, Leave("hall", id="l1"))
    assert isinstance(answer, Error)
    assert (answer.code, answer.id, answer.room) == ("not_joined", "l1", "hall")


def test_http_over_the_per_client_rate_gets_429_with_retry_after(client: TestClient) -> None:
    for _ in range(BURST):
        assert client.get("/suggest", params={"q": "syd"}).status_code == 503  # not ready
    refused = client.post("/search", json={"id": "s1", "q": "Sydney"})
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    # Unguarded routes still answer: health checks and metrics are never rate-limited.
    assert client.get("/healthz").status_code == 200
    metrics = client.get("/metrics/").text
    assert 'lightcone_http_rate_limited_total{route="/search"} 1.0' in metrics


def test_the_http_rate_is_per_client_address() -> None:
    settings = from_environ(
        EdgeSettings,
        {},
        core_url=unreachable_core(),
        http_rate=0.001,
        http_burst=1,
        trust_client_ip_header="Fly-Client-IP",
    )
    with TestClient(create_app(settings)) as client:
        first = {"Fly-Client-IP": "203.0.113.7"}
        assert client.get("/suggest", params={"q": "a"}, headers=first).status_code == 503
        assert client.get("/suggest", params={"q": "a"}, headers=first).status_code == 429
        other = {"Fly-Client-IP": "198.51.100.1"}
        assert client.get("/suggest", params={"q": "a"}, headers=other).status_code == 503


def test_an_invalid_room_is_not_echoed(client: TestClient) -> None:
    """A room that is no valid name (here lone surrogates, which JSON can carry) is not sent
    back: the error could not be encoded."""
    join = '{"type": "join", "room": "\\udfff\\udfff", "name": "A", "color": "#1a2b3c", "id": "j"}'
    with client.websocket_connect("/ws", subprotocols=[SUBPROTOCOL_JSON]) as ws:
        ws.send_text(join)
        answer = decode_json(ws.receive_text())
        assert isinstance(answer, Error)
        assert (answer.code, answer.id, answer.room) == ("bad_text", "j", None)
        ws.send_text(encode_json(Join("x" * 65, "Ada", "#1a2b3c", id="k")))
        answer = decode_json(ws.receive_text())
    assert isinstance(answer, Error) and (answer.id, answer.room) == ("k", None)


@pytest.mark.parametrize(
    ("offered", "accepted"),
    [
        (["lightcone.json"], "lightcone.json"),  # a client from before versions: version 1
        ([SUBPROTOCOL_MSGPACK, SUBPROTOCOL_JSON], SUBPROTOCOL_JSON),
        (["lightcone.json.v99"], None),  # a version this edge does not talk: msgpack
    ],
)
def test_the_subprotocol_names_codec_and_version(
    client: TestClient, offered: list[str], accepted: str | None
) -> None:
    with client.websocket_connect("/ws", subprotocols=offered) as ws:
        assert ws.accepted_subprotocol == accepted
        if accepted is None:
            ws.send_bytes(encode(Ping(1)))
            assert decode(ws.receive_bytes(), strict=False) == Pong(1)
        else:
            ws.send_text(encode_json(Ping(1)))
            assert decode_json(ws.receive_text(), strict=False) == Pong(1)
