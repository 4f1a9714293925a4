"""Link cut and healed, a held-back stream, an edge killed: what each mode promises."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.clients import prefix_terms
from tests.helpers.nodes import ADMIN_TOKEN, FAST_LINK, SMALL_CORPUS, Node, start_core, start_edge
from tests.helpers.proxy_thread import ProxyThread
from tests.helpers.waiting import eventually, until_equal

pytestmark = pytest.mark.e2e


EDGE_ENV = {
    **FAST_LINK,
    "LIGHTCONE_STALE_AFTER_MS": "500",
    "LIGHTCONE_STRICT_TIMEOUT_MS": "600",
    "LIGHTCONE_BREAKER_FAILURES": "2",
    "LIGHTCONE_BREAKER_RESET_S": "1.0",
    "LIGHTCONE_WRITE_TIMEOUT_MS": "500",
}


@dataclass
class Linked:
    core: Node
    edge: Node
    proxy: ProxyThread

    def db(self) -> Path:
        return Path(self.core.args[self.core.args.index("--data-dir") + 1]) / "lightcone.db"


@pytest.fixture
def linked(tmp_path: Path) -> Iterator[Linked]:
    """A core, and an edge whose link to it runs through a proxy the test can cut."""
    core = start_core(tmp_path, corpus=SMALL_CORPUS, env=FAST_LINK)
    proxy = ProxyThread("127.0.0.1", int(core.url.rsplit(":", 1)[1]), name="link")
    try:
        edge = start_edge(tmp_path, proxy.url, "syd", env=EDGE_ENV)
    except BaseException:
        proxy.close()
        core.stop()
        raise
    linked = Linked(core, edge, proxy)
    try:
        yield linked
    finally:
        linked.edge.stop()
        linked.proxy.close()
        linked.core.stop()  # the test may have replaced it with a restarted core
    for node in (linked.edge, linked.core):
        assert not node.errors(), node.errors()


async def get(url: str, **params: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(url, params=params)


async def set_flag(core: Node, stale_ok: bool) -> None:
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
        response = await client.put(f"{core.url}/admin/flags/suggest", json={"stale_ok": stale_ok})
    assert response.status_code == 200


async def mode(edge: Node) -> str:
    return str((await get(f"{edge.url}/suggest", q="x")).json()["mode"])


def count(db: Path, ids: list[str]) -> int:
    with sqlite3.connect(db) as conn:
        marks = ",".join("?" * len(ids))
        row = conn.execute(f"SELECT count(*) FROM searches WHERE id IN ({marks})", ids).fetchone()
    return int(row[0])


async def test_tolerant_reads_survive_a_cut_and_searches_commit_once_after(linked: Linked) -> None:
    """During a cut, reads answer (stale past the threshold) and searches queue; after heal
    every queued search is committed exactly once."""
    url = linked.edge.url
    before = (await get(f"{url}/suggest", q="tok")).json()
    assert before["stale"] is False and before["items"][0]["term"] == "Tokyo"

    linked.proxy.cut()

    stale = await eventually(partial(_stale, url), 5, "reads marked stale")
    assert stale["age_ms"] > 500 and stale["items"][0]["term"] == "Tokyo"

    ids = [uuid.uuid4().hex for _ in range(20)]
    async with httpx.AsyncClient(timeout=10) as client:
        acks = await asyncio.gather(
            *(client.post(f"{url}/search", json={"id": i, "q": "Partition Town"}) for i in ids)
        )
    assert {a.status_code for a in acks} == {202}
    assert {a.json()["status"] for a in acks} == {"queued"}
    assert count(linked.db(), ids) == 0

    linked.proxy.heal()
    await until_equal(partial(asyncio.to_thread, count, linked.db(), ids), 20, 10)
    fresh = await eventually(partial(_not_stale, url), 5, "fresh again after heal")
    assert fresh["items"][0]["term"] == "Tokyo"

    async with httpx.AsyncClient(timeout=10) as client:
        again = await client.post(f"{url}/search", json={"id": ids[0], "q": "Partition Town"})
    assert again.json()["status"] == "committed"
    with sqlite3.connect(linked.db()) as conn:
        row = conn.execute("SELECT searches FROM terms WHERE key = 'partitiontown'").fetchone()
    assert row[0] == 20
    assert count(linked.db(), ids) == 20


async def _not_stale(url: str) -> dict[str, Any] | None:
    answer: dict[str, Any] = (await get(f"{url}/suggest", q="tok")).json()
    return None if answer["stale"] else answer


async def test_strict_reads_fail_fast_during_a_cut(linked: Linked) -> None:
    """Strict reads fail within the deadline, then at once once the breaker opens, and work
    again after heal."""
    url = linked.edge.url
    await set_flag(linked.core, False)
    await until_equal(partial(mode, linked.edge), "strict", 5)
    assert (await get(f"{url}/suggest", q="par")).status_code == 200

    linked.proxy.cut()
    timings: list[tuple[int, str, float]] = []
    for _ in range(4):
        started = time.monotonic()
        response = await get(f"{url}/suggest", q="par")
        timings.append((response.status_code, response.json()["error"], time.monotonic() - started))
    assert {status for status, _, _ in timings} == {503}
    assert all(elapsed < 0.6 + 0.5 for _, _, elapsed in timings), timings
    status, code, elapsed = timings[-1]
    assert code == "core_unreachable" and elapsed < 0.1, timings

    linked.proxy.heal()

    async def served() -> bool:
        return (await get(f"{url}/suggest", q="par")).status_code == 200

    await eventually(served, 10, "strict reads served after heal")


async def test_strict_read_sees_a_write_the_stream_has_not_delivered(tmp_path: Path) -> None:
    """With deltas held back at the core, a tolerant read misses a fresh write, a read with
    min_version waits for it, and a strict read sees it."""
    core = start_core(tmp_path, corpus=SMALL_CORPUS, env={"LIGHTCONE_PUBLISH_DELAY_MS": "60000"})
    edge = start_edge(tmp_path, core.url, "syd")
    try:
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
            put = await admin.put(f"{core.url}/admin/terms/Held Back", json={"weight": 99})
            version = put.json()["version"]
            tolerant = (await get(f"{edge.url}/suggest", q="held")).json()
            assert prefix_terms(tolerant["items"]) == [] and tolerant["version"] < version

            ryw = (await get(f"{edge.url}/suggest", q="held", min_version=version)).json()
            assert ryw["version"] >= version and ryw["mode"] == "tolerant"
            assert ryw["items"][0]["term"] == "Held Back"

            await admin.put(f"{core.url}/admin/terms/Held Again", json={"weight": 98})
            await admin.put(f"{core.url}/admin/flags/suggest", json={"stale_ok": False})
        await until_equal(partial(mode, edge), "strict", 5)
        strict = (await get(f"{edge.url}/suggest", q="held again")).json()
        assert prefix_terms(strict["items"]) == ["Held Again"]
    finally:
        edge.stop()
        core.stop()


async def test_killed_edge_restarts_from_the_core_while_the_other_serves(tmp_path: Path) -> None:
    """An edge killed with SIGKILL is ready again from the core; the other answers all along."""
    core = start_core(tmp_path, corpus=SMALL_CORPUS)
    syd = start_edge(tmp_path, core.url, "syd")
    # The poller asks as fast as it can, as many clients would: lift the per-client HTTP rate.
    lhr = start_edge(tmp_path, core.url, "lhr", env={"LIGHTCONE_HTTP_RATE": "1000000"})
    statuses: list[int] = []
    done = asyncio.Event()

    async def keep_asking() -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            while not done.is_set():
                statuses.append(
                    (await client.get(f"{lhr.url}/suggest", params={"q": "a"})).status_code
                )

    poller = asyncio.create_task(keep_asking())
    restarted = None
    try:
        syd.kill()
        restarted = await asyncio.to_thread(start_edge, tmp_path, core.url, "syd")
        answer = (await get(f"{restarted.url}/suggest", q="sao pa")).json()
        assert answer["items"][0]["term"] == "São Paulo"
    finally:
        done.set()
        await poller
        for node in (restarted, lhr, core):
            if node is not None:
                node.stop()
    assert statuses and set(statuses) == {200}


async def test_core_down_and_back_commits_queued_searches_once(linked: Linked) -> None:
    """With the core killed, the edge serves stale reads and queues searches; a restarted core
    (same data) receives every queued search exactly once."""
    url = linked.edge.url
    linked.core.kill()
    stale = await eventually(partial(_stale, url), 5, "stale while the core is down")
    assert stale["items"][0]["term"] == "Tokyo"
    ids = [uuid.uuid4().hex for _ in range(10)]
    async with httpx.AsyncClient(timeout=10) as client:
        for search_id in ids:
            ack = await client.post(f"{url}/search", json={"id": search_id, "q": "Downtime"})
            assert ack.json()["status"] == "queued"
    data_dir = Path(linked.core.args[linked.core.args.index("--data-dir") + 1])
    core = await asyncio.to_thread(start_core, data_dir.parent, corpus=SMALL_CORPUS, env=FAST_LINK)
    linked.core = core
    linked.proxy.retarget(int(core.url.rsplit(":", 1)[1]))
    await until_equal(partial(asyncio.to_thread, count, linked.db(), ids), 10, 10)
    await eventually(partial(_not_stale, url), 5, "fresh after the core is back")


async def _stale(url: str) -> dict[str, Any] | None:
    answer: dict[str, Any] = (await get(f"{url}/suggest", q="tok")).json()
    return answer if answer["stale"] else None


async def test_a_core_on_a_fresh_database_resends_everything(
    linked: Linked, tmp_path: Path
) -> None:
    """Versions only compare within one database: an edge whose version matches the head of
    a core restarted on a new database still gets that database's snapshot."""
    linked.core.kill()
    corpus = tmp_path / "other.tsv"
    corpus.write_text("Elsewhere\t5\n", encoding="utf-8")
    fresh = tmp_path / "fresh"
    core = await asyncio.to_thread(start_core, fresh, corpus=corpus, env=FAST_LINK)
    linked.core = core
    linked.proxy.retarget(int(core.url.rsplit(":", 1)[1]))

    async def top(q: str) -> list[str]:
        answer = (await get(f"{linked.edge.url}/suggest", q=q)).json()
        return prefix_terms(answer["items"])

    await until_equal(partial(top, "else"), ["Elsewhere"], 10)
    assert await top("tok") == []
