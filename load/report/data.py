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


TOLERANCE_MS = 5.0


@dataclass
class Samples:
    ok: list[float] = field(default_factory=list)
    by_repeat: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    failed: int = 0
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))


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
        return percentiles(s.ok), s

    def p50(self, kind: str, city: str, target: str, mode: str) -> float:
        return self.stats((kind, city, target, mode))[0][0]


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
