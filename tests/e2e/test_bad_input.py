"""Bad input gets the documented error or close code, and other clients keep being served."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from shared.errors import CloseCode
from shared.protocol import (
    SUBPROTOCOL_JSON,
    Error,
    Suggest,
    Suggestions,
    decode,
    encode,
    pack,
)
from tests.e2e.conftest import Cluster
from tests.helpers.clients import bystander as served_bystander, reply, ws_url

pytestmark = pytest.mark.e2e


@pytest.fixture
async def bystander(cluster: Cluster) -> AsyncIterator[ClientConnection]:
    """A well-behaved client that must keep being served while others misbehave."""
    async with served_bystander(cluster[1]) as ws:
        yield ws


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\xc1\x00garbage", "bad_message"),
        (pack([1, 2, 3]), "bad_message"),
        (pack({"type": "teleport", "id": 1}), "unknown_type"),
        (pack({"type": "suggest", "id": 1, "q": 5}), "bad_field"),
        (pack({"type": "suggest", "id": 1, "q": "a", "limit": "10"}), "bad_field"),
        (pack({"type": "suggest", "id": 1, "q": "a", "limit": True}), "bad_field"),
        (pack({"type": "suggest", "id": 1}), "bad_field"),
        (pack({"type": "suggest", "id": 1, "q": "a", "extra": 1}), "bad_message"),
        (pack({"type": "suggest", "id": 1, "q": "a" * 101}), "query_too_long"),
        (pack({"type": "suggest", "id": 1, "q": "a", "limit": 21}), "bad_limit"),
        (pack({"type": "suggest", "id": 1, "q": "a", "limit": 0}), "bad_limit"),
        (pack({"type": "search", "id": "", "q": "a"}), "bad_id"),
        (pack({"type": "search", "id": "x", "q": "  "}), "empty_query"),
        (pack({"type": "snapshot", "version": 1, "data": b""}), "unexpected_type"),
        (b"\xa2\xff\xfe", "bad_message"),  # a msgpack str holding invalid UTF-8
    ],
)
async def test_bad_msgpack_frames_get_error_messages(
    cluster: Cluster, bystander: ClientConnection, frame: bytes, code: str
) -> None:
    """Each bad binary frame gets an error message with its code; the connection stays open."""
    async with connect(ws_url(cluster[1])) as ws:
        answer = await reply(ws, frame)
        assert isinstance(answer, Error) and answer.code == code, answer
        assert isinstance(await reply(ws, encode(Suggest(id=2, q="par"))), Suggestions)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{not json", "bad_message"),
        ('{"type": "suggest", "id": 1, "q": "a", "limit": NaN}', "bad_message"),
        ('{"type": "suggest", "id": 1, "q": "a", "limit": 99999999999999999999999}', "bad_field"),
        ('["suggest"]', "bad_message"),
        ('{"type": "nope"}', "unknown_type"),
    ],
)
async def test_bad_json_frames_get_error_messages(
    cluster: Cluster, bystander: ClientConnection, text: str, code: str
) -> None:
    """Each bad text frame on the JSON subprotocol gets an error message with its code."""
    async with connect(ws_url(cluster[1]), subprotocols=[SUBPROTOCOL_JSON]) as ws:  # type: ignore[list-item]
        answer = await reply(ws, text)
        assert isinstance(answer, Error) and answer.code == code, answer


async def test_oversized_frame_closes_with_1009(
    cluster: Cluster, bystander: ClientConnection
) -> None:
    """A frame over the documented maximum (64 KiB) closes the connection with 1009."""
    async with connect(ws_url(cluster[1]), max_size=None) as ws:
        await ws.send(b"\x00" * (65536 + 1))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == CloseCode.MESSAGE_TOO_BIG


async def test_invalid_utf8_text_closes_with_1007(
    cluster: Cluster, bystander: ClientConnection
) -> None:
    """A text frame that is not UTF-8 closes the connection with 1007."""
    async with connect(ws_url(cluster[1]), subprotocols=[SUBPROTOCOL_JSON]) as ws:  # type: ignore[list-item]
        await ws.send(b'{"type": "\xff"}', text=True)
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == CloseCode.INVALID_DATA


async def test_floods_are_rate_limited(cluster: Cluster, bystander: ClientConnection) -> None:
    """Messages over the per-connection burst get rate_limited errors instead of answers."""
    async with connect(ws_url(cluster[1])) as ws:
        frame = encode(Suggest(id=0, q="a"))
        for _ in range(600):
            await ws.send(frame)
        codes = []
        for _ in range(600):
            answer = decode(await ws.recv(decode=False))
            codes.append(answer.code if isinstance(answer, Error) else "ok")
    assert codes.count("rate_limited") >= 100
    assert codes.count("ok") >= 400


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("GET", "/suggest", {}, 400, "missing_q"),
        ("GET", "/suggest?q=a&limit=ten", {}, 400, "bad_limit"),
        ("GET", "/suggest?q=a&limit=50", {}, 400, "bad_limit"),
        ("GET", "/suggest?q=" + "a" * 101, {}, 400, "query_too_long"),
        ("GET", "/suggest?q=a&min_version=x", {}, 400, "bad_min_version"),
        ("POST", "/search", {"content": b"{nope"}, 400, "bad_json"),
        ("POST", "/search", {"content": b"\xff\xfe"}, 400, "bad_json"),
        ("POST", "/search", {"json": {"id": 1, "q": "a"}}, 400, "bad_field"),
        ("POST", "/search", {"json": ["id"]}, 400, "bad_json"),
        ("POST", "/search", {"content": b"x" * 5000}, 413, "payload_too_large"),
        ("GET", "/nowhere", {}, 404, "not_found"),
        ("DELETE", "/suggest", {}, 405, "method_not_allowed"),
    ],
)
async def test_bad_http_requests_get_json_errors(
    cluster: Cluster,
    bystander: ClientConnection,
    method: str,
    path: str,
    kwargs: dict[str, object],
    status: int,
    code: str,
) -> None:
    """Bad HTTP requests get their status and a JSON body naming the error."""
    async with httpx.AsyncClient(base_url=cluster[1].url) as client:
        response = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert response.json()["error"] == code


async def test_invalid_utf8_in_query_string_is_answered(cluster: Cluster) -> None:
    """Percent-encoded bytes that are not UTF-8 are answered, not crashed on."""
    async with httpx.AsyncClient(base_url=cluster[1].url) as client:
        response = await client.get("/suggest?q=%ff%fe")
    assert response.status_code == 200


async def test_wrong_link_token_is_refused_before_accept(cluster: Cluster) -> None:
    """An edge with a wrong link token gets an HTTP 401 answer, never a websocket."""
    core = cluster[0]
    url = core.url.replace("http://", "ws://") + "/link"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, additional_headers={"Authorization": "Bearer wrong"}):
            pass
    assert refused.value.response.status_code == 401


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic abc"])
async def test_wrong_admin_token_gets_401(cluster: Cluster, header: str | None) -> None:
    """Admin calls without the right bearer token get 401 with a JSON body."""
    headers = {"Authorization": header} if header else {}
    async with httpx.AsyncClient(base_url=cluster[0].url, headers=headers) as client:
        for response in (
            await client.get("/admin/flags"),
            await client.put("/admin/flags/suggest", json={"stale_ok": False}),
            await client.delete("/admin/terms/London"),
        ):
            assert response.status_code == 401
            assert response.json()["error"] == "unauthorized"
