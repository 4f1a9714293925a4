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

import sys
from collections.abc import Sequence
from pathlib import Path

from load.report_data import SCENARIOS, Bench, checks, fmt
from load.report_markdown import markdown
from load.report_plots import plot


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
                cells.append(f"{label} {target[0]}{mode[0]} {fmt(b.p50(kind, code, target, mode))}")
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
