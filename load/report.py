"""The report of a ``lightcone bench`` folder: ``report.md`` and ``plots/*.png``.

Run again on a finished folder with ``python -m load.report DIR``. Every number comes from the
folder: ``results.json`` (plan, topology, environment, CPU) and each run's ``raw.csv.gz``
(every request's exact time, as :class:`load.users.RawRecorder` wrote it). Percentiles are
computed from the raw times (linear interpolation between order statistics), pooled over the
repeats of a scenario; locust's own tables round to 1 ms below 100 ms and 10 ms above.

What "expected" means, per user city (simulated RTTs from the topology; ``tick`` is the
edges' cursor tick, ``link`` an edge's simulated RTT to the core):

* suggestions, tolerant: the RTT of the entry (user → edge, or user → central node);
* suggestions, strict: that plus one ``link`` round trip (the edge syncs with the core);
* cursors: the mover's one-way leg + the receiver's one-way leg + half a tick (a move waits
  for the next tick: uniform in [0, tick)) + for strict, or between two edges, the legs
  from the edges to the core and back.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SCENARIOS = (
    ("edge", "tolerant"),
    ("edge", "strict"),
    ("central", "tolerant"),
    ("central", "strict"),
)
KINDS = {
    "suggest_http": "Suggestions over HTTP (`GET /suggest`)",
    "suggest_ws": "Suggestions over the websocket (`suggest` → `suggestions`)",
    "cursor_same": "Cursors: a move seen by another member in the same city",
    "cursor_cross": "Cursors: a move seen by a member in another city",
}
PLOTTED = ("suggest_http", "suggest_ws", "cursor_same")
TOLERANCE_MS = 5.0
CPU_LIMIT = 90.0
COLORS = {
    ("edge", "tolerant"): "#1b9e77",
    ("edge", "strict"): "#66c2a5",
    ("central", "tolerant"): "#d95f02",
    ("central", "strict"): "#fc8d62",
}


@dataclass
class Samples:
    ok: list[float] = field(default_factory=list)
    by_repeat: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    failed: int = 0
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))


Key = tuple[str, str, str, str]  # kind, city, target, mode


def _percentiles(values: Sequence[float], qs: Sequence[float] = (50, 95, 99)) -> list[float]:
    if not values:
        return [math.nan] * len(qs)
    return [float(v) for v in np.percentile(np.asarray(values), qs)]


def _fmt(ms: float, digits: int = 1) -> str:
    return "—" if math.isnan(ms) else f"{ms:.{digits}f}"


@dataclass
class City:
    code: str
    name: str
    edge: str
    edge_rtt: float
    edge_floor: float
    central_rtt: float
    central_floor: float
    link_rtt: float
    core_link_rtt: float
    core: str

    @property
    def far(self) -> bool:
        """The nearest edge is not in the core's region."""
        return self.edge != self.core

    def rtt(self, target: str) -> float:
        return self.edge_rtt if target == "edge" else self.central_rtt

    def floor(self, target: str) -> float:
        return self.edge_floor if target == "edge" else self.central_floor

    def link(self, target: str) -> float:
        return self.link_rtt if target == "edge" else self.core_link_rtt


class Bench:
    """A finished bench folder, loaded."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.results: dict[str, Any] = json.loads((out / "results.json").read_text())
        self.runs: list[dict[str, Any]] = self.results["runs"]
        self.tick = self.results.get("tick_ms")
        self.cities = self._cities()
        self.samples: dict[Key, Samples] = defaultdict(Samples)
        self.pairs: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)
        for run in self.runs:
            self._load(run)

    def _cities(self) -> dict[str, City]:
        topology = self.results["topology"]
        core = topology["core_region"]
        links = {
            n["region"]: n.get("link_rtt_ms", math.nan)
            for n in topology["nodes"]
            if n["kind"] == "edge"
        }
        by_user: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for e in topology["entries"]:
            by_user[e["user_region"]][e["kind"]] = e
        cities = {}
        for code, entries in by_user.items():
            edge, central = entries["edge"], entries["central"]
            cities[code] = City(
                code=code,
                name=edge["user_city"],
                edge=edge["target_region"],
                edge_rtt=edge["rtt_ms"],
                edge_floor=edge["fiber_floor_ms"],
                central_rtt=central["rtt_ms"],
                central_floor=central["fiber_floor_ms"],
                link_rtt=links.get(edge["target_region"], math.nan),
                core_link_rtt=links.get(core, math.nan),
                core=core,
            )
        return cities

    def _load(self, run: dict[str, Any]) -> None:
        path = self.out / run["dir"] / "raw.csv.gz"
        if not path.exists():
            return
        target, mode, repeat = run["target"], run["mode"], run["repeat"]
        with gzip.open(path, "rt", newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                kind = row["kind"]
                if kind not in KINDS:
                    continue
                s = self.samples[(kind, row["city"], target, mode)]
                if row["ok"] == "1":
                    ms = float(row["ms"])
                    s.ok.append(ms)
                    s.by_repeat[repeat].append(ms)
                    if kind == "cursor_cross":
                        self.pairs[(row["peer"], row["city"], target, mode)].append(ms)
                else:
                    s.failed += 1
                    s.errors[row["error"].split(":")[0] or "error"] += 1

    # --- expectations ----------------------------------------------------------------------

    def expected(self, kind: str, city: str, target: str, mode: str, peer: str = "") -> float:
        c = self.cities[city]
        if kind.startswith("suggest"):
            return c.rtt(target) + (c.link(target) if mode == "strict" else 0.0)
        tick = float(self.tick) if self.tick is not None else math.nan
        sender = self.cities[peer or city]
        legs = (sender.rtt(target) + c.rtt(target)) / 2 + tick / 2
        cross_edges = target == "edge" and sender.edge != c.edge
        if mode == "strict" or cross_edges:
            legs += (sender.link(target) + c.link(target)) / 2
        return legs

    def stats(self, key: Key) -> tuple[list[float], Samples]:
        s = self.samples.get(key, Samples())
        return _percentiles(s.ok), s

    def p50(self, kind: str, city: str, target: str, mode: str) -> float:
        return self.stats((kind, city, target, mode))[0][0]


# --- markdown ------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def _scenario_label(target: str, mode: str) -> str:
    return f"{target} · {mode}"


def _kind_table(b: Bench, kind: str) -> list[str]:
    header = ["user city", "simulated RTT edge / central<br><sub>fiber floor</sub>"]
    header += [f"{_scenario_label(t, m)}<br>p50 / p95 / p99" for t, m in SCENARIOS]
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
                f"**{_fmt(p50)}** / {_fmt(p95)} / {_fmt(p99)}<br>"
                f"<sub>{expected}; n={len(s.ok)}"
                f"{spread}{fails}</sub>"
            )
        rows.append(row)
    return _table(header, rows)


def _comparison_table(b: Bench) -> list[str]:
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
                return _fmt(p[(target, "strict")] - p[(target, "tolerant")])

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
    return _table(header, rows)


@dataclass
class Check:
    what: str
    city: str
    expected: float
    measured: float
    low: float
    high: float

    @property
    def holds(self) -> bool | None:
        if math.isnan(self.measured) or math.isnan(self.expected):
            return None
        return self.low <= self.measured - self.expected <= self.high


def checks(b: Bench) -> list[Check]:
    """The issue's expectations, for far cities (a nearest edge outside the core's region)."""
    found = []
    tick = float(b.tick) if b.tick is not None else math.nan
    t = TOLERANCE_MS
    for code, c in b.cities.items():
        if not c.far:
            continue
        for kind, label in (("suggest_http", "HTTP"), ("suggest_ws", "websocket")):
            for target in ("edge", "central"):
                found.append(
                    Check(
                        f"suggest {label}: {target} tolerant p50 ≈ simulated user→{target} RTT",
                        code,
                        c.rtt(target),
                        b.p50(kind, code, target, "tolerant"),
                        -t,
                        t,
                    )
                )
            found.append(
                Check(
                    f"suggest {label}: strict − tolerant p50 at the edge ≈ edge↔core RTT",
                    code,
                    c.link_rtt,
                    b.p50(kind, code, "edge", "strict") - b.p50(kind, code, "edge", "tolerant"),
                    -t,
                    t,
                )
            )
        found.append(
            Check(
                "cursors: edge tolerant same-city p50 ≈ user RTT + half a tick (the median wait)",
                code,
                c.edge_rtt + tick / 2,
                b.p50("cursor_same", code, "edge", "tolerant"),
                -t,
                t,
            )
        )
        found.append(
            Check(
                "cursors: strict − tolerant same-city p50 at the edge ≈ edge↔core RTT",
                code,
                c.link_rtt,
                b.p50("cursor_same", code, "edge", "strict")
                - b.p50("cursor_same", code, "edge", "tolerant"),
                -t,
                t,
            )
        )
    return found


def _checks_table(found: list[Check]) -> list[str]:
    rows = []
    for ch in found:
        verdict = {True: "✅ holds", False: "❌ off", None: "— no data"}[ch.holds]
        rows.append(
            [
                ch.what,
                f"`{ch.city}`",
                f"{ch.expected:.1f}",
                _fmt(ch.measured),
                "—" if math.isnan(ch.measured) else f"{ch.measured - ch.expected:+.1f}",
                f"{ch.low:+.0f}…{ch.high:+.0f}",
                verdict,
            ]
        )
    header = ["expectation", "city", "expected ms", "measured ms", "difference", "allowed", ""]
    return _table(header, rows)


def _cross_tables(b: Bench) -> list[str]:
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
                row.append(f"{_percentiles(values, (50,))[0]:.1f} ({expected:.1f})")
            rows.append(row)
        if any(cell not in ("—", "(same city)") for row in rows for cell in row[1:]):
            lines.append(f"**{_scenario_label(target, mode)}**: p50 ms (expected)")
            lines.append("")
            lines += _table(["", *(f"seen in `{r}`" for r in codes)], rows)
    return lines


def _cpu_rows(b: Bench) -> tuple[list[list[str]], list[str]]:
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


def _links(b: Bench, run: dict[str, Any]) -> str:
    d = run["dir"]
    parts = [f"[stats]({d}/locust_stats.csv)", f"[log]({d}/locust.log)", f"[raw]({d}/raw.csv.gz)"]
    if (b.out / d / "locust.html").exists():
        parts.insert(0, f"[HTML]({d}/locust.html)")
    return " · ".join(parts)


def markdown(b: Bench, plots: list[str]) -> str:
    r = b.results
    plan, env = r["plan"], r["environment"]
    topology = r["topology"]
    found = checks(b)
    cpu_rows, warnings = _cpu_rows(b)
    held = [c for c in found if c.holds]
    off = [c for c in found if c.holds is False]
    lines = [
        "# lightcone bench: edge vs central, tolerant vs strict",
        "",
        f"Generated by `load/report.py` from a run of {r['wall_s']:.0f} s on "
        f"{env['date_utc']} UTC. Command:",
        "",
        "```sh",
        " ".join(r.get("command") or ["lightcone", "bench"]),
        "```",
        "",
        f"Core in `{topology['core_region']}`, edges in "
        + ", ".join(f"`{e}`" for e in plan["edges"])
        + f". {plan['repeats']} repeat(s) of each scenario, {plan['duration_s']} s per locust "
        f"run, interleaved (edge and central side by side, the order reversed every other "
        f"repeat). Suggest runs: {plan['suggest_users']} users (half over HTTP, half over the "
        f"websocket, {plan['codec']}); cursor runs: {plan['cursor_users']} users in rooms of "
        f"{plan['room_size']}, moving at {plan['move_hz']:g} Hz; edges tick every "
        f"{b.tick if b.tick is not None else 'unknown'} ms. Users are spread round-robin "
        f"over the user cities, so every room mixes them.",
        "",
        "All times are milliseconds measured by the load generator, from sending a request "
        "(or a move) to receiving its answer (or seeing the move). Percentiles come from every "
        "request's exact time (`raw.csv.gz` of each run), pooled over the repeats; "
        "locust's own tables (HTML, `locust_stats.csv`) round them to 1 ms below 100 ms and "
        "10 ms above.",
        "",
        "## Summary",
        "",
        f"Expectations for far cities (nearest edge outside `{topology['core_region']}`, "
        f"tolerance ±{TOLERANCE_MS:.0f} ms): **{len(held)} of {len(found)} hold**"
        + (f", {len(off)} do not (see [Expectations](#expectations))" if off else "")
        + (
            f", {len(found) - len(held) - len(off)} without data"
            if len(held) + len(off) < len(found)
            else ""
        )
        + ".",
        "",
    ]
    for code, c in b.cities.items():
        e, ce = (
            b.p50("suggest_ws", code, "edge", "tolerant"),
            b.p50("suggest_ws", code, "central", "tolerant"),
        )
        es = b.p50("suggest_ws", code, "edge", "strict")
        cur, curs = (
            b.p50("cursor_same", code, "edge", "tolerant"),
            b.p50("cursor_same", code, "edge", "strict"),
        )
        lines.append(
            f"- **{c.name}**: suggestions (websocket) p50 {_fmt(e)} ms at the edge "
            f"(simulated RTT {c.edge_rtt:.1f}) vs {_fmt(ce)} ms central (RTT "
            f"{c.central_rtt:.1f}, fiber floor {c.central_floor:.1f}; central ÷ edge "
            f"{ce / e if e else math.nan:.1f}×); "
            f"strict at the edge {_fmt(es)} ms (link RTT {c.link_rtt:.1f}). "
            f"Cursors same city at the edge: {_fmt(cur)} ms tolerant, {_fmt(curs)} ms strict."
        )
    lines += [""]
    if warnings:
        lines += [
            "> **Warning: the load generator was CPU-bound in some runs** (locust above "
            f"{CPU_LIMIT:.0f}% of a core). Its timings in those runs include its own queueing; "
            "see [Load generator and machine](#load-generator-and-machine).",
            "",
        ]
    lines += [
        "## Topology",
        "",
        "Simulated by `lightcone up`: every user entry and every edge↔core link is a latency "
        "proxy delaying each direction by half the RTT (Azure backbone medians, "
        "`shared/data/rtt_ms.csv`) plus a last-mile access RTT for users. The fiber floor is "
        "great-circle distance / 100 km per ms of RTT (light in fiber).",
        "",
    ]
    lines += _table(
        [
            "user city",
            "nearest edge",
            "fiber floor to edge",
            "simulated RTT to edge",
            "fiber floor to core",
            "simulated RTT to central node",
            "edge↔core link RTT",
        ],
        [
            [
                f"{c.name} (`{code}`)",
                f"`{c.edge}`",
                f"{c.edge_floor:.1f}",
                f"{c.edge_rtt:.1f}",
                f"{c.central_floor:.1f}",
                f"{c.central_rtt:.1f}",
                f"{c.link_rtt:.1f}",
            ]
            for code, c in b.cities.items()
        ],
    )
    lines += ["## Results", ""]
    lines += [
        "Each cell: **p50** / p95 / p99 in ms, then the expected p50 from the simulated "
        "network alone (see [Method](#method)), the number of samples and the spread of the "
        "per-repeat medians.",
        "",
    ]
    for kind in ("suggest_http", "suggest_ws", "cursor_same"):
        lines += [f"### {KINDS[kind]}", ""] + _kind_table(b, kind)
    lines += [
        "### Edge vs central, and the cost of strict",
        "",
        "Ratios of p50s (below 1: the edge is faster), and what strict mode adds to the p50 "
        "over tolerant, next to the round trip it should cost.",
        "",
    ]
    lines += _comparison_table(b)
    lines += [f"### {KINDS['cursor_cross']}", "", *_kind_table(b, "cursor_cross")]
    lines += [
        "By pair (mover's city → receiver's city): p50 ms, and in parentheses the expected p50 "
        "(both users' one-way legs, half a tick, and between two edges or in strict mode "
        "the legs edge → core → edge).",
        "",
        *_cross_tables(b),
    ]
    lines += ["## Expectations", ""] + _checks_table(found)
    lines += _interpretation(b, found)
    if plots:
        lines += ["## Plots", ""]
        for plot in plots:
            lines += [f"![{plot}](plots/{plot})", ""]
    lines += [
        "## Load generator and machine",
        "",
        "CPU in % of one core, averaged over each locust run (locust: mean / peak over ~0.5 s "
        "windows). `up (proxies)` is the `lightcone up` process, which carries every simulated "
        "link; `others` is everything else on the machine (other engineers' jobs included).",
        "",
    ]
    lines += _table(
        [
            "run",
            "scenario",
            "repeat",
            "users",
            "samples",
            "locust",
            "up (proxies)",
            "core",
            "edges",
            "others",
            "machine busy",
            "load avg",
            "",
        ],
        cpu_rows,
    )
    if warnings:
        lines += ["### Warning: load generator CPU", ""]
        lines += [f"- {w}" for w in warnings] + [""]
    else:
        lines += [
            f"No run had locust above {CPU_LIMIT:.0f}% CPU, by its own log (“CPU usage above "
            "90%”) or by our measurement.",
            "",
        ]
    lines += _machine(r)
    lines += ["## Runs and files", ""]
    lines += _table(
        ["run", "scenario", "repeat", "exit", "failures", "files"],
        [
            [
                str(run["n"]),
                run["scenario"],
                str(run["repeat"]),
                str(run["exit_code"]),
                str(run.get("failures", _failures(b, run))),
                _links(b, run),
            ]
            for run in b.runs
        ],
    )
    lines += [
        "Each run's locust command is in `results.json` (`runs[].command`), with the "
        "`LIGHTCONE_*` variables that `lightcone bench` set for it (targets, scenario, "
        "expected mode, output folder, room prefix).",
        "",
    ]
    lines += _method(b)
    return "\n".join(lines).rstrip() + "\n"


def _failures(b: Bench, run: dict[str, Any]) -> int:
    path = b.out / run["dir"] / "locust_stats.csv"
    if not path.exists():
        return 0
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row.get("Name") == "Aggregated":
                return int(row.get("Failure Count") or 0)
    return 0


def _machine(r: dict[str, Any]) -> list[str]:
    env = r["environment"]
    versions = ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items())
    load_before = env.get("loadavg") or []
    load_after = r.get("load_after") or []
    lines = [
        "### Machine and software",
        "",
        f"- Machine: {env.get('cpu')} × {env.get('cpus')} CPUs, {env.get('mem_gb')} GB RAM; "
        f"{env.get('platform')}; host `{env.get('host')}`.",
        f"- Load average (1, 5, 15 min): {load_before} at the start, {load_after} at the end.",
        f"- Python {env.get('python')} (`{env.get('python_executable')}`); {versions}.",
        f"- Tree: `{env.get('git')}`; working directory `{env.get('cwd')}`.",
        f"- `LIGHTCONE_*` variables set: {env.get('lightcone_env') or 'none'}.",
        "- The load generator (one locust process), the latency proxies (one `lightcone up` "
        "process), the core and the edges share these CPUs with whatever else runs on the "
        "machine: numbers on a shared, noisy machine move by a few ms between repeats; read "
        "them side by side (edge vs central, tolerant vs strict in the same repeat), not as "
        "absolutes.",
        "",
    ]
    return lines


def _span(values: Iterable[float], fmt: str = "+.1f") -> str:
    """``"+1.9…+2.6"`` (or one value, or ``"—"``) of the values that are numbers."""
    found = sorted(v for v in values if not math.isnan(v))
    if not found:
        return "—"
    if f"{found[0]:{fmt}}" == f"{found[-1]:{fmt}}":
        return f"{found[0]:{fmt}}"
    return f"{found[0]:{fmt}}…{found[-1]:{fmt}}"


def _interpretation(b: Bench, found: list[Check]) -> list[str]:
    """What the numbers say, from the numbers; where an expectation is off, what explains it."""
    lines = ["### Reading the numbers", ""]
    cities = b.cities
    far = {code: c for code, c in cities.items() if c.far}
    suggest = ("suggest_http", "suggest_ws")
    edge_over = [
        b.p50(k, code, "edge", "tolerant") - c.edge_rtt
        for code, c in cities.items()
        for k in suggest
    ]
    central_over = [
        b.p50(k, code, "central", "tolerant") - c.central_rtt
        for code, c in far.items()
        for k in suggest
    ]
    lines.append(
        f"- **What the stack adds to physics.** Suggestion p50s sit {_span(edge_over)} ms above "
        f"the simulated RTT at the edge and {_span(central_over)} ms above it through the "
        "central node. That is the load generator, the edge, and the simulation itself: every "
        "simulated leg is a pass through an asyncio proxy in the `lightcone up` process."
    )
    calibration = {c["label"]: c for c in b.results.get("calibration") or []}
    if len(calibration) == 3:
        direct, near, remote = calibration.values()
        per_pass_near = (near["p50_ms"] - near["rtt_ms"] - direct["p50_ms"]) / 2
        per_pass_far = (remote["p50_ms"] - remote["rtt_ms"] - direct["p50_ms"]) / 2
        lines.append(
            "- **Calibration** (before any load; one idle sequential client in the bench "
            "process, `http.client` keep-alive, `GET /suggest?q=sao`): "
            f"{direct['label']} p50 {direct['p50_ms']:.2f} ms; {near['label']} "
            f"{near['p50_ms']:.2f} ms for a simulated {near['rtt_ms']:.1f}; {remote['label']} "
            f"{remote['p50_ms']:.2f} ms for a simulated {remote['rtt_ms']:.1f}. The edge answers "
            "in a fraction of a millisecond, so each pass through a proxy adds about "
            f"{per_pass_near:.1f} ms (short delays) to {per_pass_far:.1f} ms (long delays) on "
            "top of its delay: the proxies wait with `asyncio.sleep` on the standard asyncio "
            "loop, whose epoll timeout is rounded up to whole milliseconds and fires late, more "
            "so for long sleeps. A real network has no such cost; the simulation overstates "
            "every leg slightly, the same way for edge and central. What locust shows beyond "
            "the calibration is the load generator under load and the busy machine."
        )
    tick = b.tick
    if far:
        strict_over = [
            b.p50(k, code, "edge", "strict") - b.p50(k, code, "edge", "tolerant") - c.link_rtt
            for code, c in far.items()
            for k in suggest
        ]
        central_cost = [
            b.p50(k, code, "central", "strict") - b.p50(k, code, "central", "tolerant")
            for code in cities
            for k in suggest
        ]
        core_link = next(iter(cities.values())).core_link_rtt
        lines.append(
            f"- **The cost of strict suggestions** is one edge↔core round trip: at far edges "
            f"strict − tolerant exceeds the link RTT by {_span(strict_over)} ms (two more proxy "
            "passes, on the link, and the core answering the sync). Through the central node, "
            f"whose link to the core is {core_link:.1f} ms, strict costs {_span(central_cost)} "
            "ms: the same sync, next door."
        )
    same = [
        b.p50("cursor_same", code, "edge", "tolerant") - c.edge_rtt for code, c in cities.items()
    ]
    if tick is not None and any(not math.isnan(v) for v in same):
        lines.append(
            f"- **Cursors, tolerant, same edge**: p50 − user RTT = {_span(same)} ms. A move waits "
            f"for the edge's next tick (uniform in 0…{tick} ms, median {tick / 2:g}), then goes "
            "out to the room: half a tick plus the stack's overhead, as predicted."
        )
    if far:
        pairs = [
            (
                b.p50("cursor_same", code, "edge", "strict"),
                b.p50("cursor_same", code, "central", "tolerant"),
            )
            for code in far
        ]
        lines.append(
            "- **Strict cursors at the edge cost what central costs.** Same-city p50, edge "
            "strict vs central tolerant: "
            + ", ".join(
                f"`{code}` {_fmt(a)} vs {_fmt(c)} ms"
                for code, (a, c) in zip(far, pairs, strict=True)
            )
            + ". A strict move goes to the core and back before anyone sees it, which is the "
            "round trip a central deployment pays anyway; the edge only helps cursors in "
            "tolerant mode."
        )
    diffs: dict[str, list[float]] = defaultdict(list)
    for (sender, receiver, target, mode), values in b.pairs.items():
        if mode == "tolerant" and values:
            expected = b.expected("cursor_cross", receiver, target, mode, sender)
            diffs[target].append(_percentiles(values, (50,))[0] - expected)
    if diffs:
        lines.append(
            "- **Cursors between cities** (tables by pair) travel mover → its edge → core → the "
            "receiver's edge → receiver, so for two far cities the edge is no faster than "
            "central: both go through the core's region. Measured − expected per pair: "
            f"{_span(diffs.get('edge', []))} ms at the edges (four proxy passes per move), "
            f"{_span(diffs.get('central', []))} ms central (two)."
        )
    seen, possible = 0, 0.0
    for run in b.runs:
        counters = run.get("counters", {})
        if run["feature"] == "cursors" and counters.get("moves_sent"):
            users, size = run["users"], b.results["plan"]["room_size"]
            rooms = [min(size, users - i) for i in range(0, users, size)]
            share = sum(r * (r - 1) for r in rooms) / sum(rooms)
            seen += counters.get("moves_seen", 0)
            possible += counters["moves_sent"] * share
    if possible:
        lines.append(
            f"- **Coalescing.** Members saw {100 * seen / possible:.1f}% of the other members' "
            "moves; the rest were replaced by a newer move of the same member within one tick "
            "(the edge sends only the latest position), by design. Latency is measured on the "
            "moves that were delivered."
        )
    spreads = []
    for s in b.samples.values():
        medians = [float(np.median(v)) for v in s.by_repeat.values() if v]
        if len(medians) > 1:
            spreads.append(max(medians) - min(medians))
    others = [r.get("cpu", {}).get("others_pct", math.nan) for r in b.runs]
    lines.append(
        "- **Noise.** The largest spread of a p50 between repeats of one scenario was "
        f"{_span([max(spreads)] if spreads else [], '.1f')} ms. Other work on the machine took "
        f"{_span(others, '.0f')}% of a core during the runs (the `others` column below): this "
        "is a shared 2-core machine where the load generator, the proxies, the nodes and "
        "other engineers' jobs compete, so read the numbers side by side, not as absolutes."
    )
    off = [c for c in found if c.holds is False]
    if off:
        lines.append(
            "- **Expectations that do not hold**: "
            + "; ".join(f"{c.what} for `{c.city}` ({c.measured - c.expected:+.1f} ms)" for c in off)
            + ". Check the CPU table below for those runs: a saturated machine (locust, the "
            "proxies and the nodes share its cores) adds latency the simulated network does not "
            "have."
        )
    lines += [""]
    return lines


def _method(b: Bench) -> list[str]:
    return [
        "## Method",
        "",
        "- **Suggestions.** Each user is a person typing a city name (São Paulo, New York, "
        "Kraków, …; half as written, half in plain lower case) one character at a time, "
        "120–280 ms between keystrokes, stopping after 3 characters or more, then pausing "
        "0.5–1.5 s. Every keystroke sends its prefix at once, without waiting for the "
        "previous answer (a type-ahead box does not wait), and each answer is timed from its "
        "own request. Answers must carry the scenario's `mode`, or they count as failures. "
        "Each user's choices are seeded by its number, so every scenario replays the same "
        "typing.",
        "- **Cursors.** Each user joins a room (its `presence` must carry the scenario's "
        "`mode`) and moves at the set rate on average (each interval ±25 %, as a hand "
        "is no metronome and a strictly periodic mover would meet the edge's tick at the same "
        "few phases). The n-th move of a member goes to coordinates "
        "that encode n; the sender notes the send time under (member id, x, y) in a registry "
        "all users of the one locust process share, and a receiver looks each position it is "
        "shown up there: one clock, nothing added to the protocol. Moves coalesced by the edge "
        "(two moves in one tick: only the latest is sent) are never seen and not counted.",
        "- **Expected values** come from the simulated network alone: suggestions tolerant = "
        "the entry's RTT, strict = + one edge↔core RTT; cursors = the mover's and the "
        "receiver's one-way legs + half a tick, + the edge↔core legs when the move goes "
        "through the core (strict, or between two edges).",
        "- **Flags** are set through the demo's control API before each run (both features to "
        "the scenario's mode) and the run starts once every edge's `/status` shows them.",
        "- **Far cities** are user cities whose nearest edge is not in the core's region; the "
        "expectations are checked for them.",
        "",
    ]


# --- plots ---------------------------------------------------------------------------------


def plot(b: Bench) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    folder = b.out / "plots"
    folder.mkdir(exist_ok=True)
    made = []
    codes = list(b.cities)
    ms_format = FuncFormatter(lambda v, _: f"{v:g}")
    minor_format = FuncFormatter(lambda v, _: f"{v:g}" if f"{v:e}"[0] in "25" else "")
    for kind in PLOTTED:
        present = [s for s in SCENARIOS if any(b.samples.get((kind, c, *s)) for c in codes)]
        if not present:
            continue
        fig, ax = plt.subplots(figsize=(10, 6.5))
        width = 0.8 / len(present)
        for i, (target, mode) in enumerate(present):
            xs, p50s, p95s, p99s = [], [], [], []
            for j, code in enumerate(codes):
                (p50, p95, p99), _ = b.stats((kind, code, target, mode))
                x = j - 0.4 + width * (i + 0.5)
                xs.append(x)
                p50s.append(p50)
                p95s.append(p95)
                p99s.append(p99)
                expected = b.expected(kind, code, target, mode)
                floor = b.cities[code].floor(target)
                ax.hlines(expected, x - width / 2, x + width / 2, colors="black", linewidth=1.5)
                if floor > 0:
                    ax.hlines(
                        floor, x - width / 2, x + width / 2, colors="grey", linestyles="dotted"
                    )
            lower = [0.0] * len(xs)
            upper = [max(0.0, a - m) for a, m in zip(p95s, p50s, strict=True)]
            ax.bar(
                xs,
                p50s,
                width,
                color=COLORS[(target, mode)],
                label=f"{_scenario_label(target, mode)}: p50, whisker to p95",
                yerr=[lower, upper],
                capsize=2,
            )
            ax.plot(xs, p99s, "k.", markersize=4)
        ax.plot([], [], "k.", label="p99")
        ax.hlines([], 0, 0, colors="black", label="expected p50 (simulated network)")
        ax.hlines([], 0, 0, colors="grey", linestyles="dotted", label="fiber floor")
        ax.set_xticks(range(len(codes)))
        ax.set_xticklabels([f"{b.cities[c].name}\n({c} → {b.cities[c].edge})" for c in codes])
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ms_format)
        ax.yaxis.set_minor_formatter(minor_format)
        ax.set_ylabel("latency, ms (log scale)")
        ax.set_title(f"{_plain(KINDS[kind])} — by user city")
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3)
        fig.tight_layout()
        name = f"by_city_{kind}.png"
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
        made.append(name)

        cols = min(2, len(codes))
        rows = math.ceil(len(codes) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(10, 3.6 * rows), squeeze=False)
        for ax, code in zip(axes.flat, codes, strict=False):
            for target, mode in present:
                values = np.sort(
                    np.asarray(b.samples.get((kind, code, target, mode), Samples()).ok)
                )
                if values.size == 0:
                    continue
                ys = np.arange(1, values.size + 1) / values.size
                ax.plot(
                    values, ys, color=COLORS[(target, mode)], label=_scenario_label(target, mode)
                )
            c = b.cities[code]
            for rtt in sorted({c.edge_rtt, c.central_rtt}):
                ax.axvline(rtt, color="grey", linestyle="dotted", linewidth=1)
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(ms_format)
            ax.xaxis.set_minor_formatter(minor_format)
            ax.set_title(f"{c.name} ({code} → {c.edge}); dotted: simulated RTTs", fontsize=9)
            ax.set_xlabel("latency, ms (log scale)")
            ax.set_ylabel("fraction ≤ x")
            ax.grid(which="both", alpha=0.3)
            ax.legend(fontsize=7, loc="lower right")
        for ax in list(axes.flat)[len(codes) :]:
            ax.set_visible(False)
        fig.suptitle(f"{_plain(KINDS[kind])} — CDF per user city")
        fig.tight_layout()
        name = f"cdf_{kind}.png"
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
        made.append(name)
    return made


def _plain(text: str) -> str:
    return text.replace("`", "")


def build(out: Path) -> list[str]:
    """Write ``report.md`` and ``plots/`` for the bench folder ``out``; headline lines."""
    b = Bench(out)
    plots = plot(b)
    (out / "report.md").write_text(markdown(b, plots), encoding="utf-8")
    found = checks(b)
    lines = []
    for code in b.cities:
        cells = []
        for kind, label in (("suggest_ws", "suggest ws"), ("cursor_same", "cursors")):
            for target, mode in SCENARIOS:
                cells.append(
                    f"{label} {target[0]}{mode[0]} {_fmt(b.p50(kind, code, target, mode))}"
                )
        lines.append(f"  {code}: p50 ms  " + "  ".join(cells))
    held = sum(1 for c in found if c.holds)
    off = sum(1 for c in found if c.holds is False)
    lines.append(
        f"expectations for far cities: {held} of {len(found)} hold, {off} do not, "
        f"{len(found) - held - off} without data"
    )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m load.report BENCH_FOLDER")
        return 2
    for line in build(Path(args[0])):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
