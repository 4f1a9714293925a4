"""``lightcone up --store postgres|URL``: the demo's core on PostgreSQL, end to end.

``postgres`` starts a throwaway cluster, the core commits there, and SIGINT stops the
cluster after the nodes and removes its folder; a URL is passed through; both are named in
the status file and the control API's topology without a password.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from tests.e2e.test_up import kill_one, start_up, stop_up, until_ready
from tests.helpers.postgres import Cluster, require_postgres

pytestmark = pytest.mark.e2e


async def search_and_count(topology: dict[str, Any], url: str, search_id: str) -> int:
    """Log a search through the demo's first entry; how many rows with its id ``url`` holds."""
    entry = topology["entries"][0]["url"]
    async with httpx.AsyncClient() as client:
        body = {"id": search_id, "q": "Pgharbour"}
        ack = (await client.post(f"{entry}/search", json=body, timeout=10)).json()
        assert ack["status"] == "committed", ack
        public = (await client.get(f"{topology['control_url']}/topology")).json()
    assert public["store"] == topology["store"]
    db = await asyncpg.connect(url)
    try:
        return int(await db.fetchval("SELECT count(*) FROM searches WHERE id = $1", search_id))
    finally:
        await db.close()


def running(pid: int) -> bool:
    """Whether ``pid`` runs: a zombie does not (the server's parent, once ``pg_ctl`` has
    left, is whatever reaps orphans here, which may be slow to)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def exists(path: str) -> bool:
    return Path(path).exists()


async def test_up_runs_the_core_on_a_throwaway_postgres(tmp_path: Path) -> None:
    require_postgres()
    status_file = tmp_path / "status.json"
    process = await start_up(tmp_path, "--edges", "lhr", "--users", "lhr", "--store", "postgres")
    assert process.stdout is not None
    try:
        lines = await until_ready(process.stdout)
        assert any(line.startswith("[store] postgres  ready in") for line in lines), lines
        topology: dict[str, Any] = json.loads(status_file.read_text())
        store = topology["store"]
        assert store["engine"] == "postgres" and store["throwaway"] is True
        assert urlsplit(store["where"]).hostname == "127.0.0.1"
        assert exists(store["folder"]) and running(store["pid"])
        assert await search_and_count(topology, store["where"], "pg-demo-1") == 1
    finally:
        code, rest = await stop_up(process)
    assert code == 0, rest
    assert "lightcone up: stopped" in rest
    assert not running(store["pid"]) and not exists(store["folder"])
    for node in topology["nodes"]:
        with pytest.raises(ProcessLookupError):
            os.kill(node["pid"], 0)


async def test_up_passes_a_store_url_through(tmp_path: Path, postgres: Cluster) -> None:
    """The URL reaches the core as given; the demo names it without its password (the test
    cluster trusts loopback, so any password is accepted)."""
    url = postgres.new_database("up")
    with_password = url.replace("postgres@", "postgres:s3cret@")
    status_file = tmp_path / "status.json"
    process = await start_up(tmp_path, "--edges", "lhr", "--users", "lhr", "--store", with_password)
    assert process.stdout is not None
    try:
        lines = await until_ready(process.stdout)
        assert "s3cret" not in "".join(lines)
        text = status_file.read_text()
        assert "s3cret" not in text
        topology: dict[str, Any] = json.loads(text)
        assert topology["store"] == {
            "engine": "postgres",
            "where": url.replace("postgres@", "postgres:***@"),
        }
        assert await search_and_count(topology, url, "pg-demo-2") == 1
    finally:
        code, rest = await stop_up(process)
    assert code == 0, rest
    assert "s3cret" not in rest


async def test_up_refuses_an_unknown_store(tmp_path: Path) -> None:
    process = await start_up(tmp_path, "--store", "mysql://db/x")
    assert process.stdout is not None
    async with asyncio.timeout(30):
        rest = (await process.stdout.read()).decode()
        assert await process.wait() == 2
    assert "lightcone up: --store must be sqlite, postgres or a postgresql:// URL" in rest


async def test_a_crashed_node_still_removes_the_throwaway_postgres(tmp_path: Path) -> None:
    require_postgres()
    process = await start_up(tmp_path, "--edges", "lhr", "--users", "lhr", "--store", "postgres")
    topology, code, rest = await kill_one(process, tmp_path / "status.json", "core", "iad")
    assert code == 1 and "core-1 exited with -9; stopping the others" in rest
    store = topology["store"]
    assert not running(store["pid"]) and not exists(store["folder"])
