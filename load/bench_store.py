"""Searches committed per second through the core's store: ``python -m load.bench_store``.

What a core node does with a batch of searches an edge sends, minus the rest of the node:
:meth:`core_region.store.Store.log_searches` (one transaction, one version, per batch), called
in a loop by a writer that waits for each commit before the next, as a node's write lock
makes it. Side by side in one run, for batches of 1 and of 50 searches:

* ``sqlite``: the embedded default, a file with the store's own pragmas (WAL,
  ``synchronous=FULL``);
* ``postgres x1``: one writer on a throwaway PostgreSQL (:mod:`deploy.local.postgres`, fsync
  on as a real server runs; ``--no-fsync`` turns it off);
* ``postgres x2``: two writers on one database at once, each in its own process with its own
  store and connection pool, as two core nodes would be: they queue on the ``version`` row.

``--plan-cache-mode force_custom_plan`` sets that PostgreSQL setting on each database: asyncpg
prepares every statement, and after five runs PostgreSQL may keep a generic plan made while
the tables were nearly empty (docs/BENCHMARKS.md shows what that costs two writers).

Each case runs ``--seconds`` (default 5) or until each writer has made ``--max-commits``
commits, whichever is first; a fresh database per case; everything on loopback. Progress once a
second; a table at the end (searches per second, commits per second, commit latency p50/p99).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import multiprocessing.synchronize
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import asyncpg

from core_region.db import is_postgres
from core_region.store import LoggedSearch, Store
from deploy.local.postgres import Cluster, PostgresMissing, bindir, running
from load.machine import cpu_model, loadavg
from shared.folding import fold

BATCHES = (1, 50)
TERMS = 1000
"""Distinct terms the searches cycle through (a search updates its term's row)."""
SOURCES = 64
"""Distinct hashed sources (a term records at most 16, as the core does)."""
MAX_SECONDS = 60.0
"""Longest case (``--seconds`` is capped here): the run stays bounded."""
READY_TIMEOUT_S = 60.0
"""Longest wait for a writer to open its store."""


@dataclass(frozen=True)
class Case:
    engine: str
    writers: int
    batch: int

    @property
    def name(self) -> str:
        return f"{self.engine} x{self.writers}" if self.engine == "postgres" else self.engine


@dataclass(frozen=True)
class Result:
    case: Case
    searches: int
    commits: int
    seconds: float
    latencies_ms: list[float]

    def row(self) -> str:
        lat = sorted(self.latencies_ms)
        p50 = statistics.median(lat)
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        return (
            f"| {self.case.name} | {self.case.batch} | **{self.searches / self.seconds:,.0f}** "
            f"| {self.commits / self.seconds:,.0f} | {p50:.2f} / {p99:.2f} |"
        )


def _search(writer: int, n: int) -> LoggedSearch:
    term = f"Benchtown {n % TERMS}"
    return LoggedSearch(f"w{writer}-{n}", fold(term), term, term, "syd", f"s{n % SOURCES}")


async def _write(
    location: str,
    writer: int,
    batch: int,
    seconds: float,
    max_commits: int,
    go: multiprocessing.synchronize.Event,
    ready: multiprocessing.synchronize.Barrier,
    done: Synchronized[int],
) -> tuple[int, int, float, list[float]]:
    store = await Store.open(location if is_postgres(location) else Path(location))
    try:
        await asyncio.to_thread(ready.wait, READY_TIMEOUT_S)
        await asyncio.to_thread(go.wait, READY_TIMEOUT_S)
        latencies: list[float] = []
        n = 0
        started = time.perf_counter()
        deadline = started + seconds
        while len(latencies) < max_commits and time.perf_counter() < deadline:
            searches = [_search(writer, n + i) for i in range(batch)]
            n += batch
            before = time.perf_counter()
            result = await store.log_searches(searches)
            latencies.append((time.perf_counter() - before) * 1000)
            assert result.fresh == batch, result
            done.value = n
        return n, len(latencies), time.perf_counter() - started, latencies
    finally:
        await store.close()


def _writer(
    location: str,
    writer: int,
    batch: int,
    seconds: float,
    max_commits: int,
    go: multiprocessing.synchronize.Event,
    ready: multiprocessing.synchronize.Barrier,
    done: Synchronized[int],
    results: Any,
) -> None:
    """One writer process: its own store and event loop; puts its figures on ``results``."""
    results.put(asyncio.run(_write(location, writer, batch, seconds, max_commits, go, ready, done)))


async def _migrate(location: str) -> None:
    store = await Store.open(location if is_postgres(location) else Path(location))
    await store.close()


def run_case(case: Case, location: str, seconds: float, max_commits: int) -> Result:
    """Run ``case``'s writers on ``location`` (a fresh database), printing progress."""
    asyncio.run(_migrate(location))  # once, before the writers race to it
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    ready = ctx.Barrier(case.writers + 1)
    results = ctx.Queue()
    counters = [ctx.Value("q", 0, lock=False) for _ in range(case.writers)]
    args = (case.batch, seconds, max_commits, go, ready)
    processes = [
        ctx.Process(target=_writer, args=(location, w, *args, counters[w], results), daemon=True)
        for w in range(case.writers)
    ]
    for process in processes:
        process.start()
    try:
        ready.wait(READY_TIMEOUT_S)
        go.set()
        started = time.monotonic()
        figures: list[tuple[int, int, float, list[float]]] = []
        while len(figures) < case.writers:
            try:
                figures.append(results.get(timeout=1.0))
            except Exception:  # queue.Empty: a second passed
                if not any(p.is_alive() for p in processes) and results.empty():
                    raise RuntimeError(f"{case.name}: a writer died") from None
            done = sum(c.value for c in counters)
            took = time.monotonic() - started
            print(f"  {took:4.1f} s  {done:>8,} searches  {done / took:>8,.0f}/s", flush=True)
    finally:
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
    return Result(
        case,
        searches=sum(f[0] for f in figures),
        commits=sum(f[1] for f in figures),
        seconds=max(f[2] for f in figures),
        latencies_ms=[ms for f in figures for ms in f[3]],
    )


async def _set_plan_cache_mode(url: str, mode: str) -> None:
    db = await asyncpg.connect(url)
    try:
        name = url.rsplit("/", 1)[1]  # made by Cluster.new_database: a plain identifier
        await db.execute(f"ALTER DATABASE {name} SET plan_cache_mode = {mode}")
    finally:
        await db.close()


def _locations(
    cases: list[Case], folder: Path, fsync: bool, plan_cache_mode: str
) -> Iterator[tuple[Case, str]]:
    with ExitStack() as stack:
        cluster: Cluster | None = None
        for n, case in enumerate(cases):
            if case.engine == "sqlite":
                yield case, str(folder / f"sqlite-{n}.db")
                continue
            if cluster is None:
                cluster = stack.enter_context(running(fsync=fsync))
                print(
                    f"PostgreSQL on port {cluster.port} (fsync {'on' if fsync else 'off'}, "
                    f"plan_cache_mode {plan_cache_mode})"
                )
            url = cluster.new_database("bench")
            if plan_cache_mode != "auto":
                asyncio.run(_set_plan_cache_mode(url, plan_cache_mode))
            yield case, url


def machine_notes() -> str:
    try:
        postgres = bindir() / "postgres"
        done = subprocess.run([postgres, "--version"], capture_output=True, text=True, check=False)
        version = done.stdout.strip()
    except PostgresMissing:
        version = "PostgreSQL not installed"
    return (
        f"{os.cpu_count()} CPUs ({cpu_model()}), load average {loadavg()}, "
        f"Python {sys.version.split()[0]}, {version}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per case [5, at most 60]")
    parser.add_argument("--max-commits", type=int, default=100_000, help="per writer and case")
    parser.add_argument("--no-fsync", action="store_true", help="PostgreSQL without fsync")
    parser.add_argument(
        "--plan-cache-mode",
        choices=("auto", "force_custom_plan", "force_generic_plan"),
        default="auto",
        help="PostgreSQL's plan_cache_mode on each database [auto, as the store runs]",
    )
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    args = parser.parse_args()
    seconds = min(max(args.seconds, 0.5), MAX_SECONDS)
    engines = [("sqlite", 1)] + ([] if args.sqlite_only else [("postgres", 1), ("postgres", 2)])
    cases = [Case(engine, writers, batch) for batch in BATCHES for engine, writers in engines]
    print(machine_notes(), flush=True)
    results: list[Result] = []
    try:
        with tempfile.TemporaryDirectory(prefix="lightcone-bench-store-") as tmp:
            for n, (case, location) in enumerate(
                _locations(cases, Path(tmp), not args.no_fsync, args.plan_cache_mode), start=1
            ):
                print(f"[{n}/{len(cases)}] {case.name}, batches of {case.batch}", flush=True)
                results.append(run_case(case, location, seconds, args.max_commits))
    except PostgresMissing as exc:
        print(f"bench_store: {exc} (or run with --sqlite-only)")
        return 3
    print()
    print("| store | batch | searches/s | commits/s | commit p50 / p99 ms |")
    print("|---|---|---|---|---|")
    for result in results:
        print(result.row())
    return 0


if __name__ == "__main__":
    sys.exit(main())
