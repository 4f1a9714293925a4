"""CPU used by named groups of processes and by the whole machine while a load runs."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from load.machine import machine_cpu_s, process_cpu_s

Sample = tuple[float, dict[str, float], float | None]
"""(Unix time, CPU seconds so far by group, busy CPU seconds of the machine so far)."""


@dataclass
class CpuMeter:
    """CPU used by named processes and by the whole machine, in % of one core."""

    pids: dict[str, list[int]]
    samples: list[Sample] = field(default_factory=list)

    def sample(self) -> None:
        used = {name: sum(_cpu_s(p) for p in pids) for name, pids in self.pids.items()}
        try:
            busy: float | None = machine_cpu_s()[0]
        except (OSError, ValueError):
            busy = None
        self.samples.append((time.time(), used, busy))

    def summary(self, start: float | None = None, stop: float | None = None) -> dict[str, Any]:
        """Mean and peak (over sampling windows) between ``start`` and ``stop`` (Unix times):
        the test itself, without locust's start-up and exit."""
        inside = [
            s
            for s in self.samples
            if (start is None or s[0] >= start - 0.3) and (stop is None or s[0] <= stop + 0.3)
        ]
        samples = inside if len(inside) >= 2 else self.samples
        if len(samples) < 2:
            return {}
        (t0, first, m0), (t1, last, m1) = samples[0], samples[-1]
        wall = t1 - t0
        mean = {name: 100 * (last[name] - first[name]) / wall for name in first}
        result: dict[str, Any] = {
            "window_s": round(wall, 2),
            "mean_pct": {k: round(v, 1) for k, v in mean.items()},
            "max_pct": {k: round(v, 1) for k, v in _peaks(samples).items()},
        }
        if m0 is not None and m1 is not None:
            busy = 100 * (m1 - m0) / wall
            result["machine_busy_pct"] = round(busy, 1)
            result["cores"] = os.cpu_count() or 1
            result["others_pct"] = round(max(0.0, busy - sum(mean.values())), 1)
        return result


def _peaks(samples: list[Sample]) -> dict[str, float]:
    """The highest % of each group over one sampling window (of at least 0.3 s)."""
    peaks: dict[str, float] = {}
    for (ta, a, _), (tb, b, _) in zip(samples, samples[1:], strict=False):
        if tb - ta >= 0.3:
            for name in a:
                peaks[name] = max(peaks.get(name, 0.0), 100 * (b[name] - a[name]) / (tb - ta))
    return peaks


def _cpu_s(pid: int) -> float:
    """CPU seconds of ``pid`` so far; 0 once it is gone (or unreadable)."""
    try:
        return process_cpu_s(pid)
    except (OSError, IndexError, ValueError):
        return 0.0
