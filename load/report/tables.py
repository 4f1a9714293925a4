"""The tables of ``report.md``: latencies by city and scenario, comparisons, checks, CPU, runs."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from load import bench_mesh
from load.plan import MODES, PACK_REFRESH_S, TARGETS
from load.report.data import RUNGS, SCENARIOS, Bench, Check, Samples, fmt, percentiles

CPU_LIMIT = 90.0


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def mesh_table(b: Bench) -> list[str]:
    """Per city pair of the mesh phase: floor, direct one way, own sum, mesh and core relay
    p50 / p99 (samples), target met (:func:`load.bench_mesh.report`); none without it."""
    if not b.mesh_pairs:
        return []
    return bench_mesh.report(b.mesh_pairs).splitlines() + [""]


def scenario_label(target: str, mode: str) -> str:
    return f"{target} · {mode}"


def cell(s: Samples, expected: float, note: str = "") -> str:
    """**p50** / p95 / p99, then the expected p50, samples, repeat spread and failures."""
    (p50, p95, p99) = percentiles(s.ok)
    repeats = [float(np.median(v)) for _, v in sorted(s.by_repeat.items()) if v]
    spread = ""
    if len(repeats) > 1:
        spread = f", repeat p50s {min(repeats):.1f}–{max(repeats):.1f}"
    fails = f", **{s.failed} failed**" if s.failed else ""
    what = note or ("" if math.isnan(expected) else f"expected {expected:.1f}; ")
    return (
        f"**{fmt(p50)}** / {fmt(p95)} / {fmt(p99)}<br><sub>{what}n={len(s.ok)}{spread}{fails}</sub>"
    )


def target_label(b: Bench, code: str, target: str) -> str:
    c = b.cities[code]
    if target == "central":
        return f"central (`{c.core}`)"
    return f"PoP → edge `{c.edge}`" if target == "pop" else f"edge `{c.edge}`"


def kind_table(b: Bench, kind: str) -> list[str]:
    """One row per user city and target, one column per level: p50 / p95 / p99."""
    levels = b.levels([kind]) or ["tolerant", "strict"]
    targets = b.targets([kind]) or ["edge", "central"]
    header = ["user city", "through", "simulated RTT<br><sub>fiber floor</sub>"]
    header += [f"{level}<br>p50 / p95 / p99" for level in levels]
    rows = []
    for code, c in b.cities.items():
        for target in targets:
            row = [
                f"{c.name} (`{code}`)",
                target_label(b, code, target),
                f"{c.rtt(target):.1f}<br><sub>{c.floor(target):.1f}</sub>",
            ]
            for mode in levels:
                s = b.samples.get((kind, code, target, mode))
                if s is None or not s.count:
                    row.append("not run")
                elif kind == "cursor_cross":
                    row.append(cell(s, math.nan, "expected: by pair, below; "))
                else:
                    row.append(cell(s, b.expected(kind, code, target, mode)))
            rows.append(row)
    return table(header, rows)


def levels_table(b: Bench) -> list[str]:
    """What each level adds to tolerant's p50, per city and protocol, at the edge."""
    levels = [m for m in b.levels(["suggest_http", "suggest_ws"]) if m != "tolerant"]
    header = ["user city", "what", "tolerant p50"]
    header += [f"{m} − tolerant" for m in levels] + ["edge↔core link RTT"]
    rows = []
    for code, c in b.cities.items():
        for kind in ("suggest_http", "suggest_ws"):
            tolerant = b.p50(kind, code, "edge", "tolerant")
            row = [f"{c.name} (`{code}` → `{c.edge}`)", kind.replace("_", " "), fmt(tolerant)]
            row += [f"{b.p50(kind, code, 'edge', m) - tolerant:+.1f}" for m in levels]
            rows.append(row + [f"{c.link_rtt:.1f}"])
    return table(header, rows)


def rungs_table(b: Bench) -> list[str]:
    """Per suggestion scenario, over every city: what one user request cost upstream, and
    which rung answered."""
    header = [
        "scenario",
        "user requests",
        "origin requests per user request",
        "core round trips per user request",
        "answered by device / PoP / edge / core",
        "PoP cache statuses",
    ]
    rows = []
    for feature, kinds in (("suggest", SUGGEST_KINDS), ("device", ("device_keystroke",))):
        for target, mode in b.scenarios(kinds):
            runs = b.runs_of(feature, target, mode)
            if not runs:
                continue
            sent = sum(_user_requests(r) for r in runs)
            origins = [_origin(r) for r in runs]
            origin = None if None in origins else sum(o for o in origins if o is not None)
            trips = [r.get("edge_counts", {}).get("round_trips") for r in runs]
            known = [t for t in trips if t is not None]
            pooled = Samples()
            for code in b.cities:
                for kind in kinds:
                    s = b.samples.get((kind, code, target, mode))
                    if s:
                        for rung, values in s.rungs.items():
                            pooled.rungs[rung] += values
            shares = " / ".join(
                "—" if math.isnan(pooled.share(r)) else f"{100 * pooled.share(r):.0f}%"
                for r in RUNGS
            )
            cache: dict[str, int] = defaultdict(int)
            for r in runs:
                for status, n in r.get("counters", {}).get("cache", {}).items():
                    cache[status] += n
            hits = sum(cache.get(x, 0) for x in ("HIT", "STALE", "UPDATING"))
            statuses = ", ".join(f"{k} {v}" for k, v in sorted(cache.items()))
            if cache:
                statuses = f"hit ratio **{100 * hits / sum(cache.values()):.0f}%**: {statuses}"
            rows.append(
                [
                    f"{feature} · {target} · {mode}",
                    str(sent),
                    f"{origin / sent:.2f}" if sent and origin is not None else "—",
                    f"{sum(known) / sent:.2f}" if sent and len(known) == len(trips) else "—",
                    shares,
                    statuses or "—",
                ]
            )
    return table(header, rows)


SUGGEST_KINDS = ("suggest_http", "suggest_ws", "suggest_ryw")


def _user_requests(run: dict[str, Any]) -> int:
    """A run's user requests: keystrokes for device users (answered where they may be),
    suggestion requests sent otherwise."""
    counters = run.get("counters", {})
    if run["feature"] == "device":
        return int(counters.get("keystrokes", 0))
    return int(counters.get("suggest_sent", 0))


def _origin(run: dict[str, Any]) -> float | None:
    """Suggestion requests that reached an edge during a run (HTTP and websocket; the pack
    requests of device users too), or ``None`` if the edges' counters were not read."""
    counts = run.get("edge_counts") or {}
    if not counts:
        return None
    keys = ("http /suggest", "ws suggest", "http /suggest/pack")
    return float(sum(counts.get(k, 0.0) for k in keys))


def ryw_table(b: Bench) -> list[str]:
    """The read right after one's own search, per city and level at the edge, next to that
    level's other reads; and whether it saw the search."""
    levels = b.levels(["suggest_ryw"])
    header = ["user city", "level", "other reads p50"]
    header += ["read-your-writes read<br>p50 / p95 / p99", "− other reads p50", "saw its write"]
    header += ["the search (`POST /search`) p50"]
    rows = []
    for code, c in b.cities.items():
        for mode in levels:
            s = b.samples.get(("suggest_ryw", code, "edge", mode))
            if s is None or not s.count:
                continue
            read = b.p50("suggest_http", code, "edge", mode)
            search = b.samples.get(("search_http", code, "edge", mode), Samples())
            rows.append(
                [
                    f"{c.name} (`{code}` → `{c.edge}`)",
                    mode,
                    fmt(read),
                    cell(s, math.nan),
                    f"{percentiles(s.ok, (50,))[0] - read:+.1f}",
                    saw(s),
                    f"{fmt(percentiles(search.ok, (50,))[0])} (n={search.count})",
                ]
            )
    return table(header, rows) if rows else []


def ryw_pooled_table(b: Bench) -> list[str]:
    """Read-your-writes reads per target and level, every city pooled."""
    rows = []
    for target, mode in b.scenarios(["suggest_ryw"]):
        pooled = Samples()
        for code in b.cities:
            s = b.samples.get(("suggest_ryw", code, target, mode))
            if s:
                pooled.ok += s.ok
                pooled.failed += s.failed
                pooled.saw_write += s.saw_write
        p50, p99 = percentiles(pooled.ok, (50, 99))
        rows.append(
            [f"{target} · {mode}", str(pooled.count), f"{fmt(p50)} / {fmt(p99)}", saw(pooled)]
        )
    header = ["through · level", "reads", "p50 / p99", "saw its write"]
    return table(header, rows) if rows else []


def saw(s: Samples) -> str:
    if not s.saw_write:
        return "—"
    return f"{100 * sum(s.saw_write) / len(s.saw_write):.0f}% of {len(s.saw_write)}"


def device_table(b: Bench) -> list[str]:
    """Device runs, per city and level: every keystroke, the share the pack answered, and
    the latency of each rung."""
    header = [
        "user city",
        "level",
        "every keystroke<br>p50 / p95 / p99",
        "answered on the device",
        "device answers p50 / p99",
        "edge answers p50",
    ]
    rows = []
    for code, c in b.cities.items():
        for mode in b.levels(["device_keystroke"]):
            s = b.samples.get(("device_keystroke", code, "edge", mode))
            if s is None or not s.count:
                continue
            device = s.rungs.get("device", [])
            edge = s.rungs.get("edge", []) + s.rungs.get("core", [])
            d50, d99 = percentiles(device, (50, 99))
            share = s.share("device")
            rows.append(
                [
                    f"{c.name} (`{code}` → `{c.edge}`)",
                    mode,
                    cell(s, b.expected("device_keystroke", code, "edge", mode)),
                    "—" if math.isnan(share) else f"{100 * share:.0f}%",
                    f"{fmt(d50, 3)} / {fmt(d99, 3)}",
                    fmt(percentiles(edge, (50,))[0]),
                ]
            )
    return table(header, rows) if rows else []


def pack_line(b: Bench) -> str:
    """The pack as device users saw it: its size and how its refreshes went."""
    runs = [r for r in b.runs if r["feature"] == "device"]
    counters = [r.get("counters", {}) for r in runs]
    size = max((c.get("pack_bytes", 0) for c in counters), default=0)
    wire = max((c.get("pack_wire_bytes", 0) for c in counters), default=0)
    asked = sum(c.get("packs", 0) for c in counters)
    same = sum(c.get("packs_unchanged", 0) for c in counters)
    if not asked:
        return ""
    return (
        f"The pack as users received it: {size / 1024:.0f} KB of JSON, {wire / 1024:.0f} KB "
        f"on the wire (gzip); a user asks for it as it starts and again every "
        f"{PACK_REFRESH_S:g} s or so with `If-None-Match`; {asked} pack "
        f"requests, {same} of them answered 304 (unchanged)."
    )


def cut_table(b: Bench) -> list[str]:
    """Cut runs, per target and level: answers behind the cut edge before, during and after
    the cut, and in the other cities during it."""
    header = [
        "through · level",
        "cut",
        "behind the cut edge, during: answered",
        "errors during",
        "answered p50 during",
        "behind it, after the heal",
        "other cities, during",
        "after the run: the edge answered strict again in",
    ]
    rows = []
    for target in TARGETS:
        for mode in MODES:
            cut = b.cuts.get((target, mode))
            if cut is None:
                continue
            during = cut.parts.get(("during", True), Samples())
            after = cut.parts.get(("after", True), Samples())
            others = cut.parts.get(("during", False), Samples())
            errors = ", ".join(
                f"`{k}` {v}" for k, v in sorted(during.errors.items(), key=lambda kv: -kv[1])
            )
            rows.append(
                [
                    f"{target} · {mode}",
                    f"`{cut.region}` for {span_s(cut.seconds)} s",
                    answered(during),
                    errors or "none",
                    fmt(percentiles(during.ok, (50,))[0]),
                    answered(after),
                    answered(others),
                    f"{span_s(cut.relink_s)} s",
                ]
            )
    return table(header, rows) if rows else []


def answered(s: Samples) -> str:
    if not s.count:
        return "—"
    return f"**{100 * len(s.ok) / s.count:.1f}%** of {s.count}"


def span_s(values: list[float]) -> str:
    if not values:
        return "—"
    low, high = min(values), max(values)
    return f"{low:.1f}" if f"{low:.1f}" == f"{high:.1f}" else f"{low:.1f}–{high:.1f}"


def comparison_table(b: Bench) -> list[str]:
    header = [
        "user city",
        "what",
        "edge ÷ central p50, tolerant",
        "edge ÷ central p50, strict",
        "strict − tolerant p50, edge",
        "strict − tolerant p50, central",
        "edge↔core link RTT (edge / central node)",
    ]
    rows = []
    for code, c in b.cities.items():
        for kind in ("suggest_http", "suggest_ws", "cursor_same"):
            p = {(t, m): b.p50(kind, code, t, m) for t, m in SCENARIOS}

            def ratio(mode: str, p: dict[tuple[str, str], float] = p) -> str:
                edge, central = p[("edge", mode)], p[("central", mode)]
                if math.isnan(edge) or math.isnan(central) or central == 0:
                    return "—"
                return f"{edge / central:.2f} (central ×{central / edge:.1f})"

            def cost(target: str, p: dict[tuple[str, str], float] = p) -> str:
                return fmt(p[(target, "strict")] - p[(target, "tolerant")])

            rows.append(
                [
                    f"{c.name} (`{code}`)",
                    kind.replace("_", " "),
                    ratio("tolerant"),
                    ratio("strict"),
                    cost("edge") + " ms",
                    cost("central") + " ms",
                    f"{c.link_rtt:.1f} / {c.core_link_rtt:.1f} ms",
                ]
            )
    return table(header, rows)


def checks_table(found: list[Check]) -> list[str]:
    rows = []
    for ch in found:
        verdict = {True: "✅ holds", False: "❌ off", None: "— no data"}[ch.holds]
        rows.append(
            [
                ch.what,
                f"`{ch.city}`",
                f"{ch.expected:.1f}",
                fmt(ch.measured),
                "—" if math.isnan(ch.measured) else f"{ch.measured - ch.expected:+.1f}",
                f"{ch.low:+.0f}…{ch.high:+.0f}",
                verdict,
            ]
        )
    header = ["expectation", "city", "expected ms", "measured ms", "difference", "allowed", ""]
    return table(header, rows)


def cross_tables(b: Bench) -> list[str]:
    lines: list[str] = []
    codes = list(b.cities)
    for target, mode in SCENARIOS:
        rows = []
        for sender in codes:
            row = [f"`{sender}` moves"]
            for receiver in codes:
                if receiver == sender:
                    row.append("(same city)")
                    continue
                values = b.pairs.get((sender, receiver, target, mode), [])
                if not values:
                    row.append("—")
                    continue
                expected = b.expected("cursor_cross", receiver, target, mode, sender)
                row.append(f"{percentiles(values, (50,))[0]:.1f} ({expected:.1f})")
            rows.append(row)
        if any(cell not in ("—", "(same city)") for row in rows for cell in row[1:]):
            lines.append(f"**{scenario_label(target, mode)}**: p50 ms (expected)")
            lines.append("")
            lines += table(["", *(f"seen in `{r}`" for r in codes)], rows)
    return lines


def cpu_rows(b: Bench) -> tuple[list[list[str]], list[str]]:
    rows, warnings = [], []
    for run in b.runs:
        cpu = run.get("cpu", {})
        mean, peak = cpu.get("mean_pct", {}), cpu.get("max_pct", {})
        locust_peak = peak.get("locust", math.nan)
        warned = run.get("cpu_warning", False)
        if warned or locust_peak > CPU_LIMIT:
            why = "locust logged “CPU usage above 90%”" if warned else ""
            if locust_peak > CPU_LIMIT:
                why += (" and " if why else "") + f"measured peak {locust_peak:.0f}%"
            warnings.append(f"run {run['n']} ({run['scenario']}, repeat {run['repeat']}): {why}")
        load = run.get("loadavg") or []
        rows.append(
            [
                str(run["n"]),
                run["scenario"],
                str(run["repeat"]),
                str(run["users"]),
                str(run.get("samples", 0)),
                f"{mean.get('locust', math.nan):.0f} / {locust_peak:.0f}",
                f"{mean.get('up (proxies)', math.nan):.0f}",
                f"{mean.get('core', math.nan):.0f}",
                f"{mean.get('edges', math.nan):.0f}",
                f"{cpu.get('others_pct', math.nan):.0f}",
                f"{cpu.get('machine_busy_pct', math.nan):.0f} of {100 * cpu.get('cores', 1)}",
                f"{load[0]:.2f}" if load else "—",
                "⚠️" if warned or locust_peak > CPU_LIMIT else "",
            ]
        )
    return rows, warnings


def links(b: Bench, run: dict[str, Any]) -> str:
    d = run["dir"]
    parts = [f"[stats]({d}/locust_stats.csv)", f"[log]({d}/locust.log)", f"[raw]({d}/raw.csv.gz)"]
    if (b.out / d / "locust.html").exists():
        parts.insert(0, f"[HTML]({d}/locust.html)")
    return " · ".join(parts)


def failures(b: Bench, run: dict[str, Any]) -> int:
    path = b.out / run["dir"] / "locust_stats.csv"
    if not path.exists():
        return 0
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row.get("Name") == "Aggregated":
                return int(row.get("Failure Count") or 0)
    return 0
