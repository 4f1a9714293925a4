"""The tables of ``report.md``: latencies by city and scenario, comparisons, checks, CPU, runs."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from load.report.data import SCENARIOS, Bench, Check, fmt, percentiles

CPU_LIMIT = 90.0


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def scenario_label(target: str, mode: str) -> str:
    return f"{target} · {mode}"


def kind_table(b: Bench, kind: str) -> list[str]:
    header = ["user city", "simulated RTT edge / central<br><sub>fiber floor</sub>"]
    header += [f"{scenario_label(t, m)}<br>p50 / p95 / p99" for t, m in SCENARIOS]
    rows = []
    for code, c in b.cities.items():
        row = [
            f"{c.name} (`{code}` → `{c.edge}`)",
            f"{c.edge_rtt:.1f} / {c.central_rtt:.1f}<br>"
            f"<sub>{c.edge_floor:.1f} / {c.central_floor:.1f}</sub>",
        ]
        for target, mode in SCENARIOS:
            (p50, p95, p99), s = b.stats((kind, code, target, mode))
            if not s.ok and not s.failed:
                row.append("not run")
                continue
            expected = (
                "expected: by pair, below"
                if kind == "cursor_cross"
                else f"expected {b.expected(kind, code, target, mode):.1f}"
            )
            repeats = [float(np.median(v)) for _, v in sorted(s.by_repeat.items())]
            spread = ""
            if len(repeats) > 1:
                spread = f", repeat p50s {min(repeats):.1f}–{max(repeats):.1f}"
            fails = f", **{s.failed} failed**" if s.failed else ""
            row.append(
                f"**{fmt(p50)}** / {fmt(p95)} / {fmt(p99)}<br>"
                f"<sub>{expected}; n={len(s.ok)}"
                f"{spread}{fails}</sub>"
            )
        rows.append(row)
    return table(header, rows)


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
