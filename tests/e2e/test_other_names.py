"""Other names through a real core and real edges (the default corpus): the issue's examples,
over HTTP and the websocket, and a term's names changed through the admin API."""

from __future__ import annotations

from functools import partial

import httpx
import pytest
from websockets.asyncio.client import connect

from shared.protocol import Suggest, Suggestions, decode, encode
from tests.e2e.conftest import Cluster
from tests.helpers.nodes import ADMIN_TOKEN, Node, suggest_items
from tests.helpers.waiting import until_equal

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("q", "term", "alias"),
    [
        ("bombay", "Mumbai", "Bombay"),
        ("peking", "Beijing", "Peking"),
        ("москва", "Moscow", "Москва"),
        ("東京", "Tokyo", "東京"),
        ("munchen", "Munich", "München"),
        ("München", "Munich", "München"),
    ],
)
async def test_the_issues_other_names_suggest_their_city_first(
    cluster: Cluster, q: str, term: str, alias: str
) -> None:
    _, syd, _ = cluster
    first = (await suggest_items(syd, q))[0]
    assert first == {"term": term, "weight": first["weight"], "match": "alias", "alias": alias}


async def test_munchen_still_finds_munchenstein_after_munich(cluster: Cluster) -> None:
    found = await suggest_items(cluster[1], "munchen")
    assert [i["term"] for i in found[:2]] == ["Munich", "Münchenstein"]
    assert "match" not in found[1]  # a prefix match of its own name: as before


async def test_the_websocket_item_carries_the_name(cluster: Cluster) -> None:
    _, _, lhr = cluster
    async with connect(lhr.url.replace("http://", "ws://") + "/ws") as ws:
        await ws.send(encode(Suggest(id=1, q="bombay", limit=1)))
        answer = decode(await ws.recv(decode=False))
    assert isinstance(answer, Suggestions)
    assert (answer.items[0].term, answer.items[0].match, answer.items[0].alias) == (
        "Mumbai",
        "alias",
        "Bombay",
    )


async def test_names_set_through_the_admin_api_reach_both_edges(cluster: Cluster) -> None:
    """A delta carries the term's names: the new one matches at both edges, and clearing
    them stops it."""
    core, syd, lhr = cluster
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=core.url, headers=headers) as client:
        put = await client.put(
            "/admin/terms/Quillon Harbour", json={"weight": 5, "names": ["Zyxqport"]}
        )
        assert put.status_code == 200, put.text

    async def first(edge: Node) -> tuple[str, str] | None:
        found = await suggest_items(edge, "zyxqp", 1)
        return (found[0]["term"], found[0].get("alias", "")) if found else None

    for edge in (syd, lhr):
        await until_equal(partial(first, edge), ("Quillon Harbour", "Zyxqport"), 10)
    async with httpx.AsyncClient(base_url=core.url, headers=headers) as client:
        await client.put("/admin/terms/Quillon Harbour", json={"weight": 5, "names": []})
    for edge in (syd, lhr):
        await until_equal(partial(first, edge), None, 10)
