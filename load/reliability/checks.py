"""Waiting for a condition with a deadline, and the write promise every scenario checks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx

from load.reliability.clients import Control, Ledger, Writer, http_writer, ws_writer
from load.reliability.cluster import Cluster, edge_state
from load.reliability.run import Run, say

POLL_S = 0.1
"""Between two looks at a condition that has no event to wait on (a node's HTTP answer)."""


async def wait_until(check: Callable[[], Awaitable[bool]], timeout_s: float) -> float | None:
    """Seconds until ``check()`` is true, ``None`` if it is not within ``timeout_s``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(POLL_S)
    return None


async def edges_linked(client: httpx.AsyncClient, cluster: Cluster) -> bool:
    """Every edge says its link to the core is up."""
    states = await asyncio.gather(*(edge_state(client, e) for e in cluster.edges))
    return all(s is not None and s.get("link") == "up" for s in states)


def start_writers(
    cluster: Cluster, ledger: Ledger, control: Control, http_per_edge: int, ws_per_edge: int,
    rate_hz: float,
) -> list[asyncio.Task[None]]:  # fmt: skip
    """``http_per_edge`` HTTP writers and ``ws_per_edge`` websocket writers on every edge."""
    tasks = []
    for edge in cluster.edges:
        for i in range(http_per_edge):
            writer = Writer(f"http-{edge.region}-{i}", ledger, control, rate_hz)
            tasks.append(asyncio.create_task(http_writer(writer, edge.url)))
        for i in range(ws_per_edge):
            writer = Writer(f"ws-{edge.region}-{i}", ledger, control, rate_hz)
            tasks.append(asyncio.create_task(ws_writer(writer, edge.ws_url)))
    return tasks


async def drain(
    run: Run,
    cluster: Cluster,
    control: Control,
    writers: list[asyncio.Task[None]],
    timeout_s: float,
) -> None:
    """No new writes; wait (up to ``timeout_s``) until every writer has an acknowledgement for
    each of its ids and every edge's outbox is empty."""
    say(f"[{run.elapsed()}] no new writes; draining (at most {timeout_s:.0f} s) …")
    control.writing.clear()
    started = time.monotonic()
    _, late = await asyncio.wait(writers, timeout=timeout_s)
    async with httpx.AsyncClient() as client:

        async def outboxes_empty() -> bool:
            states = await asyncio.gather(*(edge_state(client, e) for e in cluster.edges))
            return all(s is not None and s.get("outbox") == 0 for s in states)

        left = max(1.0, timeout_s - (time.monotonic() - started))
        emptied = await wait_until(outboxes_empty, left)
    run.figures["drain_s"] = round(time.monotonic() - started, 2)
    run.figures["writers_still_waiting"] = len(late)
    run.figures["outboxes_emptied"] = emptied is not None


def check_nothing_lost(run: Run, cluster: Cluster, ledger: Ledger) -> None:
    """After the nodes stopped: every id acknowledged ``committed`` or ``queued`` is in the
    core's database."""
    stored = cluster.stored_ids()
    lost_committed = set(ledger.committed) - stored
    lost_queued = ledger.queued - set(ledger.committed) - stored
    run.figures["writes"] = {
        **ledger.summary(),
        "in_database": len(stored & ledger.attempted),
        "lost_committed": len(lost_committed),
        "lost_queued": len(lost_queued),
        "lost_examples": sorted(lost_committed | lost_queued)[:10],
    }
    lost = len(lost_committed) + len(lost_queued)
    run.check(
        "every acknowledged write is in the core's database",
        lost == 0 and len(ledger.acknowledged) > 0,
        f"{len(ledger.acknowledged)} acknowledged ({len(ledger.committed)} committed, "
        f"{len(ledger.queued)} queued) of {len(ledger.attempted)} ids; lost {lost} "
        f"({len(lost_committed)} committed, {len(lost_queued)} queued)",
    )
