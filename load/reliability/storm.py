"""``storm``: restart the core under ``--edges`` edges (20) and time the reconnect storm.

``--edges`` edges linked straight to one core. The core is stopped (SIGTERM, or SIGKILL with
``--kill``) and started again on the same data dir and port, ``--restarts`` times. Right
after each restart the run writes one term through the admin API, so an edge is *current*
only once it has relinked and received that delta: its ``/status`` says the link is up and
its version equals the core's. Meanwhile the core's RSS and CPU are sampled every
``SAMPLE_S``.

Promise: every edge is back and current within ``--deadline`` seconds of each restart (none
stuck). Figures per restart: the core's restart time (spawn → ready), the time from the
stop to the first, median and last edge current, and the core's peak RSS and its CPU (seconds,
and share of one CPU) from ready to the last edge current.
"""

from __future__ import annotations

import asyncio
import functools
import statistics
import time
from typing import Any

import httpx

from load.machine import status_kb
from load.reliability.checks import wait_until
from load.reliability.cluster import (
    Cluster,
    Node,
    admin_put_term,
    core_version,
    edge_state,
    get_json,
)
from load.reliability.run import Run, Samples, progress, say

SAMPLE_S = 0.2
"""Between two samples of the core's RSS and CPU during a storm."""
START_BATCH = 4
"""Edges started at once before the storm (their cold starts share the machine)."""


async def run_storm(run: Run, cluster: Cluster, opts: Any) -> None:
    core_s = await asyncio.to_thread(cluster.start_core)
    say(f"[{run.elapsed()}] core ready in {core_s:.1f} s; starting {opts.edges} edges …")
    for first in range(0, opts.edges, START_BATCH):
        batch = range(first, min(opts.edges, first + START_BATCH))
        await asyncio.gather(*(cluster.start_edge(f"e{i + 1:02d}") for i in batch))
    say(f"[{run.elapsed()}] {len(cluster.edges)} edges ready")
    restarts = []
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=200)) as client:
        for r in range(1, opts.restarts + 1):
            restarts.append(await _storm(run, cluster, client, opts, r))
        finals = await asyncio.gather(*(get_json(client, f"{e.url}/readyz") for e in cluster.edges))
    run.figures["edges"] = opts.edges
    run.figures["restarts"] = restarts
    back = [s["all_current_s"] for s in restarts if s["all_current_s"] is not None]
    if back:
        run.figures["all_current_s_median"] = round(statistics.median(back), 3)
    stuck = [s for s in restarts if s["stuck"]]
    run.check(
        f"all {opts.edges} edges back and current within {opts.deadline:.0f} s of each restart",
        not stuck and all(f is not None and f["_status"] == 200 for f in finals),
        "; ".join(
            f"restart {s['restart']}: core ready {s['core_restart_s']:.2f} s, all current "
            + (
                f"{s['all_current_s']:.2f} s after the stop"
                if s["all_current_s"] is not None
                else f"NEVER ({len(s['stuck'])} stuck: {', '.join(s['stuck'][:5])})"
            )
            + f", core peak RSS {s['core_peak_rss_mb']} MB, CPU {s['core_cpu_pct']}%"
            for s in restarts
        ),
    )


async def _storm(
    run: Run, cluster: Cluster, client: httpx.AsyncClient, opts: Any, r: int
) -> dict[str, Any]:
    assert cluster.core is not None
    how = "SIGKILL" if opts.kill else "SIGTERM"
    say(f"[{run.elapsed()}] restart {r}/{opts.restarts}: {how} core (pid {cluster.core.pid})")
    stopped_at = time.monotonic()
    if opts.kill:
        cluster.kill_core()
    else:
        await asyncio.to_thread(cluster.stop_core)
    restart_s = await asyncio.to_thread(cluster.start_core)
    core = cluster.core
    ready_at = time.monotonic()
    cpu0 = core.cpu_s() or 0.0
    samples = Samples()
    sampler = asyncio.create_task(samples.every(lambda: [core], SAMPLE_S))
    version = await admin_put_term(client, core, f"Storm Test {r}", 1000 + r)
    current_at: dict[str, float] = {}

    async def current(edge: Node) -> bool:
        state = await edge_state(client, edge)
        if state is None or state.get("link") != "up" or state.get("version") != version:
            return False
        current_at.setdefault(edge.region, time.monotonic() - stopped_at)
        return True

    def line() -> str:
        return f"restart {r}: {len(current_at)}/{len(cluster.edges)} edges current"

    async with progress(run, line, opts.progress_s):
        await asyncio.gather(
            *(wait_until(functools.partial(current, e), opts.deadline) for e in cluster.edges)
        )
    storm_s = time.monotonic() - ready_at
    cpu = ((core.cpu_s() or cpu0) - cpu0) / storm_s if storm_s > 0 else 0.0
    sampler.cancel()
    peak_kb = max((kb for _, kb in samples.rss_kb.get(core.child.name, [])), default=0)
    try:
        hwm_kb = status_kb(core.pid, "VmHWM")
    except (OSError, LookupError):
        hwm_kb = 0
    head = await core_version(client, core)
    times = sorted(current_at.values())
    record = {
        "restart": r,
        "signal": how,
        "core_restart_s": round(restart_s, 3),
        "version": version,
        "core_version_after": head,
        "all_current_s": round(times[-1], 3) if len(times) == len(cluster.edges) else None,
        "first_current_s": round(times[0], 3) if times else None,
        "median_current_s": round(statistics.median(times), 3) if times else None,
        "stuck": sorted(e.region for e in cluster.edges if e.region not in current_at),
        "core_peak_rss_mb": round(peak_kb / 1024, 1),
        "core_vmhwm_mb": round(hwm_kb / 1024, 1),
        "core_cpu_pct": round(cpu * 100, 1),
        "core_cpu_s": round(cpu * storm_s, 3),
        "storm_window_s": round(storm_s, 3),
    }
    say(
        f"[{run.elapsed()}] restart {r}: core ready in {restart_s:.2f} s; edges current after "
        f"{record['first_current_s']}–{record['all_current_s']} s (from the stop); core peak "
        f"RSS {record['core_peak_rss_mb']} MB, CPU {record['core_cpu_pct']}% over "
        f"{storm_s:.1f} s"
    )
    return record


def add_arguments(parser: Any) -> None:
    parser.add_argument("--edges", type=int, default=20, help="edges linked to the core [20]")
    parser.add_argument("--restarts", type=int, default=3, help="core restarts [3]")
    parser.add_argument("--kill", action="store_true", help="SIGKILL the core, not SIGTERM")
    parser.add_argument(
        "--deadline", type=float, default=60.0, help="longest wait for every edge [60]"
    )
