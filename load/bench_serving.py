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

Client and servers share the machine: with ``--pin`` and two or more CPUs the servers are
pinned to CPU 0 and the clients to CPU 1 (by default the scheduler places them). The edge runs
with its per-connection websocket rate limit and its per-client HTTP rate and connection cap
raised (``LIGHTCONE_WS_RATE``, ``load.topology.ONE_ADDRESS``), since a load
generator sends far above what one user may.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from load.machine import cpu_model, git_state, loadavg, mem_total_kb, status_kb, versions
from load.serving import BenchError
from load.serving.handler import handler_timings
from load.serving.phases import PHASES, Loads, Phase, swapped
from load.serving.servers import Server
from load.serving.summary import phase_line, summarize
from load.serving.workload import PREFIXES
from load.topology import ONE_ADDRESS

BENCH_TOKEN = "lightcone-bench-token"
SERVER_CPU, CLIENT_CPU = 0, 1
PACKAGES = ("uvicorn", "uvloop", "httptools", "starlette", "websockets", "msgpack")
"""Whose versions ``results.json`` records."""


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


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
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg_at_start": loadavg(),
        "mem_total_mb": (mem_total_kb() or 0) // 1024,
        "versions": versions(PACKAGES),
        "wrk": shutil.which("wrk"),
        "git": git_state() or "unknown",
    }


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
            **ONE_ADDRESS,
        }

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
        core, echo, core_ready = self._start_core_and_echo()
        edge, cold = self._cold_starts(core)
        rss_ready_kb = status_kb(edge.pid, "VmRSS")
        loads = Loads(runner, edge, echo, opts.connections, self.wrk, self.pin_client, opts.out)
        for transport, target in PHASES:
            loads.run(transport, target, opts.warmup)
        rss_warm_kb = status_kb(edge.pid, "VmRSS")
        log(f"warm-up done; edge RSS {rss_warm_kb / 1024:.1f} MB")
        phases = self._rounds(loads)
        rss_after_kb = status_kb(edge.pid, "VmRSS")
        hwm_kb = status_kb(edge.pid, "VmHWM")
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
            "loadavg_at_end": loadavg(),
        }

    def _start_core_and_echo(self) -> tuple[Server, Server, float]:
        """The core (fresh data dir) and the echo app, started side by side; the core's
        seconds from spawn to ``/readyz`` 200."""
        core = self.spawn(
            "core",
            ["-m", "shared.cli", "core", "--port", "0", "--data-dir", str(self.opts.out / "db")],
        )
        echo = self.spawn("echo", ["-m", "load.echo_app", "--port", "0"])
        core.wait_listening(60)
        core_ready = core.wait_ready("/readyz", 60)
        echo.wait_listening(30)
        echo.wait_ready("/echo?q=x", 30)
        log(f"core ready in {core_ready:.2f} s at {core.url}; echo at {echo.url}")
        return core, echo, core_ready

    def _cold_starts(self, core: Server) -> tuple[Server, list[dict[str, float]]]:
        """Start the edge ``--cold-starts`` times, timed; the last one stays up for the load."""
        n = self.opts.cold_starts
        cold: list[dict[str, float]] = []
        args = ["-m", "shared.cli", "edge", "--port", "0", "--region", "bench"]
        args += ["--core-url", core.url]
        for i in range(n):
            edge = self.spawn("edge", args, f"edge-{i + 1}")
            listening = edge.wait_listening(30)
            ready = edge.wait_ready("/readyz", 30)
            cold.append({"listening_s": listening, "ready_s": ready})
            log(
                f"cold start {i + 1}/{n}: listening {listening * 1000:.0f} ms, "
                f"/readyz 200 {ready * 1000:.0f} ms after spawn"
            )
            if i < n - 1:
                self.stop(edge)
        return edge, cold

    def _rounds(self, loads: Loads) -> list[Phase]:
        phases: list[Phase] = []
        rounds = self.opts.rounds
        for r in range(1, rounds + 1):
            for transport, target in PHASES if r % 2 else swapped(PHASES):
                phase = loads.measure(r, transport, target, self.opts.seconds)
                phases.append(phase)
                log(phase_line(phase, rounds))
        return phases


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
    opts = _options(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    bench = Bench(opts)
    try:
        with _event_loop() as runner:
            results = bench.run(runner)
    except KeyboardInterrupt:
        log("interrupted: stopping the servers")
        return 130
    except (BenchError, LookupError) as exc:  # LookupError: no VmRSS/VmHWM in /proc
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


def _options(argv: Sequence[str] | None) -> Options:
    """The options of the command line; ``--out`` made ready (its ``db`` of a former run gone)."""
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
    return Options(
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


if __name__ == "__main__":
    sys.exit(main())
