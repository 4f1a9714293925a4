"""``link-cuts``: cut and heal the edge↔core links again and again under mixed load.

One core and two edges (``syd``, ``lhr``), each linked to the core through a
:class:`deploy.local.latency.LatencyProxy` with no delay. A cut holds every byte both ways,
as a real partition does; each edge notices through its own heartbeat timeout. On each edge: an HTTP
and a websocket writer (searches, resent until acknowledged), an HTTP and a websocket reader
of suggestions (the websocket one hangs up with a request in flight every fourth time), and
one cursor member moving in a room shared across both edges.

``--cycles`` cycles of ``--cut`` seconds cut, then ``--heal`` seconds healed; the cut takes
``syd``'s link, then ``lhr``'s, then both, in turn. The first half of the cycles runs with
suggestions tolerant, the second half strict (flipped through the admin API between cycles).
After each heal the run times how long until both edges are linked, a read is fresh (or a
strict read answered), and cursor moves cross between the edges again.

Promises: nothing acknowledged is lost; tolerant reads are answered during cuts (marked
stale once older than the edge's threshold); strict reads during cuts fail fast (no slower
than the strict deadline plus ``FAIL_FAST_SLACK_S``); after every heal everything recovers
within ``RECOVER_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from load.reliability.checks import (
    check_nothing_lost,
    drain,
    edges_linked,
    start_writers,
    wait_until,
)
from load.reliability.clients import (
    ANSWERED,
    Control,
    Cursors,
    Ledger,
    Reads,
    cursor_member,
    http_reader,
    ws_reader,
)
from load.reliability.cluster import Cluster, Node, get_json, set_stale_ok
from load.reliability.run import Run, progress, say

REGIONS = ("syd", "lhr")
RECOVER_TIMEOUT_S = 30.0
"""Longest wait, after a heal, for links, reads and cursor relay (else: something is stuck)."""
FAIL_FAST_SLACK_S = 0.5
"""What a refused strict read may take beyond the edge's strict deadline."""
STRICT_TIMEOUT_MS = 1500
"""The edge's default ``LIGHTCONE_STRICT_TIMEOUT_MS`` (``--node-env`` may change it)."""
READ_RATE_HZ = 10.0
CURSOR_RATE_HZ = 10.0


class Phase:
    """The suggestion mode the run has set (``switching`` while edges follow a flip)."""

    def __init__(self) -> None:
        self.mode = "tolerant"

    def context(self, edge: Node) -> Callable[[], tuple[str, bool]]:
        proxy = edge.proxy
        assert proxy is not None
        return lambda: (self.mode, proxy.is_cut)


async def run_link_cuts(run: Run, cluster: Cluster, opts: Any) -> None:
    await asyncio.to_thread(cluster.start_core)
    for region in REGIONS:
        await cluster.start_edge(region, proxied=True)
    say(f"[{run.elapsed()}] core and edges {', '.join(REGIONS)} ready (links through proxies)")
    ledger, control, reads, cursors, phase = Ledger(), Control(), Reads(), Cursors(), Phase()
    writers = start_writers(cluster, ledger, control, 1, 1, opts.rate)
    others = []
    for index, edge in enumerate(cluster.edges):
        context = phase.context(edge)
        others += [
            http_reader(edge.url, edge.region, reads, control, READ_RATE_HZ, context),
            ws_reader(edge.ws_url, edge.region, reads, control, READ_RATE_HZ, context),
            cursor_member(edge.ws_url, index, cursors, control, CURSOR_RATE_HZ),
        ]
    tasks = [asyncio.create_task(c) for c in others]

    def line() -> str:
        cut = [e.region for e in cluster.edges if e.proxy is not None and e.proxy.is_cut]
        return (
            f"{phase.mode}, cut: {','.join(cut) or '-'} | {ledger.line()} | {reads.line()} | "
            f"{cursors.line()}"
        )

    cycles: list[dict[str, Any]] = []
    async with progress(run, line, opts.progress_s), httpx.AsyncClient() as client:
        await asyncio.sleep(opts.warmup)
        for n in range(opts.cycles):
            if n == (opts.cycles + 1) // 2:
                await _flip(run, cluster, client, phase, "strict")
            cycles.append(await _cycle(run, cluster, client, phase, cursors, opts, n))
        await drain(run, cluster, control, writers, opts.drain)
        control.stop.set()
        await asyncio.gather(*writers, *tasks, return_exceptions=True)
    await cluster.close()
    run.figures["cycles"] = cycles
    run.figures["reads"] = reads.summary()
    run.figures["cursor_moves_sent"] = cursors.moves_sent
    run.figures["cursor_reconnects"] = cursors.reconnects
    check_nothing_lost(run, cluster, ledger)
    _check_reads(run, reads, cluster.env)
    stuck = [c for c in cycles if any(v is None for v in c["recovered_s"].values())]
    worst = {
        what: max((c["recovered_s"][what] or 0.0 for c in cycles), default=0.0)
        for what in ("linked", "reads", "cursors")
    }
    run.check(
        f"everything recovers within {RECOVER_TIMEOUT_S:.0f} s of every heal",
        not stuck,
        f"{len(cycles) - len(stuck)}/{len(cycles)} cycles recovered; slowest: links "
        f"{worst['linked']:.2f} s, reads {worst['reads']:.2f} s, cursor relay "
        f"{worst['cursors']:.2f} s"
        + "".join(
            f"; cycle {c['cycle']} ({c['mode']}, cut {c['cut']}) STUCK {c['reads_not_served']}"
            for c in stuck
        ),
    )


async def _flip(
    run: Run, cluster: Cluster, client: httpx.AsyncClient, phase: Phase, mode: str
) -> None:
    assert cluster.core is not None
    phase.mode = "switching"
    await set_stale_ok(client, cluster.core, "suggest", mode == "tolerant")

    async def followed() -> bool:
        answers = [await get_json(client, f"{e.url}/suggest?q=pa") for e in cluster.edges]
        return all(a is not None and a.get("mode") == mode for a in answers)

    took = await wait_until(followed, RECOVER_TIMEOUT_S)
    phase.mode = mode
    after = "NOT within the deadline" if took is None else f"in {took:.2f} s"
    say(f"[{run.elapsed()}] suggestions now {mode} (edges followed {after})")


async def _cycle(
    run: Run,
    cluster: Cluster,
    client: httpx.AsyncClient,
    phase: Phase,
    cursors: Cursors,
    opts: Any,
    n: int,
) -> dict[str, Any]:
    """Cut one link, the other, or both (in turn), heal, and time the recovery."""
    targets = [cluster.edges[n % 3]] if n % 3 < len(cluster.edges) else cluster.edges
    names = "+".join(e.region for e in targets)
    say(f"[{run.elapsed()}] cycle {n + 1}/{opts.cycles} ({phase.mode}): cut {names}")
    for edge in targets:
        assert edge.proxy is not None
        edge.proxy.cut()
    await asyncio.sleep(opts.cut)
    for edge in targets:
        assert edge.proxy is not None
        edge.proxy.heal()
    healed = time.monotonic()
    mode = phase.mode

    last_refusal: dict[str, str] = {}

    async def reads_served() -> bool:
        served = True
        for edge in cluster.edges:
            answer = await get_json(client, f"{edge.url}/suggest?q=pa")
            if answer is None or answer["_status"] != 200 or answer.get("stale"):
                what = "no answer" if answer is None else answer.get("message", "stale")
                last_refusal[edge.region] = f"{answer and answer['_status']} {what}"
                served = False
            else:
                last_refusal.pop(edge.region, None)
        return served

    async def relayed() -> bool:
        seen = cursors.last_seen
        return all(seen.get(i, 0.0) > healed for i in range(len(cluster.edges)))

    linked, served, moved = await asyncio.gather(
        wait_until(lambda: edges_linked(client, cluster), RECOVER_TIMEOUT_S),
        wait_until(reads_served, RECOVER_TIMEOUT_S),
        wait_until(relayed, RECOVER_TIMEOUT_S),
    )
    recovered = {"linked": linked, "reads": served, "cursors": moved}
    say(
        f"[{run.elapsed()}] cycle {n + 1}: healed; "
        + ", ".join(f"{k} {'STUCK' if v is None else f'{v:.2f} s'}" for k, v in recovered.items())
    )
    await asyncio.sleep(max(0.0, opts.heal - (time.monotonic() - healed)))
    return {
        "cycle": n + 1,
        "mode": mode,
        "cut": names,
        "recovered_s": {k: None if v is None else round(v, 3) for k, v in recovered.items()},
        "reads_not_served": last_refusal if served is None else {},
    }


def _check_reads(run: Run, reads: Reads, env: Mapping[str, str]) -> None:
    answered = reads.count(mode="tolerant", cut=True, ok=True)
    refused = reads.count(mode="tolerant", cut=True, ok=False)
    stale = sum(n for k, n in reads.outcomes.items() if k[1:] == ("tolerant", True, "stale"))
    run.check(
        "tolerant reads are answered during cuts",
        answered > 0 and refused == 0,
        f"{answered} answered during cuts ({stale} marked stale), {refused} refused",
    )
    strict_ms = int(env.get("LIGHTCONE_STRICT_TIMEOUT_MS", STRICT_TIMEOUT_MS))
    bound_s = strict_ms / 1000 + FAIL_FAST_SLACK_S
    refusals = [
        (outcome, t)
        for (_, mode, cut, outcome), times in reads.latencies.items()
        if mode == "strict" and cut and outcome not in ANSWERED
        for t in times
    ]
    slow = [t for _, t in refusals if t > bound_s]
    codes = sorted({o for o, _ in refusals})
    times = sorted(t for _, t in refusals)
    spread = (
        f"p50 {times[len(times) // 2] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms"
        if times
        else "none"
    )
    run.check(
        f"strict reads during cuts fail fast (≤ {bound_s:.1f} s)",
        bool(refusals) and not slow,
        f"{len(refusals)} refused during cuts ({', '.join(codes)}; {spread}), "
        f"{len(slow)} slower than the bound; "
        f"{reads.count(mode='strict', cut=False, ok=True)} answered on uncut links",
    )


def add_arguments(parser: Any) -> None:
    parser.add_argument("--cycles", type=int, default=6, help="cut/heal cycles [6]")
    parser.add_argument("--cut", type=float, default=8.0, help="seconds each cut lasts [8]")
    parser.add_argument("--heal", type=float, default=6.0, help="seconds healed between [6]")
    parser.add_argument("--warmup", type=float, default=3.0, help="load before the first cut [3]")
    parser.add_argument("--rate", type=float, default=5.0, help="searches/s per writer [5]")
    parser.add_argument("--drain", type=float, default=60.0, help="longest drain at the end [60]")
