"""Consistency levels end to end: a real core, edge A linked directly and edge B across a
proxy that adds 100 ms each way (and can cut the link). Bounded answers at B from its own
data on a healthy link and fails fast once cut; session gives read-your-writes across edges
(write through A, read through B with A's bookmark); reads ask only for weaker levels; the
websocket carries the same fields."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from shared.protocol import (
    SUBPROTOCOL_JSON,
    Error,
    Search,
    SearchAck,
    Suggest,
    Suggestions,
    encode_json,
    make_bookmark,
    read_bookmark,
)
from tests.helpers.clients import reply, ws_url
from tests.helpers.nodes import ADMIN_TOKEN, FAST_LINK, Node, Pair, core_and_two_edges
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.e2e

STRICT_TIMEOUT_MS = 1500
EDGE_ENV = {
    **FAST_LINK,
    "LIGHTCONE_STRICT_TIMEOUT_MS": str(STRICT_TIMEOUT_MS),
    "LIGHTCONE_BREAKER_RESET_S": "0.5",
    "LIGHTCONE_HTTP_BURST": "1000",  # the concurrent strict reads come from one address
    "LIGHTCONE_SYNCS_IN_FLIGHT": "4",  # fewer than the reads at once: they must share
}
CONCURRENT_READS = 200
BOOKMARK = "Lightcone-Bookmark"


Levels = Pair
"""``near`` (``lhr``) is linked directly; ``far`` (``syd``) 100 ms each way from the core."""


@pytest.fixture(scope="module")
def levels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Levels]:
    with core_and_two_edges(
        tmp_path_factory.mktemp("levels"),
        far="syd",
        near="lhr",
        core_env={**FAST_LINK, "LIGHTCONE_MIN_SOURCES": "0"},
        edge_env=EDGE_ENV,
        delay_s=0.1,
    ) as made:
        yield made


async def set_level(levels: Levels, body: dict[str, Any]) -> dict[str, Any]:
    """Set the suggest flag and wait until both edges have it."""
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
        put = await admin.put(f"{levels.core.url}/admin/flags/suggest", json=body)
    assert put.status_code == 200, put.text
    flag: dict[str, Any] = put.json()
    del flag["feature"]

    async def arrived() -> bool:
        async with httpx.AsyncClient() as client:
            for edge in (levels.near, levels.far):
                status = (await client.get(f"{edge.url}/status")).json()
                if status["flags"]["suggest"] != flag:
                    return False
                shown = status["features"]["suggest"]
                assert (shown["level"], shown["max_age_ms"]) == (flag["level"], flag["max_age_ms"])
        return True

    await eventually(arrived, 10, f"both edges at {flag}")
    return flag


async def suggest(edge: Node, **params: Any) -> httpx.Response:
    headers = {BOOKMARK: params.pop("header")} if "header" in params else {}
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(f"{edge.url}/suggest", params=params, headers=headers)


def round_trips(edge: Node, level: str) -> float:
    text = httpx.get(f"{edge.url}/metrics/").text
    key = f'lightcone_edge_core_round_trips_total{{feature="suggest",level="{level}"}} '
    lines = [line for line in text.splitlines() if line.startswith(key)]
    return float(lines[0].split()[-1]) if lines else 0.0


def syncs_sent(edge: Node) -> float:
    text = httpx.get(f"{edge.url}/metrics/").text
    lines = [
        line for line in text.splitlines() if line.startswith("lightcone_edge_core_syncs_total ")
    ]
    return float(lines[0].split()[-1])


async def test_concurrent_strict_reads_share_syncs_and_each_sees_the_write(
    levels: Levels,
) -> None:
    """A write through A, then many strict reads at once through B (a 200 ms round trip
    from the core): each sees the write, and B sends the core a few syncs, not one each
    (4 in flight here, the next boarding: edge_node/single_flight.py)."""
    await set_level(levels, {"level": "strict"})
    far = levels.far
    async with httpx.AsyncClient(timeout=10) as client:
        ack = await client.post(
            f"{levels.near.url}/search", json={"id": uuid.uuid4().hex, "q": "Coalesce Town"}
        )
        assert ack.status_code == 200 and ack.json()["status"] == "committed", ack.text
    syncs, trips = syncs_sent(far), round_trips(far, "strict")
    limits = httpx.Limits(max_connections=CONCURRENT_READS)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        answers = await asyncio.gather(
            *(
                client.get(f"{far.url}/suggest", params={"q": "coalesce t"})
                for _ in range(CONCURRENT_READS)
            )
        )
    for answer in answers:
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["mode"] == "strict" and body["core_trip"] is True
        assert "Coalesce Town" in [item["term"] for item in body["items"]]
    sent = syncs_sent(far) - syncs
    assert round_trips(far, "strict") - trips == CONCURRENT_READS  # per read, as before
    assert 1 <= sent <= CONCURRENT_READS / 10, f"{sent} syncs for {CONCURRENT_READS} reads"
    await set_level(levels, {"stale_ok": True})


async def test_bounded_answers_from_the_far_edge_and_fails_fast_once_cut(levels: Levels) -> None:
    flag = await set_level(levels, {"level": "bounded", "max_age_ms": 2000})
    assert flag["max_age_ms"] == 2000 and flag["stale_ok"] is True
    far = levels.far

    async def local() -> dict[str, Any] | None:
        answer = (await suggest(far, q="tok")).json()
        return answer if "core_trip" not in answer else None

    answer = await eventually(local, 10, "a bounded answer from B's own data")
    assert answer["mode"] == "bounded" and answer["items"][0]["term"] == "Tokyo"
    trips = round_trips(far, "bounded")
    started = time.perf_counter()
    for _ in range(20):
        assert "core_trip" not in (await suggest(far, q="tok")).json()
    assert time.perf_counter() - started < 20 * 0.2  # never the 200 ms round trip each
    assert round_trips(far, "bounded") == trips

    levels.proxy.cut()
    try:

        async def refused() -> httpx.Response | None:
            response = await suggest(far, q="tok")
            return response if response.status_code == 503 else None

        failed = await eventually(refused, 10, "bounded refused once the data may be too old")
        assert failed.json()["error"] in {"core_unreachable", "strict_timeout"}
        started = time.perf_counter()
        again = await suggest(far, q="tok")
        assert again.status_code == 503
        assert time.perf_counter() - started < STRICT_TIMEOUT_MS / 1000 + 0.5  # fails fast
        tolerant = await suggest(far, q="tok", consistency="tolerant")  # weaker: still served
        assert tolerant.status_code == 200 and tolerant.json()["mode"] == "tolerant"
    finally:
        levels.proxy.heal()
    await eventually(local, 15, "bounded answers from B's data again after the heal")
    await set_level(levels, {"level": "strict"})

    async def strict() -> bool:  # the breaker closed again: the next tests need the core
        return (await suggest(far, q="tok")).status_code == 200

    await eventually(strict, 10, "strict reads answered again")
    await set_level(levels, {"stale_ok": True})


async def test_session_reads_your_writes_across_edges(levels: Levels) -> None:
    await set_level(levels, {"level": "session"})
    async with httpx.AsyncClient(timeout=10) as client:
        ack = await client.post(
            f"{levels.near.url}/search", json={"id": uuid.uuid4().hex, "q": "Levels Town"}
        )
    assert ack.status_code == 200, ack.text
    written = ack.json()
    assert written["status"] == "committed" and ack.headers[BOOKMARK] == written["bookmark"]
    epoch, version = read_bookmark(written["bookmark"])
    assert version == written["version"]

    # At once through the far edge, with the bookmark as a parameter, then as a header.
    for how in ("bookmark", "header"):
        seen = await suggest(levels.far, q="levels t", **{how: written["bookmark"]})
        assert seen.status_code == 200, seen.text
        body = seen.json()
        assert "Levels Town" in [item["term"] for item in body["items"]]
        assert body["mode"] == "session" and seen.headers[BOOKMARK] == body["bookmark"]
        assert read_bookmark(body["bookmark"]) >= (epoch, version)  # never older

    ahead = await suggest(levels.far, q="lev", bookmark=make_bookmark(epoch, 10**12))
    assert (ahead.status_code, ahead.json()["error"]) == (400, "bookmark_ahead")
    both = await suggest(levels.near, q="lev", bookmark=written["bookmark"], header=f"{epoch}.1")
    assert (both.status_code, both.json()["error"]) == (400, "bad_bookmark")
    await set_level(levels, {"stale_ok": True})


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"consistency": "strict"}, "consistency_too_strong"),
        ({"consistency": "eventual"}, "bad_consistency"),
        ({"consistency": "tolerant", "max_age_ms": "500"}, "bad_max_age_ms"),
        ({"consistency": "bounded", "max_age_ms": "soon"}, "bad_max_age_ms"),
        ({"bookmark": "not-a-bookmark"}, "bad_bookmark"),
    ],
)
async def test_a_read_is_refused_a_stronger_or_unknown_level(
    levels: Levels, params: dict[str, str], code: str
) -> None:
    """The flag is tolerant (the module's tests leave it so)."""
    refused = await suggest(levels.near, q="tok", **params)
    assert (refused.status_code, refused.json()["error"]) == (400, code)


async def test_the_websocket_carries_levels_and_bookmarks(levels: Levels) -> None:
    await set_level(levels, {"level": "bounded", "max_age_ms": 3000})
    async with connect(ws_url(levels.near), subprotocols=[SUBPROTOCOL_JSON]) as ws:  # type: ignore[list-item]
        ack = await reply(ws, encode_json(Search(uuid.uuid4().hex, "Tokyo")))
        assert isinstance(ack, SearchAck) and ack.status == "committed"
        assert ack.bookmark is not None
        answer = await reply(
            ws, encode_json(Suggest("s1", "tok", consistency="session", bookmark=ack.bookmark))
        )
        assert isinstance(answer, Suggestions) and answer.mode == "session"
        assert answer.bookmark is not None
        assert read_bookmark(answer.bookmark)[1] >= read_bookmark(ack.bookmark)[1]
        bounded = await reply(
            ws, encode_json(Suggest(2, "tok", consistency="bounded", max_age_ms=5000))
        )
        assert isinstance(bounded, Suggestions) and bounded.mode == "bounded"
        refused = await reply(ws, encode_json(Suggest(3, "tok", consistency="strict")))
        assert isinstance(refused, Error) and (refused.id, refused.code) == (
            3,
            "consistency_too_strong",
        )
    await set_level(levels, {"stale_ok": True})
