"""Several core nodes side by side: ``python -m load.bench_nodes``.

Real ``lightcone core`` / ``lightcone edge`` processes on loopback (as ``lightcone up`` runs
them, :class:`deploy.local.supervisor.Supervisor`), a throwaway PostgreSQL (``fsync`` on, as
a real server runs: :mod:`deploy.local.postgres`) and a throwaway redis-server
(:mod:`deploy.local.redis`), all in one run:

1. **Searches committed per second** through core nodes: SQLite and one node, PostgreSQL and
   one node, PostgreSQL and two nodes (with the broker); each with two edges (both on the one
   node, or one per node), a fresh database each. ``--connections`` closed-loop keep-alive
   clients per edge (one process: this one) post ``/search`` with unique ids for
   ``--seconds``; the committed searches are counted in the database at the end, and the rate
   is committed / time from the start until the last one committed (the rows' ``at``). The
   CPU of the generator, of each node and of the servers is read from ``/proc``
   (:class:`load.cpu_meter.CpuMeter`), to say what bounds the figure.
2. **Write → every edge**, two nodes and one edge on each: ``--writes`` admin writes
   (``PUT /admin/terms/...``), alternating the node written to; for each, from the write's
   answer to the moment each edge serves the term (``GET /suggest`` polled every
   :data:`POLL_S`), split into "edge on the node written to" and "edge on the other node".
   Target (issue 11): p99 ≤ ``LIGHTCONE_PUBLISH_DELAY_MS`` + 50 ms.
3. **Cursor latency across nodes**: one tolerant room, one mover on an edge of node A moving
   at ``--hz``; one listener on another edge of node A (the single-core path) and one on the
   edge of node B (through the broker), at the same time. Each move carries its send time
   (:mod:`load.bench_cursors`: one process, one clock).
4. **Failover**: on a database of its own (see :func:`run`), node B, and for each try a fresh
   node A and an edge given ``--core-url A,B``, on A: seconds from the ``kill -9`` of A, or
   from the cut that black-holes the edge's link to A (a proxy that stops forwarding without
   a reset, :class:`deploy.local.latency.LatencyProxy`), until its ``/status`` says ``core``
   = B and ``link`` = up (polled every :data:`POLL_S`); and whether it loaded a snapshot on B
   (it should not: one database). ``--repeats`` times each.

The nodes run with their default settings (but for ``--quick``), the default corpus unless
``--corpus``; the edges with their per-client HTTP rate lifted (:data:`EDGE_ENV`).

Everything is bounded (each phase's time, each wait's deadline), on 127.0.0.1, and every
process it starts is stopped by PID on the way out. Progress once a second; tables at the end;
a plot of (2) and (3) (``--plot``). ``--quick`` is a smoke run of a few seconds in all, with
link timings shortened (heartbeat 0.2 s, link timeout 1 s), so its failover figures are not
the defaults'. Figures and what bounds them: docs/BENCHMARKS.md, "Several core nodes".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import asyncpg
import httpx

from core_region.db import is_postgres
from core_region.settings import CoreSettings
from deploy.local.latency import LatencyProxy
from deploy.local.postgres import Cluster, PostgresMissing, running as postgres_running
from deploy.local.redis import (
    RedisMissing,
    Server,
    program as redis_program,
    running as redis_running,
)
from deploy.local.supervisor import Child, Supervisor
from load.bench_cursors import ROOM, Clock, lean_member, mover, probe, ws_url
from load.bench_store import machine_notes
from load.cpu_meter import CpuMeter
from load.histogram import parse_histogram, parse_sum
from load.machine import ROOT, shown_path
from load.serving.http_client import http_load_requests
from shared.config import from_environ
from shared.protocol import Join, encode

ADMIN_TOKEN = "bench-admin-token"
LINK_TOKEN = "bench-link-token"
EDGE_ENV = {"LIGHTCONE_HTTP_RATE": "1000000", "LIGHTCONE_HTTP_BURST": "1000000"}
"""The edges' per-client HTTP rate lifted: every client of the bench is one address."""
QUICK_LINK = {
    "LIGHTCONE_HEARTBEAT_S": "0.2",
    "LIGHTCONE_LINK_TIMEOUT_S": "1.0",
    "LIGHTCONE_RECONNECT_MAX_S": "0.3",
}
"""``--quick`` only, on every node: a black hole is noticed within a second."""
PLOT = ROOT / "docs" / "bench" / "plots" / "nodes_latency.png"

MAX_SECONDS = 60.0
"""Longest load phase (``--seconds`` is capped here): the run stays bounded."""
MAX_WRITES = 2000
"""Most admin writes in phase 2 (``--writes`` is capped here)."""
MAX_REPEATS = 10
"""Most failovers of each kind (``--repeats`` is capped here)."""
MAX_CONNECTIONS = 512
"""Most clients per edge (``--connections`` is capped here): half an edge's default
``LIGHTCONE_MAX_CLIENT_CONNECTIONS`` for one address, the bench's."""
MAX_HZ = 100.0
"""Fastest mover (``--hz`` is capped here): half an edge's default ``LIGHTCONE_WS_RATE``."""
READY_TIMEOUT_S = 120.0
"""Longest wait for a node to start (the default corpus into a fresh PostgreSQL: ~5 s)."""
DRAIN_TIMEOUT_S = 30.0
"""Longest wait, after the load, for queued searches to be committed."""
SERVED_TIMEOUT_S = 10.0
"""Longest wait for an edge to serve one write (a miss is reported, not waited for)."""
FAILOVER_TIMEOUT_S = 30.0
"""Longest wait for an edge to be up on the other node."""
FIRST_LINK_TIMEOUT_S = 5.0
"""Longest wait for a new edge's ``/status`` to show it up on the first node it was given."""
POLL_S = 0.001
"""Pause between two polls of an edge in phases 2 and 4: the figures' resolution is this plus
one request (about 1 ms on loopback)."""
WRITE_GAP_S = 0.05
"""Phase 2: a random pause of up to this between writes, so they do not fall in step with the
nodes' heartbeats."""
TERMS = 1000
"""Distinct terms the searches of phase 1 cycle through."""
IDS = 1 << 40
"""Phase 1's ids are ``<case>-<n>`` for n below this: unique for any run that fits in time."""
CURSOR_WARMUP_S = 1.0
"""Phase 3: time for the joins to reach every edge before moves are timed."""


def write_target_ms() -> float:
    """Issue 11's target for a write's p99 to every edge: the nodes' publish delay
    (``LIGHTCONE_PUBLISH_DELAY_MS``, from this environment, which they inherit) + 50 ms."""
    return from_environ(CoreSettings, dict(os.environ)).publish_delay_ms + 50.0


def say(text: str) -> None:
    print(text, flush=True)


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile ``q`` of ``values`` (NaN when empty)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


# --- the processes -------------------------------------------------------------------------


@dataclass
class Stage:
    """The servers every phase shares, and where the nodes of the run put their files."""

    work: Path
    postgres: Cluster
    redis: Server
    corpus: Path | None
    link_env: dict[str, str]
    names: dict[str, int] = field(default_factory=dict)

    def name(self, kind: str) -> str:
        """A fresh name for a node's log and data folder: ``kind``, ``kind-2``, ..."""
        n = self.names[kind] = self.names.get(kind, 0) + 1
        return kind if n == 1 else f"{kind}-{n}"

    def start_core(self, supervisor: Supervisor, store: str, *, broker: bool) -> Child:
        """A core node on ``store`` (a SQLite file's folder, or a PostgreSQL URL)."""
        name = self.name("core")
        args = ["core", "--port", "0"]
        env = {"LIGHTCONE_ADMIN_TOKEN": ADMIN_TOKEN, "LIGHTCONE_LINK_TOKEN": LINK_TOKEN}
        if is_postgres(store):
            args += ["--data-dir", str(self.work / name)]
            env["LIGHTCONE_STORE"] = store
        else:
            args += ["--data-dir", store]
        if broker:
            env["LIGHTCONE_BROKER"] = self.redis.url
        if self.corpus is not None:
            args += ["--corpus", str(self.corpus)]
        ready = "Application startup complete"
        return supervisor.start(name, args, {**env, **self.link_env}, ready, READY_TIMEOUT_S)

    def start_edge(self, supervisor: Supervisor, core_urls: str) -> Child:
        name = self.name("edge")
        args = ["edge", "--port", "0", "--region", "syd", "--core-url", core_urls]
        env = {"LIGHTCONE_LINK_TOKEN": LINK_TOKEN, **EDGE_ENV, **self.link_env}
        return supervisor.start(name, args, env, "loaded snapshot", READY_TIMEOUT_S)

    async def edges(self, supervisor: Supervisor, *core_urls: str) -> list[Child]:
        """One edge per URL, started at the same time."""
        return list(
            await asyncio.gather(
                *(asyncio.to_thread(self.start_edge, supervisor, url) for url in core_urls)
            )
        )


def process_tree(pid: int) -> list[int]:
    """``pid`` and its children (PostgreSQL: the postmaster and its backends, now)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            if int(stat.read_text().rpartition(")")[2].split()[1]) == pid:
                children.append(int(stat.parent.name))
    return [pid, *children]


# --- 1. searches committed per second ------------------------------------------------------


class Searches(Sequence[bytes]):
    """``POST /search`` requests, each with its own id: item ``n`` searches for one of
    :data:`TERMS` terms with the id ``<prefix>-<n>``. The load generator sends items ``i``,
    ``i + 1``, ... from each connection's own offset, so no id is sent twice."""

    def __init__(self, prefix: str, host: str) -> None:
        self.prefix = prefix
        self.head = f"POST /search HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"

    def __len__(self) -> int:
        return IDS

    @overload
    def __getitem__(self, n: int) -> bytes: ...
    @overload
    def __getitem__(self, n: slice) -> Sequence[bytes]: ...
    def __getitem__(self, n: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(n, slice):
            raise TypeError("one request at a time")
        body = f'{{"id": "{self.prefix}-{n}", "q": "Benchtown {n % TERMS}"}}'.encode()
        return f"{self.head}Content-Length: {len(body)}\r\n\r\n".encode() + body


@dataclass(frozen=True)
class Committed:
    count: int
    last_at: float | None
    """Unix time the last one was committed (stamped by the core as it writes)."""


async def committed(store: str) -> Committed:
    """The searches in ``store`` (a PostgreSQL URL or a SQLite file)."""
    query = "SELECT count(*), max(at) FROM searches"
    if is_postgres(store):
        db = await asyncpg.connect(store)
        try:
            row = await db.fetchrow(query)
        finally:
            await db.close()
        assert row is not None
        return Committed(int(row[0]), row[1])

    def read() -> Committed:
        with contextlib.closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as db:
            count, last = db.execute(query).fetchone()
        return Committed(int(count), last)

    return await asyncio.to_thread(read)


WRITES = "lightcone_write_seconds"
"""The core's histogram of search-batch commits: its count is commits, its sum the time the
node's write path was busy."""


def write_path(core: Child) -> tuple[float, float]:
    """Commits of search batches on ``core`` so far, and the seconds they took."""
    with urllib.request.urlopen(f"{core.url}/metrics/", timeout=5) as response:
        text = response.read().decode()
    buckets = parse_histogram(text, WRITES)
    return (buckets[-1][1] if buckets else 0.0), (parse_sum(text, WRITES) or 0.0)


@dataclass
class Throughput:
    name: str
    committed: int
    seconds: float
    answers: int
    not_200: int
    p50_ms: float
    p99_ms: float
    commits: float
    """Search-batch commits, all nodes."""
    write_s: float
    """Seconds of those commits, each from its start (the node's write lock included) to its
    end, summed: over the run's time, the mean number of commits in flight."""
    links: int
    """Edge links: each commits one batch at a time (the core reads a link's next frame once
    the last is committed)."""
    cpu: dict[str, Any]

    @property
    def rate(self) -> float:
        return self.committed / self.seconds if self.seconds > 0 else 0.0

    def row(self) -> str:
        per_commit = self.committed / self.commits if self.commits else float("nan")
        commit_ms = 1000 * self.write_s / self.commits if self.commits else float("nan")
        return (
            f"| {self.name} | **{self.rate:,.0f}** | {self.committed:,} in {self.seconds:.1f} s "
            f"| {self.not_200:,} | {self.p50_ms:.0f} / {self.p99_ms:.0f} "
            f"| {self.commits / self.seconds:,.0f} × {per_commit:.1f} | {commit_ms:.1f} "
            f"| {self.in_flight:.2f} of {self.links} | {self.cpu_text()} |"
        )

    @property
    def in_flight(self) -> float:
        """Mean search-batch commits in flight (at most one per edge link)."""
        return self.write_s / self.seconds if self.seconds > 0 else 0.0

    def cpu_text(self) -> str:
        mean: dict[str, float] = self.cpu.get("mean_pct", {})
        text = ", ".join(f"{name} {value:.0f}" for name, value in mean.items())
        if "machine_busy_pct" in self.cpu:
            text += (
                f"; others {self.cpu['others_pct']:.0f}; machine {self.cpu['machine_busy_pct']:.0f}"
                f" of {100 * self.cpu['cores']}"
            )
        return text

    def bound(self) -> str:
        """What bounds this case, first that applies: the generator's one core; the commits
        (every link with a batch in flight: a link commits one frame at a time); the machine's
        cores. With the facts behind it."""
        mean: dict[str, float] = self.cpu.get("mean_pct", {})
        busy, cores = self.cpu.get("machine_busy_pct"), self.cpu.get("cores", 1)
        generator = mean.get("generator", 0.0)
        per_commit = self.committed / self.commits if self.commits else float("nan")
        commit_ms = 1000 * self.write_s / self.commits if self.commits else float("nan")
        machine = (
            ""
            if busy is None
            else f"; the machine {busy:.0f} % busy of {100 * cores} "
            f"(processes not of this case: {self.cpu['others_pct']:.0f})"
        )
        if generator >= 85:
            return f"the load generator ({generator:.0f} % of its one core){machine}"
        if self.in_flight >= 0.8 * self.links:
            return (
                f"the commits: each edge link had a batch being committed "
                f"{self.in_flight / self.links:.0%} of the time, one after the other "
                f"({per_commit:.1f} searches and {commit_ms:.1f} ms each, lock waits included)"
                f"{machine}"
            )
        if busy is not None and busy >= 85 * cores:
            return f"the CPU{machine}"
        return f"none saturated: clients × answer time (a closed loop){machine}"


async def run_throughput(
    name: str,
    store: str,
    cores: list[Child],
    edges: list[Child],
    servers: dict[str, list[int]],
    args: argparse.Namespace,
) -> Throughput:
    """Load ``edges`` with searches for ``args.seconds``; count what ``store`` committed."""
    groups = {"generator": [os.getpid()]}
    labels = ["core"] if len(cores) == 1 else [f"core {chr(65 + n)}" for n in range(len(cores))]
    groups.update({label: [c.pid] for label, c in zip(labels, cores, strict=True)})
    groups["edges"] = [e.pid for e in edges]
    groups.update(servers)
    meter = CpuMeter(groups)
    say(f"{name}: {len(edges)} × {args.connections} clients for {args.seconds:g} s ...")
    prefix = name.replace(" ", "").replace(",", "")
    done = asyncio.Event()

    async def progress() -> None:
        started = time.monotonic()
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await done.wait()
            meter.sample()
            now = await committed(store)
            took = time.monotonic() - started
            say(f"  {took:4.1f} s  {now.count:>8,} committed  {now.count / took:>7,.0f}/s")

    before = [await asyncio.to_thread(write_path, core) for core in cores]
    started_at = time.time()
    meter.sample()
    watcher = asyncio.create_task(progress())
    loads = [
        http_load_requests(
            "127.0.0.1",
            port(edge.url),
            Searches(f"{prefix}{n}", edge.url.removeprefix("http://")),
            args.connections,
            args.seconds,
        )
        for n, edge in enumerate(edges)
    ]
    results = await asyncio.gather(*loads)
    stopped_at = time.time()
    meter.sample()
    # Searches answered ``queued`` (202) are committed later: wait until the count settles.
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    answers = sum(r.requests for r in results)
    last = await committed(store)
    while last.count < answers and time.monotonic() < deadline:
        await asyncio.sleep(0.1)  # polling the database with a deadline
        last = await committed(store)
    done.set()
    await watcher
    after = [await asyncio.to_thread(write_path, core) for core in cores]
    p50s = [r.p50_s for r in results if r.p50_s is not None]
    p99s = [r.p99_s for r in results if r.p99_s is not None]
    return Throughput(
        name,
        last.count,
        (last.last_at or stopped_at) - started_at,
        answers,
        sum(r.errors for r in results),
        1000 * statistics.median(p50s) if p50s else float("nan"),
        1000 * max(p99s) if p99s else float("nan"),
        sum(a[0] - b[0] for a, b in zip(after, before, strict=True)),
        sum(a[1] - b[1] for a, b in zip(after, before, strict=True)),
        len(edges),
        meter.summary(started_at, stopped_at),
    )


# --- 2. write -> every edge ----------------------------------------------------------------


@dataclass
class Spread:
    """Write → edge latencies in ms, by where the edge is; writes an edge never served."""

    same: list[float] = field(default_factory=list)
    other: list[float] = field(default_factory=list)
    put_ms: list[float] = field(default_factory=list)
    missed: int = 0

    def cases(self) -> list[tuple[str, list[float]]]:
        return [("edge on the node written to", self.same), ("edge on the other node", self.other)]


async def served(client: httpx.AsyncClient, edge: Child, term: str, t0: float) -> float | None:
    """Milliseconds from ``t0`` until ``edge`` serves ``term`` (``None``: not within
    :data:`SERVED_TIMEOUT_S`)."""
    deadline = t0 + SERVED_TIMEOUT_S
    while time.perf_counter() < deadline:
        answer = await client.get(f"{edge.url}/suggest", params={"q": term.lower()})
        at = time.perf_counter()
        if answer.status_code == 200 and any(i["term"] == term for i in answer.json()["items"]):
            return (at - t0) * 1000
        await asyncio.sleep(POLL_S)
    return None


async def run_writes(cores: list[Child], edges: list[Child], writes: int) -> Spread:
    """``writes`` admin writes alternating between two ``cores``; ``edges[i]`` is on
    ``cores[i]``."""
    spread = Spread()
    nan = float("nan")
    rng = random.Random(11)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    say(f"write → every edge: {writes} writes, alternating the node written to ...")
    last_said = time.monotonic()
    async with httpx.AsyncClient(headers=headers, timeout=10) as admin:
        clients = [httpx.AsyncClient(timeout=10) for _ in edges]
        try:
            for n in range(writes):
                target = n % len(cores)
                term = f"Writetown {n:05d}"
                before = time.perf_counter()
                put = await admin.put(f"{cores[target].url}/admin/terms/{term}", json={"weight": 9})
                t0 = time.perf_counter()
                put.raise_for_status()
                spread.put_ms.append((t0 - before) * 1000)
                times = await asyncio.gather(
                    *(served(c, e, term, t0) for c, e in zip(clients, edges, strict=True))
                )
                for i, ms in enumerate(times):
                    if ms is None:
                        spread.missed += 1
                    else:
                        (spread.same if i == target else spread.other).append(ms)
                if time.monotonic() - last_said >= 1.0:
                    last_said = time.monotonic()
                    same, other = times[target], times[1 - target]
                    say(
                        f"  {n + 1:>5} writes  the last served in {same or nan:.0f} ms on the"
                        f" node written to, {other or nan:.0f} ms on the other"
                    )
                await asyncio.sleep(rng.uniform(0, WRITE_GAP_S))
        finally:
            for client in clients:
                await client.aclose()
    return spread


# --- 3. cursors across nodes ---------------------------------------------------------------


@dataclass
class CursorPaths:
    """Move → receive latencies in ms, for each listener."""

    same: list[float]
    cross: list[float]
    sent: int

    def cases(self) -> list[tuple[str, list[float]]]:
        return [("same node (two edges of A)", self.same), ("across nodes (edge of B)", self.cross)]


async def run_cursors(
    mover_edge: Child, same: Child, cross: Child, hz: float, seconds: float
) -> CursorPaths:
    """One mover on ``mover_edge``; listeners on ``same`` (same node) and ``cross``."""
    say(
        f"cursors: one mover at {hz:g} Hz, listeners on the same node and across, {seconds:g} s ..."
    )
    near, far, stop = Clock(), Clock(), asyncio.Event()
    far.sent = near.sent  # one mover, one clock
    listeners = [
        asyncio.create_task(probe(ws_url(same), near, stop)),
        asyncio.create_task(probe(ws_url(cross), far, stop)),
    ]
    member = await lean_member(ws_url(mover_edge))
    try:
        member.send(encode(Join(ROOM, "mover", "#336699")))
        moving = asyncio.create_task(mover(0, member, hz, near, stop))
        await asyncio.sleep(CURSOR_WARMUP_S)  # the joins reach every edge
        sent0 = len(near.sent)
        near.recording = far.recording = True
        started = time.monotonic()
        while (took := time.monotonic() - started) < seconds:
            await asyncio.sleep(min(1.0, seconds - took))
            say(
                f"  {time.monotonic() - started:4.1f} s  received: same node {len(near.latencies)}"
                f", across {len(far.latencies)}"
            )
        near.recording = far.recording = False
        sent = len(near.sent) - sent0
        stop.set()
        await asyncio.gather(moving, *listeners, return_exceptions=True)
    finally:
        stop.set()
        member.close()
    return CursorPaths(near.latencies, far.latencies, sent)


# --- 4. failover ---------------------------------------------------------------------------


@dataclass
class Failover:
    fault: str
    seconds: float
    """NaN: the edge never was on A (the log lines why are printed)."""
    snapshot: bool


async def up_on(
    client: httpx.AsyncClient, edge: Child, core: str, t0: float, timeout_s: float
) -> float:
    """Seconds from ``t0`` until ``edge``'s ``/status`` says it is up on ``core``."""
    deadline = t0 + timeout_s
    status: dict[str, Any] = {}
    while time.perf_counter() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            status = (await client.get(f"{edge.url}/status")).json()
            if status["core"] == core and status["link"] == "up":
                return time.perf_counter() - t0
        await asyncio.sleep(POLL_S)
    tail = "".join(edge.lines[-10:])
    raise RuntimeError(f"{edge.name} not up on {core} in {timeout_s:g} s: {status}\n{tail}")


def snapshots(edge: Child) -> int:
    return sum("loaded snapshot" in line for line in edge.lines)


async def fail_over(
    stage: Stage, supervisor: Supervisor, store: str, survivor: Child, fault: str
) -> Failover:
    """A fresh node A on ``store``, an edge given A then ``survivor``; A killed or cut."""
    a = await asyncio.to_thread(stage.start_core, supervisor, store, broker=True)
    hole: LatencyProxy | None = None
    try:
        first = a.url
        if fault == "black hole":
            hole = LatencyProxy("127.0.0.1", port(a.url), name="to-a")
            await hole.start()
            first = f"http://127.0.0.1:{hole.port}"
        edge = await asyncio.to_thread(stage.start_edge, supervisor, f"{first},{survivor.url}")
        async with httpx.AsyncClient(timeout=5) as client:
            try:
                await up_on(client, edge, first, time.perf_counter(), FIRST_LINK_TIMEOUT_S)
            except RuntimeError as exc:
                say(f"  {fault}: the edge is not on the fresh node, not measured: {exc}")
                edge.stop()
                return Failover(fault, float("nan"), False)
            loaded = snapshots(edge)
            t0 = time.perf_counter()
            if hole is not None:
                hole.cut()
            else:
                a.kill()
            seconds = await up_on(client, edge, survivor.url, t0, FAILOVER_TIMEOUT_S)
        edge.stop()
        return Failover(fault, seconds, snapshots(edge) > loaded)
    finally:
        a.stop()
        if hole is not None:
            await hole.close()


# --- the run -------------------------------------------------------------------------------


@dataclass
class Results:
    throughput: list[Throughput] = field(default_factory=list)
    writes: Spread | None = None
    cursors: CursorPaths | None = None
    failovers: list[Failover] = field(default_factory=list)


async def run(stage: Stage, args: argparse.Namespace, results: Results) -> None:
    servers = {
        "postgres": process_tree(stage.postgres.pid or 0),
        "redis": [stage.redis.pid or 0],
    }
    steps = 6
    say(f"[1/{steps}] SQLite, one node")
    with Supervisor(stage.work / "logs" / "sqlite") as supervisor:
        folder = stage.work / "sqlite"
        core = await asyncio.to_thread(stage.start_core, supervisor, str(folder), broker=False)
        edges = await stage.edges(supervisor, core.url, core.url)
        db = str(folder / "lightcone.db")
        results.throughput.append(
            await run_throughput("SQLite, 1 node", db, [core], edges, {}, args)
        )

    say(f"[2/{steps}] PostgreSQL, one node")
    with Supervisor(stage.work / "logs" / "postgres-1") as supervisor:
        store = stage.postgres.new_database("nodes")
        core = await asyncio.to_thread(stage.start_core, supervisor, store, broker=False)
        edges = await stage.edges(supervisor, core.url, core.url)
        servers["postgres"] = process_tree(stage.postgres.pid or 0)
        result = await run_throughput("PostgreSQL, 1 node", store, [core], edges, servers, args)
        results.throughput.append(result)

    say(f"[3/{steps}] PostgreSQL, two nodes and the broker")
    with Supervisor(stage.work / "logs" / "postgres-2") as supervisor:
        store = stage.postgres.new_database("nodes")
        a = await asyncio.to_thread(stage.start_core, supervisor, store, broker=True)
        b = await asyncio.to_thread(stage.start_core, supervisor, store, broker=True)
        on_a, on_b = await stage.edges(supervisor, a.url, b.url)
        servers["postgres"] = process_tree(stage.postgres.pid or 0)
        name = "PostgreSQL, 2 nodes"
        results.throughput.append(
            await run_throughput(name, store, [a, b], [on_a, on_b], servers, args)
        )

        say(f"[4/{steps}] write → every edge")
        results.writes = await run_writes([a, b], [on_a, on_b], args.writes)

        say(f"[5/{steps}] cursors: the same node and across nodes")
        (also_on_a,) = await stage.edges(supervisor, a.url)
        results.cursors = await run_cursors(on_a, also_on_a, on_b, args.hz, args.seconds)

    # A database of its own, so that every failover starts from the same scene (on the one
    # above, a new edge used to be closed "too slow" before the fault: BENCHMARKS.md).
    say(f"[6/{steps}] failover, {args.repeats} × each, on a fresh database")
    with Supervisor(stage.work / "logs" / "failover") as supervisor:
        store = stage.postgres.new_database("failover")
        b = await asyncio.to_thread(stage.start_core, supervisor, store, broker=True)
        for n in range(args.repeats):
            for fault in ("kill -9", "black hole"):
                failover = await fail_over(stage, supervisor, store, b, fault)
                say(f"  {fault} #{n + 1}: {failover.seconds:.2f} s, snapshot {failover.snapshot}")
                results.failovers.append(failover)


def report(results: Results, args: argparse.Namespace, target: float) -> None:
    say("")
    say(f"## Searches committed per second ({args.connections} clients per edge, two edges)")
    say("")
    say(
        "| case | searches/s | committed | not 200 | answer p50 / p99 ms "
        "| commits/s × searches | commit ms | commits in flight | mean CPU, % of one core |"
    )
    say("|---|---|---|---|---|---|---|---|---|")
    for t in results.throughput:
        say(t.row())
    say("")
    for t in results.throughput:
        say(f"- {t.name}: bound by {t.bound()}")
    if len(results.throughput) == 3 and results.throughput[1].rate > 0:
        one, two = results.throughput[1].rate, results.throughput[2].rate
        sqlite = results.throughput[0].rate
        say(
            f"- ratios: PostgreSQL 1 node / SQLite {one / sqlite:.2f}; "
            f"2 nodes / 1 node {two / one:.2f}"
        )
    if results.writes is not None:
        w = results.writes
        say("")
        say(f"## Write → every edge ({len(w.put_ms)} writes; target p99 ≤ {target:.0f} ms)")
        say("")
        say("| edge | served | p50 ms | p99 ms | max ms | target |")
        say("|---|---|---|---|---|---|")
        for name, values in w.cases():
            p99 = pct(values, 0.99)
            verdict = "met" if p99 <= target else "NOT met"
            say(
                f"| {name} | {len(values)} | {pct(values, 0.5):.1f} | {p99:.1f} "
                f"| {max(values, default=float('nan')):.1f} | {verdict} |"
            )
        say(
            f"\nadmin write answered: p50 {pct(w.put_ms, 0.5):.1f} ms, "
            f"p99 {pct(w.put_ms, 0.99):.1f} ms;"
            f" never served within {SERVED_TIMEOUT_S:g} s: {w.missed}"
        )
    if results.cursors is not None:
        c = results.cursors
        say("")
        say(f"## Cursor move → receive ({c.sent} moves at {args.hz:g} Hz)")
        say("")
        say("| listener | received | p50 ms | p99 ms |")
        say("|---|---|---|---|")
        for name, values in c.cases():
            say(f"| {name} | {len(values)} | {pct(values, 0.5):.1f} | {pct(values, 0.99):.1f} |")
    if results.failovers:
        say("")
        say("## Failover: until the edge is up on the other node")
        say("")
        say("| fault | runs (s) | median s | snapshot loaded |")
        say("|---|---|---|---|")
        for fault in ("kill -9", "black hole"):
            runs = [f for f in results.failovers if f.fault == fault]
            if runs:
                each = ", ".join(f"{f.seconds:.2f}" for f in runs)
                measured = [f.seconds for f in runs if not math.isnan(f.seconds)]
                median = statistics.median(measured) if measured else float("nan")
                loaded = sum(f.snapshot for f in runs)
                say(f"| {fault} | {each} | {median:.2f} | {loaded} of {len(runs)} |")


def plot(results: Results, path: Path, target_ms: float) -> None:
    """Write → edge and cursor latency distributions, one curve per case (empirical CDFs);
    the write → edge target as a vertical line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    panels: list[tuple[str, list[tuple[str, list[float]]], float | None]] = []
    if results.writes is not None:
        panels.append(("write → edge, from the write's answer", results.writes.cases(), target_ms))
    if results.cursors is not None:
        panels.append(("cursor move → receive", results.cursors.cases(), None))
    for ax, (title, cases, target) in zip(axes, panels, strict=False):
        for label, values in cases:
            ordered = sorted(values)
            if ordered:
                ys = [(i + 1) / len(ordered) for i in range(len(ordered))]
                p50, p99 = pct(values, 0.5), pct(values, 0.99)
                ax.step(ordered, ys, where="post", label=f"{label}: p50 {p50:.0f}, p99 {p99:.0f}")
        if target is not None:
            ax.axvline(target, color="grey", linestyle="--", label=f"target p99 ≤ {target:.0f}")
        ax.set_title(title)
        ax.set_xlabel("ms")
        ax.set_ylabel("fraction")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    say(f"plot: {shown_path(path)}")


def redis_version() -> str:
    """``Redis 7.0.15``, or why there is none."""
    try:
        done = subprocess.run(
            [redis_program(), "--version"], capture_output=True, text=True, check=False
        )
    except RedisMissing as exc:
        return str(exc)
    found = re.search(r"v=(\S+)", done.stdout)
    return f"Redis {found.group(1) if found else '?'}"


async def main_async(args: argparse.Namespace) -> int:
    say(f"{machine_notes()}, {redis_version()}")
    results = Results()
    with tempfile.TemporaryDirectory(prefix="lightcone-bench-nodes-") as tmp:
        work = Path(tmp)
        try:
            with (
                postgres_running(work / "pg", fsync=True) as postgres,
                redis_running(work) as redis,
            ):
                say(
                    f"PostgreSQL on port {postgres.port} (fsync on), "
                    f"redis-server on port {redis.port}"
                )
                stage = Stage(work, postgres, redis, args.corpus, QUICK_LINK if args.quick else {})
                await run(stage, args, results)
        except (PostgresMissing, RedisMissing) as exc:
            say(f"bench_nodes: {exc}")
            return 3
    target_ms = write_target_ms()
    report(results, args, target_ms)
    if args.plot is not None:
        plot(results, args.plot, target_ms)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m load.bench_nodes", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="load per case, cursors [10, at most 60]"
    )
    parser.add_argument(
        "--writes", type=int, default=200, help="admin writes in phase 2 [200, at most 2000]"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="failovers of each kind [3, at most 10]"
    )
    parser.add_argument(
        "--connections", type=int, default=32, help="clients per edge [32, at most 512]"
    )
    parser.add_argument(
        "--hz", type=float, default=30.0, help="cursor moves per second [30, at most 100]"
    )
    parser.add_argument("--corpus", type=Path, help="the cores' corpus [the shipped one]")
    parser.add_argument(
        "--plot",
        type=Path,
        help=f"where the plot goes [{PLOT.relative_to(ROOT)}; none with --quick]",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 1 s, 10 writes, 1 repeat"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.writes, args.repeats = 1.0, 10, 1
    elif args.plot is None:
        args.plot = PLOT
    args.seconds = min(max(args.seconds, 0.5), MAX_SECONDS)
    args.writes = min(max(args.writes, 1), MAX_WRITES)
    args.repeats = min(max(args.repeats, 1), MAX_REPEATS)
    args.connections = min(max(args.connections, 1), MAX_CONNECTIONS)
    args.hz = min(max(args.hz, 1.0), MAX_HZ)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
