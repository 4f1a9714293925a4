"""``soak``: ``--minutes`` (10) of mixed load and periodic link cuts; RSS of every node in a band.

One core and two edges (``syd``, ``lhr``), each linked through a proxy with no delay. On each
edge: an HTTP and a websocket writer (``--rate`` searches/s each), an HTTP and a websocket
reader of suggestions (``READ_RATE_HZ`` each), and ``CURSORS_PER_EDGE`` members moving in one
room shared across the edges, all moving on to a new room every ``ROOM_EVERY_S``. Every
``--cut-every`` seconds one edge's link (in turn) is cut for ``--cut`` seconds. Every
``--sample`` seconds the RSS of every node is read from ``/proc/PID/status``.

Promises: every read is answered (stale during cuts); nothing acknowledged is lost; after
the warm-up (``--warmup``, by default 2 minutes or 40 % of a shorter run), every node's RSS
stays within ±``BAND`` of its level (the median of its samples over the first
``LEVEL_WINDOW_S`` after the warm-up). Figures: per node,
the level, min, max and last RSS and its extremes relative to the level; the writes; a plot,
``soak.png`` (``--publish`` copies it to ``docs/reliability/``).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

from load.reliability.checks import check_nothing_lost, drain, start_writers
from load.reliability.clients import (
    Control,
    Cursors,
    Ledger,
    Reads,
    cursor_member,
    http_reader,
    ws_reader,
)
from load.reliability.cluster import Cluster
from load.reliability.run import Run, Samples, progress, say

REGIONS = ("syd", "lhr")
BAND = 0.10
"""How far (either way) a node's RSS may move from its level after the warm-up."""
LEVEL_WINDOW_S = 30.0
"""The level is the median RSS over this long after the warm-up."""
READ_RATE_HZ = 5.0
CURSORS_PER_EDGE = 2
CURSOR_RATE_HZ = 10.0
ROOM_EVERY_S = 30.0
"""Members move on to a new room this often (rooms come and go, as documents do)."""
WARMUP_SHARE = 0.4
"""Of a run shorter than 5 minutes, the part that is warm-up (when ``--warmup`` is not given)."""


async def run_soak(run: Run, cluster: Cluster, opts: Any) -> None:
    total_s = opts.minutes * 60
    warmup_s = opts.warmup if opts.warmup is not None else min(120.0, WARMUP_SHARE * total_s)
    await asyncio.to_thread(cluster.start_core)
    for region in REGIONS:
        await cluster.start_edge(region, proxied=True)
    say(
        f"[{run.elapsed()}] core and edges ready; {opts.minutes:g} min of load, warm-up "
        f"{warmup_s:.0f} s, a link cut of {opts.cut:g} s every {opts.cut_every:g} s"
    )
    ledger, control, reads, cursors = Ledger(), Control(), Reads(), Cursors()
    began = time.monotonic()

    def room() -> str:
        """Every member in the same room, a new one every ``ROOM_EVERY_S``."""
        return f"soak-{int((time.monotonic() - began) // ROOM_EVERY_S)}"

    writers = start_writers(cluster, ledger, control, 1, 1, opts.rate)
    clients = []
    for e, edge in enumerate(cluster.edges):
        proxy = edge.proxy
        assert proxy is not None

        def context(proxy: Any = proxy) -> tuple[str, bool]:
            return "tolerant", bool(proxy.is_cut)

        clients += [
            http_reader(edge.url, edge.region, reads, control, READ_RATE_HZ, context),
            ws_reader(edge.ws_url, edge.region, reads, control, READ_RATE_HZ, context),
            *(
                cursor_member(
                    edge.ws_url, CURSORS_PER_EDGE * e + i, cursors, control, CURSOR_RATE_HZ, room
                )
                for i in range(CURSORS_PER_EDGE)
            ),
        ]
    tasks = [asyncio.create_task(c) for c in clients]
    samples = Samples()
    sampler = asyncio.create_task(samples.every(cluster.nodes, opts.sample))
    cuts: list[tuple[float, float, str]] = []
    cutter = asyncio.create_task(_cut_periodically(cluster, samples, opts, cuts))

    def line() -> str:
        rss = ", ".join(
            f"{name} {series[-1][1] / 1024:.1f} MB" for name, series in samples.rss_kb.items()
        )
        left = max(0.0, total_s - (time.monotonic() - samples.started))
        return f"{left:.0f} s left | RSS {rss} | {ledger.line()} | {reads.line()}"

    async with progress(run, line, opts.progress_s):
        await asyncio.sleep(total_s)
        cutter.cancel()
        sampler.cancel()
        for edge in cluster.edges:
            if edge.proxy is not None:
                edge.proxy.heal()
        await drain(run, cluster, control, writers, opts.drain)
        control.stop.set()
        await asyncio.gather(*writers, *tasks, cutter, sampler, return_exceptions=True)
    await cluster.close()
    run.figures["cuts"] = len(cuts)
    run.figures["reads"] = reads.summary()
    run.figures["cursor_moves_sent"] = cursors.moves_sent
    run.figures["cursor_room_changes"] = cursors.room_changes
    check_nothing_lost(run, cluster, ledger)
    refused = reads.refused()
    run.check(
        "every read is answered (stale during cuts)",
        reads.count(ok=True) > 0 and not refused,
        f"{reads.line()}" + (f"; refused: {refused}" if refused else ""),
    )
    bands = _bands(samples, warmup_s)
    run.figures["rss"] = bands
    out_of_band = [name for name, b in bands.items() if not b["in_band"]]
    run.check(
        f"every node's RSS stays within ±{BAND:.0%} of its level after the warm-up",
        bool(bands) and not out_of_band,
        "; ".join(
            f"{name} level {b['level_mb']} MB, {b['min_mb']}–{b['max_mb']} MB "
            f"({b['low_pct']:+.1f}% / {b['high_pct']:+.1f}%), end {b['end_mb']} MB"
            for name, b in bands.items()
        ),
    )
    _plot(samples, cuts, bands, warmup_s, run.out / "soak.png")


async def _cut_periodically(
    cluster: Cluster, samples: Samples, opts: Any, cuts: list[tuple[float, float, str]]
) -> None:
    """Cut one edge's link (in turn) every ``--cut-every`` s for ``--cut`` s; file each."""
    n = 0
    while True:
        await asyncio.sleep(max(0.0, opts.cut_every - opts.cut))
        edge = cluster.edges[n % len(cluster.edges)]
        n += 1
        assert edge.proxy is not None
        began = time.monotonic() - samples.started
        edge.proxy.cut()
        try:
            await asyncio.sleep(opts.cut)
        finally:
            edge.proxy.heal()
            cuts.append((began, time.monotonic() - samples.started, edge.region))


def _bands(samples: Samples, warmup_s: float) -> dict[str, dict[str, Any]]:
    """Per node: its level after the warm-up, its extremes after it, and whether they stay
    within the band."""
    found = {}
    for name, series in samples.rss_kb.items():
        after = [(t, kb) for t, kb in series if t >= warmup_s]
        if not after:
            continue
        window = [kb for t, kb in after if t < warmup_s + LEVEL_WINDOW_S] or [after[0][1]]
        level = statistics.median(window)
        low, high = min(kb for _, kb in after), max(kb for _, kb in after)
        found[name] = {
            "level_mb": round(level / 1024, 1),
            "min_mb": round(low / 1024, 1),
            "max_mb": round(high / 1024, 1),
            "end_mb": round(after[-1][1] / 1024, 1),
            "low_pct": round((low / level - 1) * 100, 1),
            "high_pct": round((high / level - 1) * 100, 1),
            "in_band": (1 - BAND) * level <= low and high <= (1 + BAND) * level,
            "samples_after_warmup": len(after),
        }
    return found


def _plot(
    samples: Samples,
    cuts: list[tuple[float, float, str]],
    bands: dict[str, dict[str, Any]],
    warmup_s: float,
    path: Path,
) -> None:
    """RSS of every node over time, its ±band after the warm-up, and the cuts shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5.5))
    for i, (name, series) in enumerate(samples.rss_kb.items()):
        color = f"C{i}"
        ax.plot(
            [t / 60 for t, _ in series], [kb / 1024 for _, kb in series], color=color, label=name
        )
        if name in bands:
            level = bands[name]["level_mb"]
            end = series[-1][0] / 60
            ax.fill_between(
                [warmup_s / 60, end],
                level * (1 - BAND),
                level * (1 + BAND),
                color=color,
                alpha=0.12,
            )
    for began, ended, _ in cuts:
        ax.axvspan(began / 60, ended / 60, color="grey", alpha=0.15, linewidth=0)
    ax.axvline(warmup_s / 60, color="black", linestyle="dotted", linewidth=1)
    ax.axvspan(0, 0, color="grey", alpha=0.15, label="a link cut")
    ax.plot([], [], color="black", linestyle="dotted", label="end of warm-up")
    ax.set_xlabel("minutes")
    ax.set_ylabel("RSS, MB")
    ax.set_ylim(bottom=0)
    ax.set_title(f"RSS of every node under mixed load and link cuts (band: ±{BAND:.0%})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def add_arguments(parser: Any) -> None:
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the load [10]")
    parser.add_argument(
        "--warmup", type=float, help="seconds before the band applies [120, or 40%% if shorter]"
    )
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between samples [5]")
    parser.add_argument("--cut-every", type=float, default=60.0, help="a cut every N s [60]")
    parser.add_argument("--cut", type=float, default=8.0, help="seconds each cut lasts [8]")
    parser.add_argument("--rate", type=float, default=2.0, help="searches/s per writer [2]")
    parser.add_argument("--drain", type=float, default=60.0, help="longest drain at the end [60]")
