"""Writes a bench folder's ``report.md`` and ``plots/``, and the headline lines the bench
prints (what "expected" means: :mod:`load.report`)."""

from __future__ import annotations

import math
from pathlib import Path

from load.bench_mesh import Pair
from load.report.data import Bench, checks, fmt
from load.report.markdown import markdown
from load.report.plots import plot


def build(out: Path) -> list[str]:
    """Write ``report.md`` and ``plots/`` for the bench folder ``out``; headline lines."""
    b = Bench(out)
    plots = plot(b)
    (out / "report.md").write_text(markdown(b, plots), encoding="utf-8")
    found = checks(b)
    lines = []
    for code in b.cities:
        for kind, label in (
            ("suggest_http", "http"),
            ("suggest_ws", "ws"),
            ("device_keystroke", "device"),
            ("cursor_same", "cursors"),
        ):
            cells = [
                f"{target}·{mode} {fmt(b.p50(kind, code, target, mode))}"
                for target, mode in b.scenarios([kind])
            ]
            if cells:
                lines.append(f"  {code} {label:<7} p50 ms  " + "  ".join(cells))
    if b.runs:
        held = sum(1 for c in found if c.holds)
        off = sum(1 for c in found if c.holds is False)
        lines.append(
            f"expectations for far cities: {held} of {len(found)} hold, {off} do not, "
            f"{len(found) - held - off} without data"
        )
    return lines + mesh_lines(b.mesh_pairs)


def mesh_lines(pairs: list[Pair]) -> list[str]:
    """One line per city pair of the mesh phase: mesh and core relay p50, own sum, target."""
    lines = []
    for p in pairs:
        mesh, core = p.p50_ms.get("mesh", math.nan), p.p50_ms.get("core", math.nan)
        met = "—" if math.isnan(mesh) else ("met" if mesh <= p.target_ms else "MISSED")
        lines.append(
            f"  mesh {p.label:<24} p50 ms  mesh {fmt(mesh)}  core relay {fmt(core)}  "
            f"own sum {p.own_sum_ms:.1f}  floor {p.fiber_one_way_ms:.1f}  target {met}"
        )
    return lines
