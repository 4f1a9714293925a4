"""A real core and two real edges: suggestions, admin writes, logged searches, the flag."""

from __future__ import annotations

import sqlite3
import uuid
from functools import partial
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from shared.protocol import (
    SUBPROTOCOL_JSON,
    Search,
    SearchAck,
    Suggest,
    Suggestions,
    decode,
    decode_json,
    encode,
    encode_json,
)
from tests.e2e.conftest import Cluster
from tests.helpers.clients import prefix_terms
from tests.helpers.nodes import ADMIN_TOKEN, Node
from tests.helpers.waiting import until_equal

pytestmark = pytest.mark.e2e


async def terms(edge: Node, q: str, limit: int = 10) -> list[str]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{edge.url}/suggest", params={"q": q, "limit": limit})
    assert response.status_code == 200, response.text
    return prefix_terms(response.json()["items"])


def admin(core: Node) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=core.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})


async def test_folded_query_finds_sao_paulo_first(cluster: Cluster) -> None:
    """ "sao pa" returns São Paulo first at both edges, with the documented answer fields."""
    _, syd, lhr = cluster
    for edge, region in ((syd, "syd"), (lhr, "lhr")):
        async with httpx.AsyncClient() as client:
            answer = (await client.get(f"{edge.url}/suggest", params={"q": "sao pa"})).json()
        assert answer["items"][0] == {"term": "São Paulo", "weight": answer["items"][0]["weight"]}
        assert answer["items"][0]["weight"] > 10_000_000
        assert answer["mode"] == "tolerant"
        assert answer["region"] == region
        assert answer["stale"] is False
        assert set(answer) == {"items", "version", "age_ms", "mode", "stale", "region", "bookmark"}


async def test_websocket_serves_msgpack_and_json(cluster: Cluster) -> None:
    """/ws answers msgpack by default and JSON text frames on the JSON subprotocol."""
    _, syd, _ = cluster
    ws_url = syd.url.replace("http://", "ws://") + "/ws"
    async with connect(ws_url) as ws:
        await ws.send(encode(Suggest(id=1, q="SAO PAULO", limit=1)))
        answer = decode(await ws.recv(decode=False))
    assert isinstance(answer, Suggestions) and answer.id == 1
    assert prefix_terms(answer.items) == ["São Paulo"]
    async with connect(ws_url, subprotocols=[SUBPROTOCOL_JSON]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == SUBPROTOCOL_JSON
        await ws.send(encode_json(Suggest(id="a", q="lond", limit=2)))
        text = await ws.recv()
        assert isinstance(text, str)
        answer = decode_json(text)
    assert isinstance(answer, Suggestions) and answer.id == "a"
    assert answer.items[0].term == "London"


async def test_admin_upsert_and_delete_reach_both_edges(cluster: Cluster) -> None:
    """An upserted term appears at both edges; a deleted one disappears from both."""
    core, syd, lhr = cluster
    async with admin(core) as client:
        put = await client.put("/admin/terms/Lightcone Bay", json={"weight": 777})
        assert put.status_code == 200, put.text
        version = put.json()["version"]
    for edge in (syd, lhr):
        await until_equal(partial(terms, edge, "lightcone b"), ["Lightcone Bay"], 5)
    async with admin(core) as client:
        gone = await client.delete("/admin/terms/LIGHTCONE BAY")
        assert gone.status_code == 200 and gone.json()["version"] > version
    for edge in (syd, lhr):
        await until_equal(partial(terms, edge, "lightcone b"), list[str](), 5)


async def test_repeated_searches_raise_rank(cluster: Cluster) -> None:
    """Logged searches raise a term's weight until it outranks its neighbour."""
    core, syd, lhr = cluster
    async with admin(core) as client:
        await client.put("/admin/terms/Lumen Alpha", json={"weight": 5000})
        await client.put("/admin/terms/Lumen Beta", json={"weight": 4000})

    await until_equal(partial(terms, lhr, "lumen "), ["Lumen Alpha", "Lumen Beta"], 5)
    async with httpx.AsyncClient() as client:
        for _ in range(2):
            ack = await client.post(f"{syd.url}/search", json={"id": _id(), "q": "lumen beta"})
            assert ack.status_code == 200 and ack.json()["status"] == "committed"
    for edge in (syd, lhr):
        await until_equal(partial(terms, edge, "lumen "), ["Lumen Beta", "Lumen Alpha"], 5)


async def test_repeated_search_id_is_applied_once(cluster: Cluster) -> None:
    """The same client id is acknowledged again with the same version and counted once."""
    core, syd, lhr = cluster
    search_id = _id()
    async with httpx.AsyncClient() as client:
        first = (await client.post(f"{syd.url}/search", json={"id": search_id, "q": "Once"})).json()
        again = (await client.post(f"{lhr.url}/search", json={"id": search_id, "q": "Once"})).json()
    assert first["status"] == again["status"] == "committed"
    assert first["version"] == again["version"]
    assert _count(core, "SELECT count(*) FROM searches WHERE id = ?", search_id) == 1
    assert _count(core, "SELECT searches FROM terms WHERE key = ?", "once") == 1


async def test_flag_flips_mode_at_both_edges(cluster: Cluster) -> None:
    """PUT /admin/flags/suggest switches every edge between tolerant and strict at run time."""
    core, syd, lhr = cluster

    async def mode(edge: Node) -> str:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{edge.url}/suggest", params={"q": "par"})
        return str(response.json()["mode"])

    try:
        for stale_ok, expected in ((False, "strict"), (True, "tolerant")):
            async with admin(core) as client:
                put = await client.put("/admin/flags/suggest", json={"stale_ok": stale_ok})
                answer = {"feature": "suggest", "stale_ok": stale_ok, "mode": expected}
                assert put.json().items() >= answer.items()  # and the level it names
                flags = (await client.get("/admin/flags")).json()
                assert flags["suggest"].items() >= {"stale_ok": stale_ok, "mode": expected}.items()
            for edge in (syd, lhr):
                await until_equal(partial(mode, edge), expected, 5)
    finally:
        async with admin(core) as client:
            await client.put("/admin/flags/suggest", json={"stale_ok": True})


def _id() -> str:
    return uuid.uuid4().hex


def _count(core: Node, sql: str, *params: object) -> int:
    db = Path(core.args[core.args.index("--data-dir") + 1]) / "lightcone.db"
    with sqlite3.connect(db) as conn:
        row = conn.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def test_edge_with_the_default_corpus_fits_half_of_256_mb(cluster: Cluster) -> None:
    """An edge serving the whole default corpus stays under 128 MB resident."""
    for edge in cluster[1:]:
        status = Path(f"/proc/{edge.process.pid}/status").read_text()
        rss_kb = int(
            next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]
        )
        assert rss_kb < 128 * 1024, f"edge RSS {rss_kb} kB"


async def test_a_search_over_the_websocket_is_acknowledged_committed(cluster: Cluster) -> None:
    """A search message gets a search_ack with the version that committed it."""
    _, syd, _ = cluster
    search_id = _id()
    async with connect(syd.url.replace("http://", "ws://") + "/ws") as ws:
        await ws.send(encode(Search(search_id, "Websocket Town")))
        ack = decode(await ws.recv(decode=False))
    assert isinstance(ack, SearchAck)
    assert (ack.id, ack.status) == (search_id, "committed") and ack.version is not None
