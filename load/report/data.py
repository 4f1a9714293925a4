"""A finished ``lightcone bench`` folder, loaded: every sample, the user cities, the expectations.

What "expected" means is in :mod:`load.report`; :meth:`Bench.expected` computes it and
:func:`checks` compares it with the measured p50s of the far cities.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from load.bench_mesh import Pair
from load.plan import MODES, TARGETS

SCENARIOS = (
    ("edge", "tolerant"),
    ("edge", "strict"),
    ("central", "tolerant"),
    ("central", "strict"),
)
"""The four scenarios every feature has (the edge-vs-central comparison and the cursors)."""


KINDS = {
    "suggest_http": "Suggestions over HTTP (`GET /suggest`)",
    "suggest_ws": "Suggestions over the websocket (`suggest` → `suggestions`)",
    "suggest_ryw": "Suggestions: the read right after one's own search (read-your-writes)",
    "device_keystroke": "Keystrokes with the device rung (the pack, else the edge)",
    "cursor_same": "Cursors: a move seen by another member in the same city",
    "cursor_cross": "Cursors: a move seen by a member in another city",
}
LOADED = (*KINDS, "search_http", "pack")
"""What the report reads from ``raw.csv.gz``: :data:`KINDS`, the searches of session runs and
the device users' pack requests."""
RUNGS = ("device", "pop", "edge", "core")
"""Which rung answered, nearest the user first."""


TOLERANCE_MS = 5.0
LEVEL_TARGET_MS = 1.0
"""The issue's target: bounded and read-mostly session p50 within this of tolerant at the edge."""
DEVICE_TARGET_MS = 1.0
"""The issue's target: a keystroke the pack answers, in under this."""


@dataclass
class Samples:
    ok: list[float] = field(default_factory=list)
    by_repeat: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    failed: int = 0
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    rungs: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    """Successful answers' times by the rung that answered (rows that name one)."""
    saw_write: list[bool] = field(default_factory=list)
    """Read-your-writes reads: whether each answer's version had reached the search's."""

    def add(self, row: dict[str, str], repeat: int) -> None:
        if row["ok"] == "1":
            ms = float(row["ms"])
            self.ok.append(ms)
            self.by_repeat[repeat].append(ms)
            if row.get("rung"):
                self.rungs[row["rung"]].append(ms)
            if row.get("saw_write"):
                self.saw_write.append(row["saw_write"] == "1")
        else:
            self.failed += 1
            self.errors[error_code(row["error"])] += 1

    @property
    def count(self) -> int:
        return len(self.ok) + self.failed

    def share(self, rung: str) -> float:
        """Share of the successful answers with a rung that ``rung`` gave."""
        total = sum(len(v) for v in self.rungs.values())
        return len(self.rungs.get(rung, [])) / total if total else math.nan


def error_code(error: str) -> str:
    """What a failure row's error is, for counting: the server's code where it sent one
    (``HTTP 503 core_unreachable``, ``strict_timeout``), else the exception's name."""
    parts = error.split(": ")
    if len(parts) > 1 and parts[0] in ("CatchResponseError", "ServerError"):
        return parts[1].strip() or parts[0]
    return parts[0] or "error"


PHASES = ("before", "during", "after")
"""A cut run's parts, by when each request was sent: before the cut, during it, after it
was healed."""


@dataclass
class Cut:
    """The answers of one (target, level)'s cut runs, by phase, behind the cut edge or not."""

    region: str = ""
    cities: tuple[str, ...] = ()
    seconds: list[float] = field(default_factory=list)
    relink_s: list[float] = field(default_factory=list)
    parts: dict[tuple[str, bool], Samples] = field(default_factory=lambda: defaultdict(Samples))
    """(phase, behind the cut edge) → the answers."""


Key = tuple[str, str, str, str]  # kind, city, target, mode


def percentiles(values: Sequence[float], qs: Sequence[float] = (50, 95, 99)) -> list[float]:
    if not values:
        return [math.nan] * len(qs)
    return [float(v) for v in np.percentile(np.asarray(values), qs)]


def fmt(ms: float, digits: int = 1) -> str:
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
        """The entry's RTT; through the PoP (which sits with the user), a miss's."""
        return self.central_rtt if target == "central" else self.edge_rtt

    def floor(self, target: str) -> float:
        return self.central_floor if target == "central" else self.edge_floor

    def link(self, target: str) -> float:
        return self.core_link_rtt if target == "central" else self.link_rtt


class Bench:
    """A finished bench folder, loaded."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.results: dict[str, Any] = json.loads((out / "results.json").read_text())
        self.runs: list[dict[str, Any]] = self.results["runs"]
        self.tick = self.results.get("tick_ms")
        self.cities = self._cities()
        self.mesh: dict[str, Any] = self.results.get("mesh") or {}
        """The mesh phase's sizes and figures (``load.bench.Bench.mesh``); empty without it."""
        self.mesh_pairs = mesh_pairs(self.results)
        self.publish_delay = self.results.get("publish_delay_ms")
        self.samples: dict[Key, Samples] = defaultdict(Samples)
        self.pairs: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)
        self.cuts: dict[tuple[str, str], Cut] = defaultdict(Cut)
        for run in self.runs:
            if run.get("cut"):
                self._load_cut(run)
            else:
                self._load(run)

    def scenarios(self, kinds: Sequence[str]) -> list[tuple[str, str]]:
        """(target, level) with samples of any of ``kinds``, in :data:`TARGETS` × :data:`MODES`
        order."""
        present = {(t, m) for (k, _, t, m), s in self.samples.items() if k in kinds and s.count}
        return [(t, m) for t in TARGETS for m in MODES if (t, m) in present]

    def levels(self, kinds: Sequence[str]) -> list[str]:
        present = {m for _, m in self.scenarios(kinds)}
        return [m for m in MODES if m in present]

    def targets(self, kinds: Sequence[str]) -> list[str]:
        present = {t for t, _ in self.scenarios(kinds)}
        return [t for t in TARGETS if t in present]

    def runs_of(self, feature: str, target: str, mode: str) -> list[dict[str, Any]]:
        """The healthy (uncut) runs of a scenario."""
        return [
            r
            for r in self.runs
            if r["feature"] == feature
            and r["target"] == target
            and r["mode"] == mode
            and not r.get("cut")
        ]

    def _cities(self) -> dict[str, City]:
        topology = self.results.get("topology") or {}  # none when only the mesh phase ran
        core = topology.get("core_region", "")
        links = {
            n["region"]: n.get("link_rtt_ms", math.nan)
            for n in topology.get("nodes", [])
            if n["kind"] == "edge"
        }
        by_user: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for e in topology.get("entries", []):
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

    def _rows(self, run: dict[str, Any]) -> list[dict[str, str]]:
        path = self.out / run["dir"] / "raw.csv.gz"
        if not path.exists():
            return []
        with gzip.open(path, "rt", newline="", encoding="utf-8") as f:
            return [row for row in csv.DictReader(f) if row["kind"] in LOADED]

    def _load(self, run: dict[str, Any]) -> None:
        target, mode, repeat = run["target"], run["mode"], run["repeat"]
        for row in self._rows(run):
            kind = row["kind"]
            self.samples[(kind, row["city"], target, mode)].add(row, repeat)
            if kind == "cursor_cross" and row["ok"] == "1":
                self.pairs[(row["peer"], row["city"], target, mode)].append(float(row["ms"]))

    def _load_cut(self, run: dict[str, Any]) -> None:
        """A cut run's answers, by phase: each request placed by when it was *sent* (its
        answer's time less its latency), against the cut's times from the test's start."""
        cut = run["cut"]
        test_started = run.get("counters", {}).get("test_started_at")
        if not test_started or "cut_at" not in cut:
            return
        into = self.cuts[(run["target"], run["mode"])]
        into.region, into.cities = cut["region"], tuple(cut["cities"])
        start, end = cut["cut_at"] - test_started, cut["healed_at"] - test_started
        into.seconds.append(end - start)
        if "relink_s" in cut:
            into.relink_s.append(cut["relink_s"])
        for row in self._rows(run):
            if row["kind"] not in ("suggest_http", "suggest_ws", "suggest_ryw"):
                continue
            sent = float(row["t_s"]) - float(row["ms"]) / 1000
            phase = "before" if sent < start else "during" if sent < end else "after"
            into.parts[(phase, row["city"] in into.cities)].add(row, run["repeat"])

    # --- expectations ----------------------------------------------------------------------

    def expected(self, kind: str, city: str, target: str, mode: str, peer: str = "") -> float:
        c = self.cities[city]
        if kind == "device_keystroke" and mode == "tolerant":
            return math.nan  # a mix of the device's answers and the edge's
        if kind.startswith("suggest") or kind == "device_keystroke":
            if target == "pop" and mode in ("tolerant", "bounded"):
                return math.nan  # a mix of the PoP's hits and the edge's answers
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
        return percentiles(s.ok), s

    def p50(self, kind: str, city: str, target: str, mode: str) -> float:
        return self.stats((kind, city, target, mode))[0][0]


def mesh_pairs(results: dict[str, Any]) -> list[Pair]:
    """The mesh phase's city pairs, as :func:`load.bench_mesh.measure` gave them."""
    return [Pair(**pair) for pair in (results.get("mesh") or {}).get("pairs", [])]


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
        found += level_checks(b, code)
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


def level_checks(b: Bench, code: str) -> list[Check]:
    """The issue's targets for the levels and rungs, for one far city: bounded and session
    within :data:`LEVEL_TARGET_MS` of tolerant at the edge, a read-your-writes read within the
    publish delay of a session read, a device answer under :data:`DEVICE_TARGET_MS`."""
    found = []
    near = LEVEL_TARGET_MS
    for kind, label in (("suggest_http", "HTTP"), ("suggest_ws", "websocket")):
        tolerant = b.p50(kind, code, "edge", "tolerant")
        for level in ("bounded", "session"):
            if not b.samples.get((kind, code, "edge", level)):
                continue
            found.append(
                Check(
                    f"suggest {label}: {level} − tolerant p50 at the edge ≈ 0 (target ±{near:g})",
                    code,
                    0.0,
                    b.p50(kind, code, "edge", level) - tolerant,
                    -near,
                    near,
                )
            )
    if b.samples.get(("suggest_ryw", code, "edge", "session")):
        delay = float(b.publish_delay) if b.publish_delay is not None else math.nan
        found.append(
            Check(
                "session: read-your-writes read − session read p50 at the edge ≤ publish delay",
                code,
                0.0,
                b.p50("suggest_ryw", code, "edge", "session")
                - b.p50("suggest_http", code, "edge", "session"),
                -TOLERANCE_MS,
                delay,
            )
        )
    device = b.samples.get(("device_keystroke", code, "edge", "tolerant"))
    if device and device.rungs.get("device"):
        found.append(
            Check(
                f"device: a keystroke the pack answers, p50 < {DEVICE_TARGET_MS:g} ms",
                code,
                0.0,
                percentiles(device.rungs["device"], (50,))[0],
                0.0,
                DEVICE_TARGET_MS,
            )
        )
    return found
