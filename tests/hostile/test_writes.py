"""Issue 9, findings 6 and 7, by their class: writes you can trust.

- One anonymous search made any text a served suggestion on every edge: now a new term
  needs searches from ``LIGHTCONE_MIN_SOURCES`` (default 3) distinct sources, counted
  across edges.
- A repeated search id with another ``q`` was acknowledged ``committed`` and dropped: now it
  is refused with 409 ``id_conflict`` (HTTP) or an ``error`` (websocket), whether the edge's
  outbox or the core holds the first one.
- Restoring a backup kept the epoch and lowered the version: an edge that was ahead kept
  serving rolled-back data as fresh. Now the core rotates the epoch (restore procedure, or
  the first hello above its head) and every edge loads the restored data.

Real core and edge processes; the edges trust ``Fly-Client-IP`` so the test can play
clients at several addresses from 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from websockets.asyncio.client import connect

from edge_node.app import create_app
from edge_node.settings import EdgeSettings
from shared.config import from_environ
from shared.protocol import (
    SUBPROTOCOL_JSON,
    Error,
    Search,
    SearchAck,
    decode_json,
    encode_json,
    read_bookmark,
)
from tests.e2e.conftest import Cluster
from tests.helpers.clients import prefix_terms
from tests.helpers.nodes import ADMIN_TOKEN, FAST_LINK, SMALL_CORPUS, Node, start_core, start_edge
from tests.helpers.proxy_thread import ProxyThread
from tests.helpers.waiting import eventually, until_equal

pytestmark = pytest.mark.e2e

HEADER = "Fly-Client-IP"
TRUSTING = {**FAST_LINK, "LIGHTCONE_TRUST_CLIENT_IP_HEADER": HEADER}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A core with the default source threshold, and two edges that trust the header."""
    tmp = tmp_path_factory.mktemp("writes")
    core = start_core(tmp, corpus=SMALL_CORPUS, env=FAST_LINK)
    edges: list[Node] = []
    try:
        edges.append(start_edge(tmp, core.url, "syd", env=TRUSTING))
        edges.append(start_edge(tmp, core.url, "lhr", env=TRUSTING))
        yield core, edges[0], edges[1]
    finally:
        for node in [*edges, core]:
            node.stop()
    for node in [core, *edges]:
        assert not node.errors(), node.errors()


async def post_search(
    edge: Node, q: str, *, search_id: str | None = None, client_ip: str | None = None
) -> httpx.Response:
    headers = {HEADER: client_ip} if client_ip else {}
    body = {"id": search_id or uuid.uuid4().hex, "q": q}
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(f"{edge.url}/search", json=body, headers=headers)


async def suggested(edge: Node, q: str, min_version: int | None = None) -> list[str] | None:
    """The suggested terms; ``None`` while the edge cannot reach the core to prove it holds
    ``min_version`` (503: a link that is still coming back), so a wait can try again."""
    params: dict[str, Any] = {"q": q}
    if min_version is not None:
        params["min_version"] = min_version
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(f"{edge.url}/suggest", params=params)
    if answer.status_code == 503:
        return None
    assert answer.status_code == 200, answer.text
    return prefix_terms(answer.json()["items"])


async def committed(response: httpx.Response) -> int:
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "committed"
    return int(response.json()["version"])


# --- distinct sources ---------------------------------------------------------------------


async def test_one_search_does_not_make_junk_a_suggestion_on_any_edge(cluster: Cluster) -> None:
    _, syd, lhr = cluster
    version = await committed(await post_search(syd, "Buy Pills Now"))
    for edge in (syd, lhr):
        assert await suggested(edge, "buy pills", min_version=version) == []


async def test_many_searches_from_one_address_do_not_either(cluster: Cluster) -> None:
    _, syd, lhr = cluster
    version = 0
    for edge in (syd, lhr) * 10:
        version = await committed(await post_search(edge, "Spam Central", client_ip="198.51.100.7"))
    for edge in (syd, lhr):
        assert await suggested(edge, "spam cen", min_version=version) == []


async def test_one_ipv6_network_is_one_source(cluster: Cluster) -> None:
    """Addresses of one /48 (one customer site, its /64s included) are one source; with a
    third IPv4 source that makes two."""
    _, syd, _ = cluster
    for ip in ("2001:db8:1:2::1", "2001:db8:1:2::ffff", "2001:db8:1:9:abcd::9", "192.0.2.1"):
        version = await committed(await post_search(syd, "Sixty Four", client_ip=ip))
    assert await suggested(syd, "sixty", min_version=version) == []


async def test_distinct_sources_at_different_edges_make_a_suggestion_everywhere(
    cluster: Cluster,
) -> None:
    """Three addresses, through two edges: the sources compare across edges (shared key)."""
    _, syd, lhr = cluster
    version = await committed(await post_search(syd, "Lightcone Fair", client_ip="203.0.113.1"))
    version = await committed(await post_search(lhr, "Lightcone Fair", client_ip="203.0.113.2"))
    for edge in (syd, lhr):
        assert await suggested(edge, "lightcone f", min_version=version) == []
    version = await committed(await post_search(syd, "Lightcone Fair", client_ip="203.0.113.3"))
    for edge in (syd, lhr):
        assert await suggested(edge, "lightcone f", min_version=version) == ["Lightcone Fair"]


# --- one id, one query --------------------------------------------------------------------


async def test_a_reused_id_with_another_query_is_refused_over_http_and_websocket(
    cluster: Cluster,
) -> None:
    """The attack: the same id with another q was answered ``committed`` and dropped."""
    core, syd, lhr = cluster
    search_id = uuid.uuid4().hex
    first = await committed(await post_search(syd, "First Query", search_id=search_id))
    for edge in (syd, lhr):
        refused = await post_search(edge, "Second Query", search_id=search_id)
        assert refused.status_code == 409, refused.text
        assert refused.json() == {
            "error": "id_conflict",
            "message": f"search id {search_id!r} was already used for another query",
        }
    ws_url = lhr.url.replace("http://", "ws://") + "/ws"
    async with connect(ws_url, subprotocols=[SUBPROTOCOL_JSON]) as ws:  # type: ignore[list-item]
        await ws.send(encode_json(Search(search_id, "Second Query")))
        error = decode_json(str(await ws.recv()))
        await ws.send(encode_json(Search(search_id, "First Query")))
        ack = decode_json(str(await ws.recv()))
    assert isinstance(error, Error) and (error.id, error.code) == (search_id, "id_conflict")
    # The first write stands, idempotent as before; the second was never applied.
    assert isinstance(ack, SearchAck) and ack.bookmark is not None
    assert ack == SearchAck(search_id, "committed", first, ack.bookmark)
    assert read_bookmark(ack.bookmark)[1] == first
    assert await committed(await post_search(lhr, "First Query", search_id=search_id)) == first
    db = Path(core.args[core.args.index("--data-dir") + 1]) / "lightcone.db"
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT q FROM searches WHERE id = ?", (search_id,)).fetchall()
        second = conn.execute("SELECT count(*) FROM terms WHERE key = 'secondquery'").fetchone()
    assert rows == [("First Query",)] and second == (0,)


def test_a_reused_id_is_refused_from_the_outbox_while_the_core_is_away() -> None:
    """The first search waits in the edge's outbox (no core): a different q is 409 at once,
    the same q is still ``queued``."""
    env = {"LIGHTCONE_LINK_TOKEN": "t", "LIGHTCONE_RECONNECT_MAX_S": "0.2"}
    settings = from_environ(EdgeSettings, env, core_url="http://127.0.0.1:9", region="syd")
    with TestClient(create_app(settings)) as client:
        assert client.post("/search", json={"id": "s1", "q": "Paris"}).status_code == 202
        refused = client.post("/search", json={"id": "s1", "q": "Pariss"})
        assert (refused.status_code, refused.json()["error"]) == (409, "id_conflict")
        again = client.post("/search", json={"id": "s1", "q": "Paris"})
        assert (again.status_code, again.json()["status"]) == (202, "queued")
        assert client.get("/status").json()["outbox"] == 1


# --- rollbacks ----------------------------------------------------------------------------


@pytest.fixture
def linked(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A core and an edge whose link runs through a proxy (the core can be replaced)."""
    core = start_core(tmp_path, corpus=SMALL_CORPUS, env=FAST_LINK)
    proxy = ProxyThread("127.0.0.1", int(core.url.rsplit(":", 1)[1]), name="link")
    nodes: dict[str, Any] = {"core": core, "proxy": proxy, "tmp": tmp_path}
    try:
        env = {**FAST_LINK, "LIGHTCONE_STALE_AFTER_MS": "500"}
        nodes["edge"] = start_edge(tmp_path, proxy.url, "syd", env=env)
        yield nodes
    finally:
        for name in ("edge", "core"):
            if name in nodes:
                nodes[name].stop()
        proxy.close()
    for name in ("edge", "core"):
        assert not nodes[name].errors(), nodes[name].errors()


async def upsert(core: Node, term: str, weight: int) -> int:
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
        put = await client.put(f"{core.url}/admin/terms/{term}", json={"weight": weight})
    assert put.status_code == 200, put.text
    return int(put.json()["version"])


async def answer(edge: Node, q: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as client:
        result: dict[str, Any] = (await client.get(f"{edge.url}/suggest", params={"q": q})).json()
    return result


async def take_backup_then_write_more(nodes: dict[str, Any]) -> tuple[Path, int]:
    """Back the database up, then commit "Lost Harbour" after it; the edge serves it.
    Returns the backup and the version the edge holds."""
    core, edge = nodes["core"], nodes["edge"]
    await upsert(core, "Kept Harbour", 70)
    db = nodes["tmp"] / "core-data" / "lightcone.db"
    backup = nodes["tmp"] / "backup.db"
    with sqlite3.connect(db) as source, sqlite3.connect(backup) as target:
        source.backup(target)
    lost = await upsert(core, "Lost Harbour", 90)
    await until_equal(partial(suggested, edge, "lost h", min_version=lost), ["Lost Harbour"], 10)
    return backup, lost


async def restore(nodes: dict[str, Any], backup: Path, env: dict[str, str]) -> Node:
    """Kill the core, put the backup in place, start a core on it (not yet linked)."""
    await asyncio.to_thread(_restore, nodes["core"], nodes["tmp"] / "core-data", backup)
    core: Node = await asyncio.to_thread(
        start_core, nodes["tmp"], corpus=SMALL_CORPUS, env={**FAST_LINK, **env}
    )
    nodes["core"] = core
    return core


def _restore(core: Node, data: Path, backup: Path) -> None:
    core.kill()
    for name in ("lightcone.db-wal", "lightcone.db-shm"):
        (data / name).unlink(missing_ok=True)
    (data / "lightcone.db").write_bytes(backup.read_bytes())


async def test_an_edge_ahead_of_a_restored_core_loads_the_restored_data_under_a_new_epoch(
    linked: dict[str, Any],
) -> None:
    """The safety net: the restore procedure was not followed. The edge says hello with
    the core's epoch and a version above its head; the core rotates the epoch and the edge
    never serves the rolled-back "Lost Harbour" as fresh."""
    edge, proxy = linked["edge"], linked["proxy"]
    backup, lost = await take_backup_then_write_more(linked)
    core = await restore(linked, backup, {})
    head = (await answer(edge, "x"))["version"]
    assert head == lost
    await eventually(lambda: _stale(edge), 10, "stale while the core is away")

    proxy.retarget(int(core.url.rsplit(":", 1)[1]))
    seen: list[dict[str, Any]] = []

    async def rolled_back() -> bool:
        seen.append(await answer(edge, "lost h"))
        return not seen[-1]["items"]

    await eventually(rolled_back, 10, "the restored data served")
    assert all(a["stale"] for a in seen if a["items"]), "rolled-back data served as fresh"
    assert prefix_terms((await answer(edge, "kept h"))["items"]) == ["Kept Harbour"]
    core.wait_for("rollback found", 10)
    assert await _rotations(core) == 1.0

    # Writes after the restore reach the edge as usual; a later hello changes nothing.
    after = await upsert(core, "After Harbour", 80)
    await until_equal(partial(suggested, edge, "after h", min_version=after), ["After Harbour"], 10)
    assert after == lost  # the number of "Lost Harbour", reused only under a new epoch
    proxy.cut()
    await eventually(lambda: _stale(edge), 10, "stale while cut")
    proxy.heal()
    await eventually(lambda: _fresh(edge), 10, "fresh after heal")
    assert await _rotations(core) == 1.0


async def test_the_restore_procedure_rotates_the_epoch_before_any_write(
    linked: dict[str, Any],
) -> None:
    """With ``LIGHTCONE_RESTORED_FROM`` the epoch changes at start, so writes made before
    the edge is back (reaching past the version it holds) cannot be mistaken for the deltas
    it lacks: the edge loads a snapshot, without "Lost Harbour"."""
    edge, proxy = linked["edge"], linked["proxy"]
    backup, lost = await take_backup_then_write_more(linked)
    core = await restore(linked, backup, {"LIGHTCONE_RESTORED_FROM": "snap-1"})
    core.wait_for("restored from snap-1: new epoch", 10)
    version = 0
    while version <= lost:
        version = await upsert(core, "Harbour Again", 60 + version)
    proxy.retarget(int(core.url.rsplit(":", 1)[1]))
    await until_equal(
        partial(suggested, edge, "harbour a", min_version=version), ["Harbour Again"], 10
    )
    assert await suggested(edge, "lost h") == []
    assert await _rotations(core) == 0.0  # the safety net had nothing to do


async def _stale(edge: Node) -> bool:
    return bool((await answer(edge, "x"))["stale"])


async def _fresh(edge: Node) -> bool:
    return not (await answer(edge, "x"))["stale"]


async def _rotations(core: Node) -> float:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{core.url}/metrics/")).text
    line = next(x for x in text.splitlines() if x.startswith("lightcone_epoch_rotations_total "))
    return float(line.split()[1])
