"""``lightcone core --store postgresql://...`` end to end: real core and edge processes on a
real PostgreSQL. A search is committed there and served; an unreachable store refuses the
start in one line; a store lost at run time answers admin writes 503 ``store_unavailable``
while edges go on serving and keep searches queued, and everything resumes when it is back."""

from __future__ import annotations

import subprocess
import sys
import uuid
from functools import partial
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.helpers.clients import prefix_terms
from tests.helpers.nodes import ADMIN_TOKEN, FAST_LINK, SMALL_CORPUS, Node, start_core, start_edge
from tests.helpers.postgres import Cluster, free_port
from tests.helpers.waiting import eventually, until_equal

pytestmark = pytest.mark.e2e

SERVE_EVERY_SEARCH = {"LIGHTCONE_MIN_SOURCES": "0", "LIGHTCONE_PUBLISH_DELAY_MS": "0"}
"""A searched term is served at once (no distinct sources needed), published at once."""


async def terms(edge: Node, q: str) -> list[str]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{edge.url}/suggest", params={"q": q})
    assert response.status_code == 200, response.text
    return prefix_terms(response.json()["items"])


async def mode(edge: Node) -> str:
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"{edge.url}/suggest", params={"q": "sao pa"})
    return str(answer.json()["mode"])


async def committed(url: str, search_id: str) -> bool:
    db = await asyncpg.connect(url)
    try:
        return bool(await db.fetchval("SELECT count(*) FROM searches WHERE id = $1", search_id))
    finally:
        await db.close()


def on_postgres(tmp: Path, url: str) -> tuple[Node, Node]:
    core = start_core(
        tmp, corpus=SMALL_CORPUS, env={"LIGHTCONE_STORE": url, **SERVE_EVERY_SEARCH, **FAST_LINK}
    )
    try:
        return core, start_edge(tmp, core.url, "syd", env=FAST_LINK)
    except BaseException:
        core.stop()
        raise


async def test_a_search_is_committed_to_postgres_and_served(
    tmp_path: Path, postgres_url: str
) -> None:
    core, edge = on_postgres(tmp_path, postgres_url)
    try:
        search_id = uuid.uuid4().hex
        async with httpx.AsyncClient() as client:
            ack = await client.post(f"{edge.url}/search", json={"id": search_id, "q": "Pgville"})
        assert ack.status_code == 200 and ack.json()["status"] == "committed", ack.text
        assert await committed(postgres_url, search_id)
        await until_equal(partial(terms, edge, "pgvil"), ["Pgville"], 5)
    finally:
        edge.stop()
        core.stop()
    for node in (core, edge):
        assert not node.errors(), node.errors()


def test_an_unreachable_store_refuses_the_start_in_one_line(tmp_path: Path) -> None:
    url = f"postgresql://lightcone:s3cret@127.0.0.1:{free_port()}/lightcone"
    result = subprocess.run(
        [sys.executable, "-m", "shared.cli", "core", "--port", "0", "--store", url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("lightcone core: error: the store postgresql://lightcone:***@127.0.0.1")
    assert "unreachable" in line and "s3cret" not in result.stderr
    assert not (tmp_path / "lightcone-data").exists()  # no SQLite folder made on the way


def test_a_second_core_node_on_the_store_is_refused_in_one_line(
    tmp_path: Path, postgres_url: str
) -> None:
    """Several core nodes on one store need a broker (not in this version): the second
    refuses to start, naming the first, instead of serving diverging data."""
    first = start_core(tmp_path / "a", corpus=SMALL_CORPUS, env={"LIGHTCONE_STORE": postgres_url})
    try:
        result = subprocess.run(
            [sys.executable, "-m", "shared.cli", "core", "--port", "0", "--store", postgres_url],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert result.returncode == 2, result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert "another core node uses the store" in line and "--broker" in line
    finally:
        first.stop()
    assert not first.errors(), first.errors()
    again = start_core(tmp_path / "b", corpus=SMALL_CORPUS, env={"LIGHTCONE_STORE": postgres_url})
    again.stop()  # the first released its lease when it stopped: the store is free


async def test_a_lost_store_holds_writes_and_everything_resumes(
    tmp_path: Path, own_postgres: Cluster
) -> None:
    """PostgreSQL stopped: admin writes 503 store_unavailable, the edge serves (strict reads
    too: the core is alone on its store and vouches for its head) and answers a search
    'queued'. Started again: that search is committed and served, admin writes work,
    with no restart of either node."""
    url = own_postgres.url()
    core, edge = on_postgres(tmp_path, url)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    try:
        async with httpx.AsyncClient(base_url=core.url, headers=headers) as admin:
            flag = await admin.put("/admin/flags/suggest", json={"stale_ok": False})
            assert flag.status_code == 200, flag.text
            await until_equal(partial(mode, edge), "strict", 5)
            own_postgres.stop()
            put = await admin.put("/admin/terms/Lostville", json={"weight": 10})
            assert put.status_code == 503 and put.json()["error"] == "store_unavailable"
            assert await terms(edge, "sao pa") == ["São Paulo"]
            async with httpx.AsyncClient(base_url=edge.url) as client:
                # A node alone on its store vouches for its head: strict reads go on too.
                strict = await client.get("/suggest", params={"q": "sao pa"})
                assert strict.status_code == 200 and strict.json()["mode"] == "strict", strict.text
                ack = await client.post("/search", json={"id": "kept-1", "q": "Queuedville"})
                assert ack.status_code == 202 and ack.json()["status"] == "queued", ack.text
                assert (await client.get("/status")).json()["outbox"] == 1

            own_postgres.start()
            await eventually(partial(committed, url, "kept-1"), 10, "the queued search commits")
            await until_equal(partial(terms, edge, "queuedv"), ["Queuedville"], 5)
            put = await admin.put("/admin/terms/Lostville", json={"weight": 10})
            assert put.status_code == 200, put.text
            await until_equal(partial(terms, edge, "lostv"), ["Lostville"], 5)
    finally:
        edge.stop()
        core.stop()
    for node in (core, edge):  # warnings only: an outage is not an error of ours
        assert not node.errors(), node.errors()
    assert any("searches wait at their edge" in line for line in core.lines)
