"""The plots of ``report.md``: per kind of request, p50/p95/p99 by user city, and a CDF per city."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from load import bench_mesh
from load.plan import MODES
from load.report.data import KINDS, Bench, Samples
from load.report.tables import scenario_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure

PLOTTED = ("suggest_http", "suggest_ws", "suggest_ryw", "device_keystroke", "cursor_same")
PALETTES = {
    "edge": ("#1b9e77", "#3fb391", "#66c2a5", "#99d8c9"),
    "central": ("#d95f02", "#f07c2e", "#fc8d62", "#fdbb84"),
    "pop": ("#7570b3", "#8e8ac2", "#a9a6d1", "#cbc9e2"),
}
"""A hue per target, darker for weaker levels (in :data:`load.plan.MODES` order)."""


LEVEL_COLORS = dict(zip(MODES, ("#1b9e77", "#386cb0", "#7570b3", "#e6ab02"), strict=True))
"""One hue per level, for the plot that compares levels side by side."""


def color(target: str, mode: str) -> str:
    return PALETTES[target][MODES.index(mode)]


MESH_PLOT = "mesh_vs_core.png"
"""The mesh phase's plot (``mesh.png`` is the standalone ``load.bench_mesh``'s)."""
OWN = ("by_city_*.png", "cdf_*.png", "levels.png", MESH_PLOT)
"""The plots this module writes (a new bench removes them first; other plots stay)."""
Scenarios = list[tuple[str, str]]
"""(target, mode) of the scenarios with samples of a kind."""


def plot(b: Bench) -> list[str]:
    """Write ``plots/by_city_<kind>.png``, ``plots/cdf_<kind>.png``, ``plots/levels.png``
    and the mesh phase's :data:`MESH_PLOT` (those with data); their names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = b.out / "plots"
    folder.mkdir(exist_ok=True)
    made = []
    if len(b.levels(["suggest_http", "suggest_ws"])) > 1:
        fig = _levels(b)
        fig.savefig(folder / "levels.png", dpi=110)
        plt.close(fig)
        made.append("levels.png")
    for kind in PLOTTED:
        present = b.scenarios([kind])
        if not present:
            continue
        for name, draw in ((f"by_city_{kind}.png", _by_city), (f"cdf_{kind}.png", _cdfs)):
            fig = draw(b, kind, present)
            fig.savefig(folder / name, dpi=110)
            plt.close(fig)
            made.append(name)
    if b.mesh_pairs:
        bench_mesh.plot(b.mesh_pairs, folder / MESH_PLOT)
        made.append(MESH_PLOT)
    return made


def _by_city(b: Bench, kind: str, present: Scenarios) -> Figure:
    import matplotlib.pyplot as plt

    codes = list(b.cities)
    fig, ax = plt.subplots(figsize=(10, 6.5))
    width = 0.8 / len(present)
    for i, (target, mode) in enumerate(present):
        xs = [j - 0.4 + width * (i + 0.5) for j in range(len(codes))]
        _bars(ax, b, kind, target, mode, xs, width)
    ax.plot([], [], "k.", label="p99")
    ax.hlines([], 0, 0, colors="black", label="expected p50 (simulated network)")
    ax.hlines([], 0, 0, colors="grey", linestyles="dotted", label="fiber floor")
    ax.set_xticks(range(len(codes)))
    ax.set_xticklabels([f"{b.cities[c].name}\n({c} → {b.cities[c].edge})" for c in codes])
    ax.set_yscale("log")
    _ms_ticks(ax.yaxis)
    ax.set_ylabel("latency, ms (log scale)")
    ax.set_title(f"{_plain(KINDS[kind])} — by user city")
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3)
    fig.tight_layout()
    return fig


def _levels(b: Bench) -> Figure:
    """p50 at the edge by level, per user city, HTTP and websocket side by side; the link
    RTT above tolerant's for reference."""
    import matplotlib.pyplot as plt

    codes = list(b.cities)
    levels = b.levels(["suggest_http", "suggest_ws"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharey=True)
    width = 0.8 / len(levels)
    for ax, kind in zip(axes, ("suggest_http", "suggest_ws"), strict=True):
        for i, mode in enumerate(levels):
            xs = [j - 0.4 + width * (i + 0.5) for j in range(len(codes))]
            p50s = [b.p50(kind, code, "edge", mode) for code in codes]
            ax.bar(xs, p50s, width, color=LEVEL_COLORS[mode], label=mode)
        for j, code in enumerate(codes):
            c = b.cities[code]
            tolerant = b.p50(kind, code, "edge", "tolerant")
            ax.hlines(tolerant + c.link_rtt, j - 0.4, j + 0.4, colors="black", linestyles="dotted")
        ax.set_xticks(range(len(codes)))
        ax.set_xticklabels(
            [f"{b.cities[c].name.split(',')[0]}\n({c} → {b.cities[c].edge})" for c in codes],
            fontsize=8,
        )
        ax.set_yscale("log")
        _ms_ticks(ax.yaxis)
        ax.set_title(_plain(KINDS[kind]), fontsize=9)
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0].set_ylabel("p50 at the nearest edge, ms (log scale)")
    axes[0].hlines([], 0, 0, colors="black", linestyles="dotted", label="tolerant + link RTT")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=len(labels))
    fig.suptitle("The cost of each level at the edge (p50)")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def _bars(
    ax: Axes, b: Bench, kind: str, target: str, mode: str, xs: list[float], width: float
) -> None:
    """One scenario: a bar to the p50 of each city, a whisker to its p95, a dot at its p99,
    a line at its expected p50 and a dotted one at its fiber floor."""
    p50s, p95s, p99s = [], [], []
    for x, code in zip(xs, b.cities, strict=True):
        (p50, p95, p99), _ = b.stats((kind, code, target, mode))
        p50s.append(p50)
        p95s.append(p95)
        p99s.append(p99)
        expected = b.expected(kind, code, target, mode)
        floor = b.cities[code].floor(target)
        ax.hlines(expected, x - width / 2, x + width / 2, colors="black", linewidth=1.5)
        if floor > 0:
            ax.hlines(floor, x - width / 2, x + width / 2, colors="grey", linestyles="dotted")
    lower = [0.0] * len(xs)
    upper = [max(0.0, a - m) for a, m in zip(p95s, p50s, strict=True)]
    ax.bar(
        xs,
        p50s,
        width,
        color=color(target, mode),
        label=f"{scenario_label(target, mode)}: p50, whisker to p95",
        yerr=[lower, upper],
        capsize=2,
    )
    ax.plot(xs, p99s, "k.", markersize=4)


def _cdfs(b: Bench, kind: str, present: Scenarios) -> Figure:
    import matplotlib.pyplot as plt

    codes = list(b.cities)
    cols = min(2, len(codes))
    rows = math.ceil(len(codes) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(10, 3.6 * rows), squeeze=False)
    for ax, code in zip(axes.flat, codes, strict=False):
        for target, mode in present:
            values = np.sort(np.asarray(b.samples.get((kind, code, target, mode), Samples()).ok))
            if values.size == 0:
                continue
            ys = np.arange(1, values.size + 1) / values.size
            ax.plot(values, ys, color=color(target, mode), label=scenario_label(target, mode))
        c = b.cities[code]
        for rtt in sorted({c.edge_rtt, c.central_rtt}):
            ax.axvline(rtt, color="grey", linestyle="dotted", linewidth=1)
        ax.set_xscale("log")
        _ms_ticks(ax.xaxis)
        ax.set_title(f"{c.name} ({code} → {c.edge}); dotted: simulated RTTs", fontsize=9)
        ax.set_xlabel("latency, ms (log scale)")
        ax.set_ylabel("fraction ≤ x")
        ax.grid(which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    for ax in list(axes.flat)[len(codes) :]:
        ax.set_visible(False)
    fig.suptitle(f"{_plain(KINDS[kind])} — CDF per user city")
    fig.tight_layout()
    return fig


def _ms_ticks(axis: Axis) -> None:
    """Plain numbers on a log axis of milliseconds; minor ticks labelled at 2… and 5… only."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:e}"[0] in "25" else ""))


def _plain(text: str) -> str:
    return text.replace("`", "")
