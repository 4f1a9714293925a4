"""Suggestion serving benchmark: an edge against bare and codec echoes on the same server stack.

Run: ``python -m load.bench_serving [--seconds N] [--rounds N] [--connections N] [--out DIR]``
(defaults: about 2 minutes in all). A benchmark, not a test: it prints figures and checks them
against the targets of DESIGN §7, and it never fails on a missed target.

What it does, all on 127.0.0.1 with ephemeral ports:

1. starts ``lightcone core`` (default corpus, fresh data dir under ``--out``) and
   ``python -m load.echo_app`` (:mod:`load.echo_app`: ``/echo``, a bare ``/ws`` echo of the
   frame bytes and a ``/ws-codec`` echo that decodes each frame with ``shared.protocol`` and
   sends back its re-encoding, served by the same :func:`shared.server.serve` runner as the
   nodes);
2. **cold start**: spawns ``lightcone edge`` against the running core ``--cold-starts`` times,
   timing spawn → "listening on" → ``GET /readyz`` 200 (the last one stays up for the load);
3. warm-up, then edge **RSS** (``VmRSS`` of ``/proc/PID/status``);
4. ``--rounds`` rounds, each running five closed-loop phases of ``--seconds`` (order reversed
   every other round so drift hits both sides alike): HTTP ``/suggest?q=…`` vs ``/echo?q=…``
   with ``--connections`` keep-alive connections (``wrk`` when installed, else a lean asyncio
   HTTP/1.1 client), and websocket ``Suggest`` messages to the edge's ``/ws`` vs the same
   msgpack frames to the echo's ``/ws`` and ``/ws-codec`` (``websockets`` asyncio client, no
   compression); the websocket ratio is reported against both echoes;
   per phase: req/s, client p50/p99, CPU of the server process (``/proc/PID/stat``) and of the
   client, and for the edge the server-side p50/p99 from its Prometheus histograms
   (interpolated within buckets: bucket resolution only);
5. edge RSS after the load, and the **handler time** measured in this process on the snapshot
   the edge loads (``SuggestIndex.query`` alone, and the whole service call with its JSON or
   msgpack encoding): the server-side cost at microsecond resolution;
6. writes ``results.json``, ``summary.md`` and the servers' logs to ``--out``.

Client and servers share the machine: with two or more CPUs the servers are pinned to CPU 0
and the clients to CPU 1 (``--no-pin`` to leave placement to the scheduler). The edge runs
with its per-connection websocket rate limit raised (``LIGHTCONE_WS_RATE``), since a load
generator sends far above what one user may.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import itertools
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, cast

import websockets
from websockets.asyncio.client import connect

from shared.protocol import Suggest, encode, unpack

PREFIXES: tuple[str, ...] = (
    # What people type into a city search box, keystroke by keystroke: short (hot, served from
    # precomputed top lists) and longer (ranked from the trie), accents and capitals included.
    *("p", "pa", "par", "pari", "paris"),
    *("l", "lo", "lon", "lond", "London"),
    *("new", "new y", "New Yo", "new york"),
    *("san", "san f", "san fr", "São", "São P", "sao pa"),
    *("tok", "toky", "ber", "berl", "mün", "munc", "mum", "mumb"),
    *("del", "delh", "bei", "beij", "sha", "shan", "ist", "ista"),
    *("mos", "mosc", "los", "los a", "Los An", "chi", "chic", "chica"),
    *("bue", "buenos", "mex", "mexi", "ca", "cai", "cair", "lag", "lago"),
    *("kra", "krak", "Kraków", "zü", "züri", "ham", "hamb", "bar", "barc"),
    *("mad", "madr", "rom", "rome", "wien", "wro", "göt", "göte", "Reykj"),
    *("ho chi", "kuala l", "rio de", "st. p", "saint", "fort", "port", "springf", "xyzq"),
)
LIMIT = 10
TARGET_RATIO = 0.8
TARGET_P99_S = 0.001
TARGET_RSS_BYTES = 256 * 2**20
TARGET_COLD_START_S = 1.0
BENCH_TOKEN = "lightcone-bench-token"
LISTENING = re.compile(r"listening on (http://[\d.]+:\d+)")
POLL_S = 0.005
SERVER_CPU, CLIENT_CPU = 0, 1


class BenchError(Exception):
    """The benchmark could not run (a server did not start, a client failed)."""


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- processes ---------------------------------------------------------------------------


def read_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_s() -> tuple[float, float]:
    """Busy and stolen CPU seconds of the whole machine so far (``/proc/stat``, all CPUs)."""
    with open("/proc/stat") as f:
        user, nice, system, idle, iowait, irq, softirq, steal = map(int, f.readline().split()[1:9])
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq + steal) / tick, steal / tick


def read_status_kb(pid: int, key: str) -> int:
    """A ``kB`` field (``VmRSS``, ``VmHWM``) of ``/proc/PID/status``."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise BenchError(f"no {key} in /proc/{pid}/status")


def http_get(url: str, timeout_s: float = 2.0) -> tuple[int, bytes]:
    """Status and body of ``GET url``; status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


class Server:
    """A child process whose stderr goes to a log file; stopped by PID (TERM, then KILL)."""

    def __init__(self, name: str, args: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = log_path
        self.url = ""
        self._log = log_path.open("wb")
        self.spawned = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, *args],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
        self.pid = self.process.pid

    def pin(self, cpu: int | None) -> None:
        if cpu is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(self.pid, {cpu})

    def wait_listening(self, timeout_s: float) -> float:
        """Wait for the "listening on" line; sets :attr:`url`; returns seconds since spawn."""
        deadline = time.perf_counter() + timeout_s
        while True:
            match = LISTENING.search(self.log_path.read_text(errors="replace"))
            if match:
                self.url = match.group(1)
                return time.perf_counter() - self.spawned
            self._check_alive(deadline, "a 'listening on' line")
            time.sleep(POLL_S)

    def wait_ready(self, path: str, timeout_s: float) -> float:
        """Poll ``GET path`` until 200; returns seconds since spawn."""
        deadline = time.perf_counter() + timeout_s
        while True:
            if http_get(self.url + path, timeout_s=1.0)[0] == 200:
                return time.perf_counter() - self.spawned
            self._check_alive(deadline, f"{path} 200")
            time.sleep(POLL_S)

    def _check_alive(self, deadline: float, what: str) -> None:
        if self.process.poll() is not None:
            raise BenchError(f"{self.name} exited ({self.process.returncode}):\n{self.tail()}")
        if time.perf_counter() > deadline:
            raise BenchError(f"{self.name}: no {what} in time:\n{self.tail()}")

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def cpu_s(self) -> float:
        return read_cpu_s(self.pid)

    def stop(self, timeout_s: float = 8.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s``; reaps the process."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()


# --- server-side histograms ----------------------------------------------------------------

_BUCKET = re.compile(r"^(\w+)_bucket\{([^}]*)\} (\S+)$", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="([^"]*)"')

Buckets = list[tuple[float, float]]
"""A histogram as (upper bound, cumulative count), ascending, ``inf`` last."""


def parse_histogram(text: str, name: str, label: str, value: str) -> Buckets:
    """The buckets of histogram ``name`` whose ``label`` is ``value`` in a Prometheus scrape."""
    out: Buckets = []
    for match in _BUCKET.finditer(text):
        if match.group(1) != name:
            continue
        labels = dict(_LABEL.findall(match.group(2)))
        if labels.get(label) == value:
            out.append((float(labels["le"]), float(match.group(3))))
    return sorted(out)


def bucket_delta(after: Buckets, before: Buckets) -> Buckets:
    if not before:
        return after
    return [(le, a - b) for (le, a), (_, b) in zip(after, before, strict=True)]


def bucket_sum(parts: Sequence[Buckets]) -> Buckets:
    parts = [p for p in parts if p]
    if not parts:
        return []
    return [(le, sum(p[i][1] for p in parts)) for i, (le, _) in enumerate(parts[0])]


def bucket_quantile(buckets: Buckets, q: float) -> float | None:
    """Quantile ``q`` interpolated linearly within its bucket (as PromQL's histogram_quantile).

    ``None`` without observations; the largest finite bound if it falls in the ``+Inf`` bucket.
    """
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_le, lower_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return lower_le
            if count == lower_count:
                return le
            return lower_le + (le - lower_le) * (rank - lower_count) / (count - lower_count)
        lower_le, lower_count = le, count
    return lower_le


# --- load generators -----------------------------------------------------------------------


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    p50_s: float | None = None
    p99_s: float | None = None
    client_cpu_s: float = 0.0
    note: str = ""


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class _HttpRun:
    """Shared state of one closed-loop HTTP phase."""

    def __init__(self, requests: list[bytes], deadline_in_s: float) -> None:
        self.requests = requests
        self.deadline_in_s = deadline_in_s
        self.deadline = float("inf")
        self.latencies: list[float] = []
        self.errors = 0
        self.open = 0
        self.all_closed = asyncio.get_running_loop().create_future()

    def closed(self) -> None:
        self.open -= 1
        if self.open == 0 and not self.all_closed.done():
            self.all_closed.set_result(None)


class _HttpConnection(asyncio.Protocol):
    """One keep-alive connection: send a GET, read the answer (Content-Length), repeat."""

    def __init__(self, run: _HttpRun, offset: int) -> None:
        self.run = run
        self.next = offset
        self.buffer = bytearray()
        self.need = -1
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.run.open += 1

    def send(self) -> None:
        assert self.transport is not None
        now = time.perf_counter()
        if now >= self.run.deadline:
            self.transport.close()
            return
        requests = self.run.requests
        self.next = (self.next + 1) % len(requests)
        self.sent_at = now
        self.transport.write(requests[self.next])

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        if self.need < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                self.run.errors += 1
                assert self.transport is not None
                self.transport.close()
                return
            at += 17
            stop = head.find(b"\r", at)
            length = int(head[at:] if stop < 0 else head[at:stop])
            if not head.startswith(b"http/1.1 200"):
                self.run.errors += 1
            self.need = end + 4 + length
        if len(buf) < self.need:
            return
        self.run.latencies.append(time.perf_counter() - self.sent_at)
        del buf[: self.need]
        self.need = -1
        self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        self.run.closed()


async def http_load_python(
    host: str, port: int, paths: Sequence[str], connections: int, seconds: float
) -> LoadResult:
    """Closed-loop HTTP/1.1 keep-alive load from this process (uvloop when available)."""
    loop = asyncio.get_running_loop()
    requests = [f"GET {p} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode() for p in paths]
    run = _HttpRun(requests, seconds)
    made: list[_HttpConnection] = []
    for i in range(connections):
        offset = i * len(paths) // connections
        _, proto = await loop.create_connection(
            functools.partial(_HttpConnection, run, offset), host, port
        )
        made.append(proto)
    cpu0 = self_cpu_s()
    started = time.perf_counter()
    run.deadline = started + seconds
    for proto in made:
        proto.send()
    try:
        async with asyncio.timeout(seconds + 10):
            await run.all_closed
    except TimeoutError:
        for proto in made:
            if proto.transport is not None:
                proto.transport.abort()
        run.errors += 1
    elapsed = time.perf_counter() - started
    lat = sorted(run.latencies)
    return LoadResult(
        requests=len(lat),
        errors=run.errors,
        seconds=elapsed,
        p50_s=percentile(lat, 0.5),
        p99_s=percentile(lat, 0.99),
        client_cpu_s=self_cpu_s() - cpu0,
        note="python",
    )


WRK_SCRIPT = """\
local paths = {%s}
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%%d duration_us=%%d errors=%%d p50_us=%%d p99_us=%%d\\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""
_WRK_LINE = re.compile(
    r"BENCH requests=(\d+) duration_us=(\d+) errors=(\d+) p50_us=(\d+) p99_us=(\d+)"
)


def http_load_wrk(
    wrk: str,
    url: str,
    paths: Sequence[str],
    connections: int,
    seconds: int,
    script_dir: Path,
    cpu: int | None,
) -> LoadResult:
    """Closed-loop HTTP load with ``wrk -t1`` cycling through ``paths``."""
    script = script_dir / f"wrk-{zlib.crc32(chr(10).join(paths).encode()):08x}.lua"
    script.write_text(WRK_SCRIPT % ", ".join(json.dumps(p) for p in paths))
    cpu0 = children_cpu_s()
    args = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s"]
    proc = subprocess.Popen(
        [*args, "-s", str(script), url],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if cpu is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(proc.pid, {cpu})
    try:
        out, _ = proc.communicate(timeout=seconds + 15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=5)
        raise BenchError("wrk did not finish in time") from None
    match = _WRK_LINE.search(out)
    if proc.returncode != 0 or match is None:
        raise BenchError(f"wrk failed ({proc.returncode}):\n{out}")
    requests, duration_us, errors, p50_us, p99_us = map(int, match.groups())
    return LoadResult(
        requests=requests,
        errors=errors,
        seconds=duration_us / 1e6,
        p50_s=p50_us / 1e6,
        p99_s=p99_us / 1e6,
        client_cpu_s=children_cpu_s() - cpu0,
        note="wrk",
    )


async def ws_load(
    url: str, frames: Sequence[bytes], expect: str, connections: int, seconds: float
) -> LoadResult:
    """Closed-loop websocket load: each connection sends a frame and awaits its answer."""
    socks = [
        await connect(url, compression=None, ping_interval=None, open_timeout=5, close_timeout=1)
        for _ in range(connections)
    ]
    latencies: list[list[float]] = [[] for _ in socks]
    errors = [0] * len(socks)
    cpu0 = self_cpu_s()
    started = time.perf_counter()
    deadline = started + seconds

    async def drive(k: int) -> None:
        ws, lat = socks[k], latencies[k]
        clock = time.perf_counter
        for i in itertools.count(k * len(frames) // connections):
            sent = clock()
            if sent >= deadline:
                return
            await ws.send(frames[i % len(frames)])
            reply = await ws.recv(decode=False)
            lat.append(clock() - sent)
            answer = unpack(reply)
            if not isinstance(answer, dict) or answer.get("type") != expect:
                errors[k] += 1

    try:
        async with asyncio.timeout(seconds + 10):
            await asyncio.gather(*(drive(k) for k in range(len(socks))))
    except (TimeoutError, websockets.ConnectionClosed) as exc:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # interrupted (Ctrl-C): not a failure of the server
        raise BenchError(f"websocket load on {url} failed: {exc!r}") from None
    finally:
        elapsed = time.perf_counter() - started
        cpu = self_cpu_s() - cpu0
        for ws in socks:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await ws.close()
    lat_all = sorted(itertools.chain.from_iterable(latencies))
    return LoadResult(
        requests=len(lat_all),
        errors=sum(errors),
        seconds=elapsed,
        p50_s=percentile(lat_all, 0.5),
        p99_s=percentile(lat_all, 0.99),
        client_cpu_s=cpu,
        note="websockets",
    )


# --- the handler, measured in-process --------------------------------------------------------


async def fetch_snapshot(core_url: str, token: str, timeout_s: float = 20.0) -> bytes:
    """The snapshot bytes the core sends a new edge (as the edge gets them on its link)."""
    from shared.protocol import Hello, Snapshot, decode

    link = core_url.replace("http://", "ws://", 1) + "/link"
    async with asyncio.timeout(timeout_s):
        async with connect(
            link,
            additional_headers={"Authorization": f"Bearer {token}"},
            max_size=256 << 20,
            compression=None,
            ping_interval=None,
        ) as ws:
            await ws.send(encode(Hello("bench-probe", "bench-probe", -1)))
            while True:
                message = decode(await ws.recv(decode=False))
                if isinstance(message, Snapshot):
                    return message.data


def _timed(calls: int, fn: Callable[[int], object]) -> dict[str, float]:
    times: list[float] = []
    clock = time.perf_counter_ns
    for i in range(calls):
        t0 = clock()
        fn(i)
        times.append((clock() - t0) / 1e9)
    times.sort()
    return _stats(times)


async def _timed_async(
    calls: int, fn: Callable[[int], Coroutine[Any, Any, object]]
) -> dict[str, float]:
    times: list[float] = []
    clock = time.perf_counter_ns
    for i in range(calls):
        t0 = clock()
        await fn(i)
        times.append((clock() - t0) / 1e9)
    times.sort()
    return _stats(times)


def _stats(sorted_s: list[float]) -> dict[str, float]:
    return {
        "calls": len(sorted_s),
        "mean_s": statistics.fmean(sorted_s),
        "p50_s": percentile(sorted_s, 0.5) or 0.0,
        "p99_s": percentile(sorted_s, 0.99) or 0.0,
        "max_s": sorted_s[-1],
    }


async def handler_timings(core_url: str, token: str, calls: int) -> dict[str, dict[str, float]]:
    """Per-call time of the edge's suggestion work on the real snapshot, without the server.

    ``index``: ``SuggestIndex.query(fold(q), 10)``; ``http_handler``: ``Service.suggest`` plus
    the JSON body the ``/suggest`` route renders; ``ws_handler``: ``Service.suggest`` plus the
    msgpack frame ``/ws`` sends. Prefixes as in the load, cycled; timed warm (steady state).
    """

    from edge_node.index import SuggestIndex
    from edge_node.metrics import EdgeMetrics
    from edge_node.service import Service
    from edge_node.settings import EdgeSettings
    from edge_node.upstream import Upstream
    from shared import snapshot
    from shared.folding import fold

    data = snapshot.parse(await fetch_snapshot(core_url, token))
    index = SuggestIndex(data)
    settings = EdgeSettings(core_url=core_url, region="bench")
    upstream = Upstream(settings, token, EdgeMetrics("bench"))
    upstream.index = index
    service = Service(settings, upstream)
    n = len(PREFIXES)

    async def http_handler(i: int) -> object:
        return (await service.suggest(PREFIXES[i % n], LIMIT)).http_body()

    async def ws_handler(i: int) -> object:
        return (await service.suggest(PREFIXES[i % n], LIMIT)).frame(i, json_codec=False)

    # Warm, as the load phases are: the index, and the service's prepared answers (one miss
    # per prefix, which costs an index query plus the items' encoding, as in the "index" row).
    _timed(n, lambda i: index.query(fold(PREFIXES[i % n]), LIMIT))
    await _timed_async(n, http_handler)
    return {
        "index": _timed(calls, lambda i: index.query(fold(PREFIXES[i % n]), LIMIT)),
        "http_handler": await _timed_async(calls, http_handler),
        "ws_handler": await _timed_async(calls, ws_handler),
    }


# --- the benchmark -------------------------------------------------------------------------


@dataclass
class Phase:
    round: int
    transport: str  # "http" | "ws"
    target: str  # "suggest" | "echo" | "codec" (the /ws-codec echo)
    requests: int
    errors: int
    seconds: float
    rps: float
    client_p50_s: float | None
    client_p99_s: float | None
    server_cpu_s: float
    client_cpu_s: float
    other_cpu_s: float
    steal_s: float
    client: str
    server_p50_s: float | None = None
    server_p99_s: float | None = None
    server_count: int = 0
    server_buckets: Buckets = field(default_factory=list)

    @property
    def server_cpu_us_per_request(self) -> float:
        return self.server_cpu_s / self.requests * 1e6 if self.requests else float("nan")


@dataclass
class Options:
    seconds: int
    rounds: int
    connections: int
    cold_starts: int
    warmup: float
    calls: int
    client: str
    pin: bool
    out: Path


def machine_notes() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions: dict[str, str] = {}
    from importlib import metadata

    for dist in ("uvicorn", "uvloop", "httptools", "starlette", "websockets", "msgpack"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg_at_start": os.getloadavg(),
        "mem_total_mb": _meminfo_mb("MemTotal"),
        "versions": versions,
        "wrk": shutil.which("wrk"),
        "git": _git_state(),
    }


def _git_state() -> str:
    """``<commit>`` of the tree measured, ``+dirty`` if tracked files differ from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def _meminfo_mb(key: str) -> int:
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) // 1024
    return 0


class Bench:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.servers: list[Server] = []
        self.pin_server: int | None = None
        self.pin_client: int | None = None
        if opts.pin and len(os.sched_getaffinity(0)) >= 2:
            self.pin_server, self.pin_client = SERVER_CPU, CLIENT_CPU
        self.wrk = shutil.which("wrk") if opts.client in ("auto", "wrk") else None
        if opts.client == "wrk" and self.wrk is None:
            raise BenchError("--client wrk: wrk is not installed")
        self.env = {
            "LIGHTCONE_LINK_TOKEN": BENCH_TOKEN,
            "LIGHTCONE_ADMIN_TOKEN": BENCH_TOKEN,
            "LIGHTCONE_WS_RATE": "1000000",
            "LIGHTCONE_WS_BURST": "1000000",
        }
        q = [urllib.parse.quote(p) for p in PREFIXES]
        self.suggest_paths = [f"/suggest?q={p}&limit={LIMIT}" for p in q]
        self.echo_paths = [f"/echo?q={p}&limit={LIMIT}" for p in q]
        self.frames = [encode(Suggest(i, p, LIMIT)) for i, p in enumerate(PREFIXES)]

    def spawn(self, name: str, args: list[str], log_name: str = "") -> Server:
        log_path = self.opts.out / f"{log_name or name}.log"
        log_path.unlink(missing_ok=True)
        server = Server(name, args, log_path, self.env)
        self.servers.append(server)
        server.pin(self.pin_server)
        return server

    def stop(self, server: Server) -> None:
        server.stop()
        self.servers.remove(server)

    def stop_all(self) -> None:
        for server in reversed(self.servers):
            try:
                server.stop()
            except Exception as exc:  # keep stopping the others
                log(f"stopping {server.name} (pid {server.pid}): {exc!r}")
        self.servers.clear()

    def run(self, runner: asyncio.Runner) -> dict[str, Any]:
        opts = self.opts
        started = time.perf_counter()
        notes = machine_notes()
        client = f"wrk ({self.wrk})" if self.wrk else "python asyncio client"
        log(
            f"machine: {notes['nproc']} CPUs ({notes['cpu_model']}), Python {notes['python']}, "
            f"load {notes['loadavg_at_start'][0]:.2f}, tree {notes['git']}; HTTP client: {client}; "
            f"pinning: {'servers CPU 0, clients CPU 1' if self.pin_client is not None else 'off'}"
        )
        if self.pin_client is not None:
            os.sched_setaffinity(0, {self.pin_client})

        core = self.spawn(
            "core", ["-m", "shared.cli", "core", "--port", "0", "--data-dir", str(opts.out / "db")]
        )
        echo = self.spawn("echo", ["-m", "load.echo_app", "--port", "0"])
        core.wait_listening(60)
        core_ready = core.wait_ready("/readyz", 60)
        echo.wait_listening(30)
        echo.wait_ready("/echo?q=x", 30)
        log(f"core ready in {core_ready:.2f} s at {core.url}; echo at {echo.url}")

        cold: list[dict[str, float]] = []
        edge_args = ["-m", "shared.cli", "edge", "--port", "0", "--region", "bench"]
        edge_args += ["--core-url", core.url]
        for i in range(opts.cold_starts):
            edge = self.spawn("edge", edge_args, f"edge-{i + 1}")
            listening = edge.wait_listening(30)
            ready = edge.wait_ready("/readyz", 30)
            cold.append({"listening_s": listening, "ready_s": ready})
            log(
                f"cold start {i + 1}/{opts.cold_starts}: listening {listening * 1000:.0f} ms, "
                f"/readyz 200 {ready * 1000:.0f} ms after spawn"
            )
            if i < opts.cold_starts - 1:
                self.stop(edge)
        rss_ready_kb = read_status_kb(edge.pid, "VmRSS")

        host, port = _host_port(echo.url)
        ehost, eport = _host_port(edge.url)
        targets = {
            ("http", "suggest"): (edge, ehost, eport, self.suggest_paths),
            ("http", "echo"): (echo, host, port, self.echo_paths),
        }

        def load(transport: str, target: str, seconds: float) -> tuple[LoadResult, float]:
            if transport == "http":
                server, h, p, paths = targets[(transport, target)]
                cpu0 = server.cpu_s()
                if self.wrk:
                    res = http_load_wrk(
                        self.wrk,
                        server.url,
                        paths,
                        opts.connections,
                        max(1, round(seconds)),
                        opts.out,
                        self.pin_client,
                    )
                else:
                    res = runner.run(http_load_python(h, p, paths, opts.connections, seconds))
                return res, server.cpu_s() - cpu0
            server = edge if target == "suggest" else echo
            path = "/ws-codec" if target == "codec" else "/ws"
            url = server.url.replace("http://", "ws://", 1) + path
            expect = "suggestions" if target == "suggest" else "suggest"
            cpu0 = server.cpu_s()
            res = runner.run(ws_load(url, self.frames, expect, opts.connections, seconds))
            return res, server.cpu_s() - cpu0

        phases_order = [
            ("http", "suggest"),
            ("http", "echo"),
            ("ws", "suggest"),
            ("ws", "echo"),
            ("ws", "codec"),
        ]
        for transport, target in phases_order:
            load(transport, target, opts.warmup)
        rss_warm_kb = read_status_kb(edge.pid, "VmRSS")
        log(f"warm-up done; edge RSS {rss_warm_kb / 1024:.1f} MB")

        phases: list[Phase] = []
        for r in range(1, opts.rounds + 1):
            order = phases_order if r % 2 else _swapped(phases_order)
            for transport, target in order:
                hist = _HIST[transport]
                before = self._scrape(edge, hist) if target == "suggest" else []
                busy0, steal0 = machine_cpu_s()
                res, server_cpu = load(transport, target, opts.seconds)
                busy1, steal1 = machine_cpu_s()
                phase = Phase(
                    round=r,
                    transport=transport,
                    target=target,
                    requests=res.requests,
                    errors=res.errors,
                    seconds=res.seconds,
                    rps=res.requests / res.seconds if res.seconds else 0.0,
                    client_p50_s=res.p50_s,
                    client_p99_s=res.p99_s,
                    server_cpu_s=server_cpu,
                    client_cpu_s=res.client_cpu_s,
                    other_cpu_s=max(0.0, busy1 - busy0 - server_cpu - res.client_cpu_s),
                    steal_s=steal1 - steal0,
                    client=res.note,
                )
                if target == "suggest":
                    delta = bucket_delta(self._scrape(edge, hist), before)
                    phase.server_buckets = delta
                    phase.server_count = int(delta[-1][1]) if delta else 0
                    phase.server_p50_s = bucket_quantile(delta, 0.5)
                    phase.server_p99_s = bucket_quantile(delta, 0.99)
                phases.append(phase)
                log(_phase_line(phase, opts.rounds))

        rss_after_kb = read_status_kb(edge.pid, "VmRSS")
        hwm_kb = read_status_kb(edge.pid, "VmHWM")
        log(f"edge RSS after load {rss_after_kb / 1024:.1f} MB (peak {hwm_kb / 1024:.1f} MB)")
        log(f"timing the handler in-process ({opts.calls} calls each)...")
        handler = runner.run(handler_timings(core.url, BENCH_TOKEN, opts.calls))
        self.stop_all()
        return {
            "command": " ".join(["python -m load.bench_serving", *sys.argv[1:]]),
            "options": {**asdict(opts), "out": str(opts.out)},
            "machine": notes,
            "pinning": self.pin_client is not None,
            "http_client": "wrk" if self.wrk else "python",
            "prefixes": len(PREFIXES),
            "core_ready_s": core_ready,
            "cold_starts": cold,
            "rss_kb": {"ready": rss_ready_kb, "warm": rss_warm_kb, "after": rss_after_kb},
            "rss_peak_kb": hwm_kb,
            "phases": [
                {**asdict(p), "server_cpu_us_per_request": p.server_cpu_us_per_request}
                for p in phases
            ],
            "handler": handler,
            "wall_s": time.perf_counter() - started,
            "loadavg_at_end": os.getloadavg(),
        }

    def _scrape(self, edge: Server, hist: tuple[str, str, str]) -> Buckets:
        status, body = http_get(edge.url + "/metrics/", timeout_s=5)
        if status != 200:
            raise BenchError(f"GET /metrics/ on the edge: {status}")
        return parse_histogram(body.decode(), *hist)


_HIST = {
    "http": ("lightcone_request_seconds", "route", "/suggest"),
    "ws": ("lightcone_ws_message_seconds", "type", "suggest"),
}


def _swapped(order: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``order`` with each transport's phases reversed (HTTP still first, then websocket)."""
    out: list[tuple[str, str]] = []
    for transport in dict.fromkeys(t for t, _ in order):
        out += reversed([phase for phase in order if phase[0] == transport])
    return out


def _host_port(url: str) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit(url)
    assert parsed.hostname is not None and parsed.port is not None
    return parsed.hostname, parsed.port


def _ms(seconds: float | None, digits: int = 2) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.{digits}f}"


def _phase_line(p: Phase, rounds: int) -> str:
    line = (
        f"[round {p.round}/{rounds}] {p.transport:4} {p.target:7} {p.rps:8,.0f} req/s  "
        f"client p50 {_ms(p.client_p50_s)} p99 {_ms(p.client_p99_s)} ms  "
        f"server CPU {p.server_cpu_s / p.seconds:4.0%} ({p.server_cpu_us_per_request:.0f} us/req)"
        f"  client CPU {p.client_cpu_s / p.seconds:4.0%}"
        f"  others {p.other_cpu_s / p.seconds:.2f} CPUs"
    )
    if p.target == "suggest":
        b = p.server_buckets
        line += f"  server-side p50 {_quantile_ms(b, 0.5)} p99 {_quantile_ms(b, 0.99)} ms"
    if p.errors:
        line += f"  ERRORS {p.errors}"
    return line


# --- the report ----------------------------------------------------------------------------


def _spread(values: Sequence[float | None], fmt: Callable[[float], str]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "n/a"
    return f"{fmt(statistics.median(present))} ({fmt(min(present))}–{fmt(max(present))})"


def _quantile_ms(buckets: Buckets, q: float) -> str:
    """Quantile ``q`` in ms for a report: ``≤ 0.1`` when it falls in the first bucket (there is
    no lower bound to interpolate from: "0.050" would only be half the bucket), else the
    interpolated value and its bucket."""
    value = bucket_quantile(buckets, q)
    if value is None:
        return "n/a"
    if buckets[0][1] >= q * buckets[-1][1] and buckets[0][0] != float("inf"):
        return f"≤ {buckets[0][0] * 1000:g}"
    return f"{value * 1000:.3f} {_bucket_of(buckets, q)}"


def _bucket_of(buckets: Buckets, q: float) -> str:
    """The bucket that quantile ``q`` falls in, as ``(lo–hi]`` in ms."""
    if not buckets or buckets[-1][1] <= 0:
        return ""
    rank, lower = q * buckets[-1][1], 0.0
    for le, count in buckets:
        if count >= rank:
            hi = "∞" if le == float("inf") else f"{le * 1000:g}"
            return f"(in {lower * 1000:g}–{hi}]"
        lower = le
    return ""


_HANDLER_LABELS = (
    ("index", "`SuggestIndex.query(fold(q), 10)` (the lookup behind a prepared-answer miss)"),
    ("http_handler", "`Service.suggest` + `Answer.http_body()` (HTTP)"),
    ("ws_handler", "`Service.suggest` + `Answer.frame(id, msgpack)` (websocket)"),
)


def _buckets(phase: dict[str, Any]) -> Buckets:
    return [(float(le), float(count)) for le, count in phase["server_buckets"]]


_TABLE_ORDER = (
    ("http", "suggest"),
    ("http", "echo"),
    ("ws", "suggest"),
    ("ws", "echo"),
    ("ws", "codec"),
)
_TARGET_NAMES = {"suggest": "suggest (edge)", "echo": "bare echo", "codec": "codec echo"}
_RATIOS = (("http", "echo", "http"), ("ws", "echo", "ws"), ("ws", "codec", "ws_codec"))
"""(transport, baseline, headline key) of each suggest / baseline ratio."""


def _ok(met: bool) -> str:
    return "met" if met else "**not met**"


def summarize(results: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The markdown summary and the headline figures of a run."""
    phases: list[dict[str, Any]] = results["phases"]
    rounds = sorted({p["round"] for p in phases})

    def pick(transport: str, target: str) -> list[dict[str, Any]]:
        return [p for p in phases if p["transport"] == transport and p["target"] == target]

    m = results["machine"]
    lines: list[str] = [
        f"Command: `{results['command']}` (tree {m['git']}); wall time {results['wall_s']:.0f} s.",
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), Python {m['python']}, kernel "
        f"{m['kernel']}; load average {m['loadavg_at_start'][0]:.2f} at start, "
        f"{results['loadavg_at_end'][0]:.2f} at end. HTTP client: {results['http_client']}; "
        f"websocket client: websockets {m['versions'].get('websockets', '?')} (asyncio); "
        f"pinning: {'servers CPU 0, clients CPU 1' if results['pinning'] else 'off'}; "
        f"{results['options']['connections']} connections, {results['prefixes']} prefixes, "
        f"limit {LIMIT}.",
        "",
    ]
    head: dict[str, Any] = {}
    rows = [
        "| transport | target | req/s | client p50 ms | client p99 ms | server CPU µs/req "
        "| server CPU | client CPU | others (CPUs) | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for transport, target in _TABLE_ORDER:
        ps = pick(transport, target)
        if ps:
            rows.append(
                f"| {transport.upper()} | {_TARGET_NAMES[target]} "
                f"| {_spread([p['rps'] for p in ps], lambda v: f'{v:,.0f}')} "
                f"| {_spread([p['client_p50_s'] for p in ps], lambda v: f'{v * 1000:.2f}')} "
                f"| {_spread([p['client_p99_s'] for p in ps], lambda v: f'{v * 1000:.2f}')} "
                f"| {_spread([p['server_cpu_us_per_request'] for p in ps], lambda v: f'{v:.0f}')} "
                f"| {_spread([p['server_cpu_s'] / p['seconds'] for p in ps], '{:.0%}'.format)} "
                f"| {_spread([p['client_cpu_s'] / p['seconds'] for p in ps], '{:.0%}'.format)} "
                f"| {_spread([p['other_cpu_s'] / p['seconds'] for p in ps], '{:.2f}'.format)} "
                f"| {sum(p['errors'] for p in ps)} |"
            )
    lines += ["Throughput, median of rounds (min–max):", "", *rows, ""]

    ratio_rows = [
        "| transport | baseline | ratio per round | median | per server CPU-second: per round "
        "| median | target ≥ 0.8 |",
        "|---|---|---|---|---|---|---|",
    ]
    for transport, baseline, key in _RATIOS:
        ratios: list[float] = []
        cpu_ratios: list[float] = []
        for r in rounds:
            s = [p for p in pick(transport, "suggest") if p["round"] == r]
            e = [p for p in pick(transport, baseline) if p["round"] == r]
            if len(s) != 1 or len(e) != 1:
                continue
            if e[0]["rps"]:
                ratios.append(s[0]["rps"] / e[0]["rps"])
            if s[0]["server_cpu_us_per_request"]:
                cpu_ratios.append(
                    e[0]["server_cpu_us_per_request"] / s[0]["server_cpu_us_per_request"]
                )
        if not ratios:
            continue
        med = statistics.median(ratios)
        cpu_med = statistics.median(cpu_ratios) if cpu_ratios else float("nan")
        head[f"{key}_ratio"] = med
        head[f"{key}_ratio_per_cpu"] = cpu_med
        ratio_rows.append(
            f"| {transport.upper()} | {_TARGET_NAMES[baseline]} "
            f"| {', '.join(f'{v:.2f}' for v in ratios)} | **{med:.2f}** "
            f"| {', '.join(f'{v:.2f}' for v in cpu_ratios)} | {cpu_med:.2f} "
            f"| {_ok(med >= TARGET_RATIO)} |"
        )
    lines += [
        "Suggest / baseline throughput ratio (same round, side by side; per server CPU-second is",
        "the baseline's server CPU per request divided by the edge's):",
        "",
        *ratio_rows,
        "",
    ]

    srv_rows = [
        "| transport | p50 ms pooled | p99 ms per round | p99 ms, all rounds pooled "
        "| p99.9 ms pooled | ≤ 0.1 ms | > 1 ms | observations | target p99 ≤ 1 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for transport in ("http", "ws"):
        ps = pick(transport, "suggest")
        pooled = bucket_sum([_buckets(p) for p in ps])
        p99 = bucket_quantile(pooled, 0.99)
        head[f"{transport}_server_p99_s"] = p99
        total = pooled[-1][1] if pooled else 0.0
        fast = next((c for le, c in pooled if le == 0.0001), 0.0)
        slow = total - next((c for le, c in pooled if le == 0.001), total)
        srv_rows.append(
            f"| {transport.upper()} "
            f"| {_quantile_ms(pooled, 0.5)} "
            f"| {', '.join(_quantile_ms(_buckets(p), 0.99) for p in ps)} "
            f"| **{_quantile_ms(pooled, 0.99)}** "
            f"| {_quantile_ms(pooled, 0.999)} "
            f"| {fast / total if total else 0:.1%} | {slow:,.0f} "
            f"| {sum(p['server_count'] for p in ps):,} "
            f"| {_ok(p99 is not None and p99 <= TARGET_P99_S)} |"
        )
    lines += [
        "Server-side latency from the edge's Prometheus histograms (handler time, no queueing;",
        "buckets 0.1 / 0.25 / 0.5 / 1 / 2.5 ms, interpolated within a bucket: bucket resolution;",
        "'≤ 0.1' when the quantile falls in the first bucket):",
        "",
        *srv_rows,
        "",
    ]

    h = results["handler"]
    lines += [
        "Handler time measured in-process on the edge's snapshot (µs, no server around it;",
        f"{h['index']['calls']:,} calls each, warm):",
        "",
        "| what | p50 µs | p99 µs | mean µs | max µs |",
        "|---|---|---|---|---|",
        *(
            f"| {label} | {h[name]['p50_s'] * 1e6:.1f} | {h[name]['p99_s'] * 1e6:.1f} "
            f"| {h[name]['mean_s'] * 1e6:.1f} | {h[name]['max_s'] * 1e6:.0f} |"
            for name, label in _HANDLER_LABELS
        ),
        "",
    ]

    cold = [c["ready_s"] for c in results["cold_starts"]]
    listen = [c["listening_s"] for c in results["cold_starts"]]
    cold_med = statistics.median(cold)
    rss = results["rss_kb"]
    rss_max = max(rss.values(), default=0) * 1024
    peak = results["rss_peak_kb"] * 1024
    head.update(cold_start_s=cold_med, rss_after_bytes=rss["after"] * 1024, rss_peak_bytes=peak)
    lines += [
        "| edge | figure | target |",
        "|---|---|---|",
        f"| cold start, spawn → /readyz 200 (median of {len(cold)}) | **{cold_med * 1000:.0f} ms** "
        f"(each: {', '.join(f'{v * 1000:.0f}' for v in cold)}) | ≤ 1 s: "
        f"{_ok(cold_med <= TARGET_COLD_START_S)} |",
        f"| of which spawn → 'listening on' (imports, app) "
        f"| {statistics.median(listen) * 1000:.0f} ms | |",
        f"| RSS when ready / after warm-up / after load | {rss['ready'] / 1024:.1f} / "
        f"{rss['warm'] / 1024:.1f} / {rss['after'] / 1024:.1f} MB (peak {peak / 2**20:.1f} MB) "
        f"| fits 256 MB: {_ok(max(rss_max, peak) <= TARGET_RSS_BYTES)} |",
        "",
    ]
    return "\n".join(lines), head


# --- entry point -----------------------------------------------------------------------------


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _event_loop() -> Iterator[asyncio.Runner]:
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        pass
    with asyncio.Runner(loop_factory=factory) as runner:
        yield runner


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m load.bench_serving",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=int, default=4, help="length of a phase [4]")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of five phases [5]")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections [32]")
    parser.add_argument("--cold-starts", type=int, default=5, help="edge starts timed [5]")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds per warm-up phase [1]")
    parser.add_argument("--calls", type=int, default=20000, help="in-process calls timed [20000]")
    parser.add_argument(
        "--client",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="HTTP load generator: wrk if installed (auto), or the built-in asyncio client",
    )
    parser.add_argument(
        "--pin", action="store_true", help="pin the servers to CPU 0 and the clients to CPU 1"
    )
    parser.add_argument("--out", type=Path, help="results folder [a new one under /tmp]")
    args = parser.parse_args(argv)
    for name in ("seconds", "rounds", "connections", "cold_starts", "calls"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.out is None:
        out = Path(tempfile.mkdtemp(prefix="lightcone-bench-"))
    else:
        out = args.out
        out.mkdir(parents=True, exist_ok=True)
        if (out / "db").exists():
            shutil.rmtree(out / "db")
    opts = Options(
        seconds=args.seconds,
        rounds=args.rounds,
        connections=args.connections,
        cold_starts=args.cold_starts,
        warmup=args.warmup,
        calls=args.calls,
        client=args.client,
        pin=args.pin,
        out=out.resolve(),
    )
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    bench = Bench(opts)
    try:
        with _event_loop() as runner:
            results = bench.run(runner)
    except KeyboardInterrupt:
        log("interrupted: stopping the servers")
        return 130
    except BenchError as exc:
        log(f"benchmark failed: {exc}")
        return 1
    finally:
        bench.stop_all()
    summary, head = summarize(results)
    results["headline"] = head
    (opts.out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (opts.out / "summary.md").write_text(summary)
    print(summary)
    log(f"done in {results['wall_s']:.0f} s; results in {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
