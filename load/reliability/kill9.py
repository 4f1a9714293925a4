"""``kill9``: SIGKILL the core under write load, restart it on the same database, lose nothing.

One core and two edges (``syd``, ``lhr``). On each edge, ``--http-writers`` clients log
searches with ``POST /search`` and ``--ws-writers`` over the websocket, each at ``--rate``
per second, every one with a fresh id; an id with no acknowledgement is sent again. After
``--warmup`` seconds the core is killed with SIGKILL (only the PID this run started), stays
down ``--down`` seconds (the edges keep accepting searches as ``queued``), and is started
again on the same data dir and port. That ``--kills`` times, ``--between`` seconds apart.
Then writing stops, every writer gets its last acknowledgements, the outboxes empty, the
nodes stop, and the run reads the core's SQLite file.

Promises: every id ever acknowledged ``committed`` or ``queued`` is in the database; every
edge is linked again after each restart. Figures: writes attempted / acknowledged /
committed / queued / lost; per kill, the core's restart time (spawn → ready) and the time
from the kill to every edge linked and to the first ``committed`` after the restart.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from load.reliability.checks import (
    check_nothing_lost,
    drain,
    edges_linked,
    start_writers,
    wait_until,
)
from load.reliability.clients import Control, Ledger
from load.reliability.cluster import Cluster
from load.reliability.run import Run, progress, say

RELINK_TIMEOUT_S = 60.0
"""Longest wait for every edge to be linked to a restarted core (else: an edge is stuck)."""
REGIONS = ("syd", "lhr")


async def run_kill9(run: Run, cluster: Cluster, opts: Any) -> None:
    core_s = await asyncio.to_thread(cluster.start_core)
    for region in REGIONS:
        await cluster.start_edge(region)
    say(f"[{run.elapsed()}] core ready in {core_s:.1f} s, edges {', '.join(REGIONS)} ready")
    ledger, control = Ledger(), Control()
    writers = start_writers(cluster, ledger, control, opts.http_writers, opts.ws_writers, opts.rate)
    kills: list[dict[str, Any]] = []
    async with progress(run, ledger.line, opts.progress_s), httpx.AsyncClient() as client:
        await asyncio.sleep(opts.warmup)
        for k in range(1, opts.kills + 1):
            kills.append(await _kill_and_restart(run, cluster, client, ledger, opts, k))
            await asyncio.sleep(opts.between)
        await drain(run, cluster, control, writers, opts.drain)
        control.stop.set()
        await asyncio.gather(*writers, return_exceptions=True)
    await cluster.close()
    run.figures["kills"] = kills
    recovered = [k["recovered_s"] for k in kills if k["recovered_s"] is not None]
    run.figures["recovered_s_max"] = max(recovered, default=None)
    check_nothing_lost(run, cluster, ledger)
    run.check(
        "every edge links to the restarted core and commits again",
        len(recovered) == len(kills),
        ", ".join(
            f"kill {k['kill']}: restart {k['restart_s']:.2f} s, recovered "
            + ("NEVER" if k["recovered_s"] is None else f"{k['recovered_s']:.2f} s")
            + " after the kill"
            for k in kills
        ),
    )


async def _kill_and_restart(
    run: Run, cluster: Cluster, client: httpx.AsyncClient, ledger: Ledger, opts: Any, k: int
) -> dict[str, Any]:
    assert cluster.core is not None
    say(f"[{run.elapsed()}] kill {k}: SIGKILL core (pid {cluster.core.pid}); {ledger.line()}")
    killed_at = time.monotonic()
    cluster.kill_core()
    await asyncio.sleep(opts.down)
    restart_s = await asyncio.to_thread(cluster.start_core)
    restarted_at = time.monotonic()
    say(f"[{run.elapsed()}] kill {k}: core restarted on the same data dir in {restart_s:.2f} s")
    linked = await wait_until(lambda: edges_linked(client, cluster), RELINK_TIMEOUT_S)

    async def committed_again() -> bool:
        return ledger.first_commit_after(restarted_at) is not None

    committed = await wait_until(committed_again, RELINK_TIMEOUT_S)
    record: dict[str, Any] = {
        "kill": k,
        "down_s": opts.down,
        "restart_s": round(restart_s, 3),
        "linked_s": None if linked is None else round(restarted_at - killed_at + linked, 3),
        "first_commit_s": None,
        "recovered_s": None,
    }
    first = ledger.first_commit_after(restarted_at)
    if first is not None:
        record["first_commit_s"] = round(restarted_at - killed_at + first, 3)
    if linked is not None and committed is not None:
        record["recovered_s"] = max(record["linked_s"], record["first_commit_s"] or 0.0)
    say(
        f"[{run.elapsed()}] kill {k}: edges linked {record['linked_s']} s and first commit "
        f"{record['first_commit_s']} s after the kill"
    )
    return record


def add_arguments(parser: Any) -> None:
    parser.add_argument("--kills", type=int, default=3, help="times the core is killed [3]")
    parser.add_argument("--warmup", type=float, default=5.0, help="load before the first kill [5]")
    parser.add_argument("--down", type=float, default=3.0, help="seconds the core stays down [3]")
    parser.add_argument("--between", type=float, default=5.0, help="load between kills [5]")
    parser.add_argument("--http-writers", type=int, default=3, help="HTTP writers per edge [3]")
    parser.add_argument("--ws-writers", type=int, default=1, help="websocket writers per edge [1]")
    parser.add_argument("--rate", type=float, default=10.0, help="searches/s per writer [10]")
    parser.add_argument("--drain", type=float, default=60.0, help="longest drain at the end [60]")
