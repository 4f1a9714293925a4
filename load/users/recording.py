"""What every user reports: locust request events, each request's exact time, a few counters,
and the CPU of the locust process during the test."""

from __future__ import annotations

import csv
import gzip
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
from locust import User

from load.machine import self_cpu_s
from load.users.settings import SETTINGS

RAW_FIELDS = ("t_s", "kind", "city", "peer", "ms", "ok", "error", "rung", "saw_write")
"""One row per request: when it was answered (s since the test started), what and for whom,
its time, whether it succeeded (else the error), which rung answered it (``device``, ``pop``,
``edge``, ``core``; empty where that means nothing, as for cursors), and for a
read-your-writes read whether its answer's version had reached the search's (``1``/``0``)."""


@dataclass
class RawRecorder:
    """Every request's exact response time, kept in memory and written once at the end.

    locust buckets response times (1 ms under 100 ms, 10 ms above) before computing
    percentiles; the report computes its percentiles from these rows instead. Requests whose
    ``context`` has no ``kind`` (not ours) are kept with kind ``other``.
    """

    started: float = field(default_factory=time.time)
    rows: list[tuple[float, str, str, str, float, int, str, str, str]] = field(default_factory=list)
    closed: bool = False

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        response_length: int,
        exception: BaseException | None = None,
        context: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if self.closed or response_time is None:
            return
        ctx = context or {}
        self.rows.append(
            (
                time.time() - self.started,
                str(ctx.get("kind", "other")),
                str(ctx.get("city", "")),
                str(ctx.get("peer", "")),
                float(response_time),
                0 if exception else 1,
                "" if exception is None else f"{type(exception).__name__}: {exception}"[:200],
                str(ctx.get("rung", "")),
                str(ctx.get("saw_write", "")),
            )
        )

    def write(self, path: Path) -> None:
        self.closed = True
        path.parent.mkdir(parents=True, exist_ok=True)
        opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
        with opener(path, "wt", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(RAW_FIELDS)
            for t, kind, city, peer, ms, ok, error, rung, saw in self.rows:
                out.writerow((f"{t:.3f}", kind, city, peer, f"{ms:.3f}", ok, error, rung, saw))


@dataclass
class Counters:
    """Per-run counts the stats do not show (written to ``counters.json``)."""

    moves_sent: int = 0
    moves_seen: int = 0
    """Positions of other members received whose send time was known."""
    moves_unknown: int = 0
    """Positions of other members received with no known send time (should stay 0)."""
    suggest_sent: int = 0
    """Suggestion requests that left the user (to a PoP, an edge or central): not the
    keystrokes the device answered."""
    suggest_answered: int = 0
    wrong_mode: int = 0
    keystrokes: int = 0
    """Keystrokes of device users, answered on the device or not."""
    device_answered: int = 0
    packs: int = 0
    """Pack requests of device users (``GET /suggest/pack``), 304s included."""
    packs_unchanged: int = 0
    pack_bytes: int = 0
    """Size of the last pack a device user received (JSON)."""
    pack_wire_bytes: int = 0
    """Its ``Content-Length`` as sent (gzip when the user accepts it, as locust's does)."""
    searches: int = 0
    searches_committed: int = 0
    cache: dict[str, int] = field(default_factory=dict)
    """Answers through a PoP by their ``X-Cache-Status`` (``HIT``, ``MISS``, ``EXPIRED`` …)."""

    def as_dict(self) -> dict[str, Any]:
        return {**vars(self), "cache": dict(self.cache)}


COUNTERS = Counters()


def fire(
    user: User,
    request_type: str,
    name: str,
    ms: float,
    length: int,
    context: dict[str, Any],
    exception: BaseException | None = None,
) -> None:
    user.environment.events.request.fire(
        request_type=request_type,
        name=name,
        response_time=ms,
        response_length=length,
        exception=exception,
        context=context,
    )


def ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


class WrongMode(Exception):
    """An answer served in another mode than the scenario expects (flag not applied)."""


class ServerError(Exception):
    """The server answered an ``error`` message."""


@dataclass
class CpuWatch:
    """This process's CPU during the test (``getrusage``): mean, and peak over 0.5 s windows.

    Measured from inside, so locust's start-up and its HTML report at exit do not count.
    """

    window_s: float = 0.5
    started: float = 0.0
    started_cpu: float = 0.0
    peak_pct: float = 0.0
    greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        self.started, self.started_cpu, self.peak_pct = time.time(), self_cpu_s(), 0.0
        self.greenlet = gevent.spawn(self._watch)

    def _watch(self) -> None:
        last_t, last_cpu = self.started, self.started_cpu
        while True:
            gevent.sleep(self.window_s)
            t, cpu = time.time(), self_cpu_s()
            if t - last_t > 0:
                self.peak_pct = max(self.peak_pct, 100 * (cpu - last_cpu) / (t - last_t))
            last_t, last_cpu = t, cpu

    def stop(self) -> dict[str, float]:
        if self.greenlet is not None:
            self.greenlet.kill(block=False)
        stopped = time.time()
        wall = max(stopped - self.started, 1e-9)
        return {
            "test_started_at": round(self.started, 3),
            "test_stopped_at": round(stopped, 3),
            "cpu_pct": round(100 * (self_cpu_s() - self.started_cpu) / wall, 1),
            "cpu_peak_pct": round(self.peak_pct, 1),
        }


def mark_started(at: float) -> None:
    """Write the test's start (``time.time()``) to ``started`` in ``LIGHTCONE_OUT_DIR``."""
    if SETTINGS.out_dir is not None:
        (SETTINGS.out_dir / "started").write_text(f"{at:.3f}\n")


def write_outputs(recorder: RawRecorder, extra: dict[str, float] | None = None) -> None:
    """Write ``raw.csv.gz`` and ``counters.json`` to ``LIGHTCONE_OUT_DIR`` (if set)."""
    if SETTINGS.out_dir is None or recorder.closed:
        recorder.closed = True
        return
    recorder.write(SETTINGS.out_dir / "raw.csv.gz")
    counters = {**COUNTERS.as_dict(), "raw_rows": len(recorder.rows), **(extra or {})}
    (SETTINGS.out_dir / "counters.json").write_text(json.dumps(counters, indent=2) + "\n")
