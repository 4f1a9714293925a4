"""Hostile text at the door (issue 9, finding 1 and the text parts of findings 2 and 11).

Each test first sends the attack as the issue reports it, then checks the promise: a clear,
documented error; the connection, the write path and the other clients keep working; the
core stays healthy, compacts, and starts again on its own data.
"""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from shared.folding import fold
from shared.protocol import (
    SUBPROTOCOL_JSON,
    Error,
    Join,
    Presence,
    Search,
    SearchAck,
    Suggest,
    Suggestions,
    encode,
)
from shared.text import MAX_KEY_CHARS
from tests.helpers.clients import bystander as served_bystander, prefix_terms, reply, ws_url
from tests.helpers.nodes import (
    ADMIN_TOKEN,
    FAST_LINK,
    SMALL_CORPUS,
    Node,
    start_core,
    start_edge,
)
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.e2e

COMPACT_AFTER = 20
EXPANDER = "\ufdfa"  # one character on screen, 15 once folded (NFKD, no spaces)
ATTACK = [EXPANDER * 98 + f"{n:02d}" for n in range(80)]  # finding 1, as reported


def admin_client(core: Node) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=core.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})


async def snapshot_version(core: Node) -> int:
    async with admin_client(core) as admin:
        return int((await admin.get("/admin/status")).json()["snapshot_version"])


async def compaction_happens(core: Node, edge: Node, label: str) -> None:
    """More than COMPACT_AFTER new terms, logged as searches: the core publishes a new
    snapshot, and the edge serves the writes."""
    before = await snapshot_version(core)
    async with httpx.AsyncClient(base_url=edge.url) as client:
        for n in range(COMPACT_AFTER + 1):
            answer = await client.post("/search", json={"id": f"{label}-{n}", "q": f"{label} {n}"})
            assert answer.status_code == 200, answer.text

    async def compacted() -> bool:
        return await snapshot_version(core) > before

    await eventually(compacted, 20, "a compaction snapshot")

    async def served() -> bool:
        last = f"{label} {COMPACT_AFTER}"
        async with httpx.AsyncClient(base_url=edge.url) as client:
            answer = (await client.get("/suggest", params={"q": last, "limit": 1})).json()
        return prefix_terms(answer["items"]) == [last]

    await eventually(served, 10, "the edge serves the last logged term")


# --- finding 1: the core bricked by NFKD expansion ---------------------------------------------


async def test_expanding_searches_are_refused_and_the_core_keeps_compacting(
    tmp_path: Path,
) -> None:
    """80 searches of "\\ufdfa" × 98 + 2 characters (1,472 once folded) used to be answered
    200 and then kill every compaction and every restart of the core. Now each is refused
    with key_too_long; the largest keys the door admits (100 folded characters, all sharing
    98) are served, compaction still works, and a restarted core starts."""
    # One source suffices here: this test is about the door, not the sources threshold.
    env = {"LIGHTCONE_COMPACT_AFTER": str(COMPACT_AFTER), "LIGHTCONE_MIN_SOURCES": "1", **FAST_LINK}
    core = start_core(tmp_path, corpus=SMALL_CORPUS, env=env)
    edge = start_edge(tmp_path, core.url, "syd", env=FAST_LINK)
    try:
        async with httpx.AsyncClient(base_url=edge.url) as client:
            for n, q in enumerate(ATTACK):
                answer = await client.post("/search", json={"id": f"attack-{n}", "q": q})
                assert answer.status_code == 400, answer.text
                assert answer.json()["error"] == "key_too_long"
            # At the limit: 6 expanders + 10 characters fold to exactly MAX_KEY_CHARS.
            for n in range(80):
                q = EXPANDER * 6 + f"xxxxxxxx{n:02d}"
                assert len(fold(q)) == MAX_KEY_CHARS
                answer = await client.post("/search", json={"id": f"edge-{n}", "q": q})
                assert answer.status_code == 200, answer.text
            served = (await client.get("/suggest", params={"q": EXPANDER, "limit": 20})).json()
            assert len(served["items"]) == 20
        async with httpx.AsyncClient(base_url=core.url) as client:
            assert (await client.get("/readyz")).status_code == 200
        await compaction_happens(core, edge, "after the attack")
    finally:
        edge.stop()
        core.stop()
    assert not core.errors() and not edge.errors(), core.errors() + edge.errors()

    # The database of a core that took the attack before the door: the rows are there.
    db = sqlite3.connect(tmp_path / "core-data" / "lightcone.db")
    with db:
        version = int(db.execute("SELECT value FROM meta WHERE name = 'version'").fetchone()[0])
        db.executemany(
            "INSERT INTO terms (key, term, base_weight, searches, version) VALUES (?, ?, 0, 1, ?)",
            [(fold(q), q, version) for q in ATTACK],
        )
        # Such a database predates stored snapshots too (migration 6): the core builds its
        # first base from every term, and meets the attack's rows.
        db.execute("DELETE FROM snapshots")
    db.close()
    restarted = start_core(tmp_path, corpus=SMALL_CORPUS, env=env)
    edge = start_edge(tmp_path, restarted.url, "lhr", env=FAST_LINK)
    try:
        restarted.wait_for("80 stored terms are not served", 5)
        await compaction_happens(restarted, edge, "after the restart")
    finally:
        edge.stop()
        restarted.stop()
    assert not restarted.errors() and not edge.errors()


# --- findings 2 and 11: lone surrogates, controls and deep nesting ------------------------------


@pytest.fixture(scope="module")
def door_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Node]]:
    tmp = tmp_path_factory.mktemp("door")
    core = start_core(tmp, corpus=SMALL_CORPUS, env=FAST_LINK)
    try:
        edge = start_edge(tmp, core.url, "syd", env=FAST_LINK)
    except BaseException:
        core.stop()
        raise
    yield core, edge
    assert edge.stop() != -signal.SIGKILL, "the edge did not shut down within its grace"
    core.stop()
    for node in (core, edge):
        assert not node.errors(), f"{node.args[0]} logged errors: {node.errors()}"


@pytest.fixture
async def bystander(door_cluster: tuple[Node, Node]) -> AsyncIterator[ClientConnection]:
    """A well-behaved client that must keep being served while others misbehave."""
    async with served_bystander(door_cluster[1]) as ws:
        yield ws


async def test_a_surrogate_search_id_is_a_400_and_the_write_path_stays_open(
    door_cluster: tuple[Node, Node], bystander: ClientConnection
) -> None:
    """``POST /search {"id": "\\udfff-1", "q": "paris"}`` answered 500 and poisoned the
    outbox: every later search stayed queued for ever. Now: 400 bad_text, and later searches
    commit."""
    _, edge = door_cluster
    async with httpx.AsyncClient(base_url=edge.url) as client:
        answer = await client.post("/search", content=b'{"id": "\\udfff-1", "q": "paris"}')
        assert (answer.status_code, answer.json()["error"]) == (400, "bad_text")
        for n in range(3):
            later = await client.post("/search", json={"id": f"after-{n}", "q": "Paris"})
            assert (later.status_code, later.json()["status"]) == (200, "committed")
        metrics = (await client.get("/metrics/")).text
    assert "lightcone_outbox_depth 0.0" in metrics


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": "s-1", "q": "\\udfff"}',
        b'{"id": "s-1", "q": "par\\u0000is"}',
        b'{"id": "s-1", "q": "\\u202esirap"}',
        b'{"\\udfff": 1, "id": "s-1", "q": "paris"}',
    ],
)
async def test_search_bodies_that_are_not_text_are_400(
    door_cluster: tuple[Node, Node], body: bytes
) -> None:
    async with httpx.AsyncClient(base_url=door_cluster[1].url) as client:
        answer = await client.post("/search", content=body)
    assert (answer.status_code, answer.json()["error"]) == (400, "bad_text")


@pytest.mark.parametrize("depth", [50, 2000])
async def test_deep_json_nesting_is_a_400_not_a_500(
    door_cluster: tuple[Node, Node], depth: int
) -> None:
    """Finding 11: deep nesting on POST /search and the admin API answered 500 + traceback."""
    core, edge = door_cluster
    body = b'{"id": "n", "q": ' + b"[" * depth + b"]" * depth + b"}"
    async with httpx.AsyncClient(base_url=edge.url) as client:
        answer = await client.post("/search", content=body)
    assert (answer.status_code, answer.json()["error"]) == (400, "bad_json")
    async with admin_client(core) as admin:
        for path in ("/admin/terms/x", "/admin/flags/suggest"):
            answer = await admin.put(path, content=body)
            assert (answer.status_code, answer.json()["error"]) == (400, "bad_json")


# Frames as an attacker writes them: JSON escapes spell what UTF-8 cannot carry.
SURROGATE_FRAMES = [
    ('{"type": "suggest", "id": "\\udfff", "q": "par"}', None, "bad_text"),
    ('{"type": "suggest", "id": "\\udfff", "q": 5}', None, "bad_text"),
    ('{"type": "suggest", "id": 1, "q": "\\udfff"}', 1, "bad_text"),
    ('{"type": "search", "id": "\\udfff-1", "q": "paris"}', None, "bad_text"),
    ('{"type": "ping", "id": "\\ud800"}', None, "bad_text"),
    (
        '{"type": "join", "room": "r", "name": "n", "color": "#000000", "session": "\\udfff"}',
        None,
        "bad_text",
    ),
    ('{"type": "join", "room": "r\\u202e", "name": "n", "color": "#000000"}', None, "bad_text"),
    ('{"type": "suggest", "id": 99999999999999999999999, "q": 5}', None, "bad_field"),
]


@pytest.mark.parametrize("json_codec", [True, False], ids=["json", "msgpack-connection"])
@pytest.mark.parametrize(("frame", "echoed", "code"), SURROGATE_FRAMES)
async def test_hostile_websocket_text_gets_an_error_and_the_connection_stays_usable(
    door_cluster: tuple[Node, Node],
    bystander: ClientConnection,
    json_codec: bool,
    frame: str,
    echoed: object,
    code: str,
) -> None:
    """A lone surrogate in a request id used to kill the connection's writer task (the error
    echoing it could not be encoded) and wedge the connection and the edge's shutdown; in a
    join session it closed the connection with a traceback. On a JSON connection and as a
    JSON text frame on a msgpack connection alike, each now gets an ``error`` whose id is
    encodable, and the same connection is served afterwards."""
    subprotocols = [SUBPROTOCOL_JSON] if json_codec else None
    async with connect(ws_url(door_cluster[1]), subprotocols=subprotocols) as ws:  # type: ignore[arg-type]
        answer = await reply(ws, frame)
        assert isinstance(answer, Error), answer
        assert (answer.id, answer.code) == (echoed, code)
        assert isinstance(await reply(ws, encode(Suggest(id=2, q="par"))), Suggestions)
        search = await reply(ws, encode(Search(id="after-a-bad-frame", q="Paris")))
        assert isinstance(search, SearchAck) and search.status == "committed"
        joined = await reply(ws, encode(Join(room="door", name="Ada", color="#112233")))
        assert isinstance(joined, Presence)
