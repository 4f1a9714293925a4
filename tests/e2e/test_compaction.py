"""Past the compaction threshold the core publishes a new snapshot and edges swap to it."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path

import httpx
import pytest

from tests.helpers.clients import prefix_terms
from tests.helpers.nodes import ADMIN_TOKEN, SMALL_CORPUS, start_core, start_edge
from tests.helpers.waiting import until_equal

pytestmark = pytest.mark.e2e


async def test_edges_swap_to_a_compacted_snapshot_without_losing_writes(tmp_path: Path) -> None:
    """After more changes than LIGHTCONE_COMPACT_AFTER, edges load a new snapshot that holds
    every write, and serve the same answers as before plus the writes."""
    core = start_core(tmp_path, corpus=SMALL_CORPUS, env={"LIGHTCONE_COMPACT_AFTER": "5"})
    # The watcher asks as fast as it can, as many clients would: lift the per-client HTTP rate.
    edge = start_edge(tmp_path, core.url, "syd", env={"LIGHTCONE_HTTP_RATE": "1000000"})
    versions: list[int] = []
    done = asyncio.Event()

    async def watch_versions() -> None:
        async with httpx.AsyncClient() as client:
            while not done.is_set():
                answer = (await client.get(f"{edge.url}/suggest", params={"q": "c"})).json()
                versions.append(answer["version"])

    watcher = asyncio.create_task(watch_versions())
    try:
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
            for n in range(8):
                put = await admin.put(
                    f"{core.url}/admin/terms/Compact {n}", json={"weight": 10 + n}
                )
                assert put.status_code == 200

            async def snapshot_version() -> int:
                status = (await admin.get(f"{core.url}/admin/status")).json()
                return int(status["snapshot_version"] > 1)

            await until_equal(snapshot_version, 1, 10)

        async def loaded() -> bool:
            async with httpx.AsyncClient() as client:
                text = (await client.get(f"{edge.url}/metrics/")).text
            return "lightcone_snapshots_loaded_total 2.0" in text

        await until_equal(loaded, True, 10)

        async def terms(q: str) -> list[str]:
            async with httpx.AsyncClient() as client:
                answer = (await client.get(f"{edge.url}/suggest", params={"q": q})).json()
            return prefix_terms(answer["items"])

        await until_equal(partial(terms, "compact"), [f"Compact {n}" for n in range(7, -1, -1)], 5)
        assert (await terms("sao pa"))[0] == "São Paulo"
        done.set()
        await watcher
        assert versions == sorted(versions), "answers went back in time during compaction"
    finally:
        done.set()
        edge.stop()
        core.stop()
