"""``lightcone bench``: the locust comparison — edge vs central, tolerant vs strict.

What one run does, all on loopback:

1. starts ``lightcone up`` (core, edges and latency proxies with simulated geography) as a
   subprocess and reads its status file: for each user city, one entry through its nearest
   edge and one through the *central* node (the edge in the core's region), each delayed by
   that user's simulated RTT;
2. for each repeat, runs every scenario of {suggest, cursors} × {edge, central} ×
   {tolerant, strict} once — edge and central side by side, the order reversed every other
   repeat so drift hits all scenarios alike. Before each run it sets both features' flags
   through the demo's control API and waits until every edge has them. Each run is
   ``python -m locust -f load/locustfile.py --headless`` with users spread round-robin over
   the user cities (``LIGHTCONE_TARGETS``); suggest runs use :class:`SuggestHttpUser` and
   :class:`SuggestWsUser`, cursor runs :class:`CursorUser`;
3. prints one line per run (elapsed / estimated total), measuring the CPU of locust, of the
   ``lightcone up`` process (which carries every proxy), of the nodes and of everything else;
4. stops the topology (SIGINT) and writes ``--out``: ``results.json`` (everything measured),
   ``report.md`` and ``plots/`` (:mod:`load.report`), and ``runs/<n>-<scenario>-r<k>/`` with
   locust's CSVs, HTML report and log, and the raw per-request times (``raw.csv.gz``).

Defaults take about 4 minutes; ``--quick`` about 30 s.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
FEATURES = ("suggest", "cursors")
TARGETS = ("edge", "central")
MODES = ("tolerant", "strict")
USER_CLASSES = {"suggest": ["SuggestHttpUser", "SuggestWsUser"], "cursors": ["CursorUser"]}
DEFAULT_USERS = ("syd", "lhr", "sin", "iad")
OUTPUTS = ("runs", "plots", "report.md", "results.json", "up.log")
"""What a bench writes in ``--out`` (and removes from an earlier run there); nothing else."""


@dataclass(frozen=True)
class Scenario:
    feature: str
    target: str
    mode: str

    @property
    def name(self) -> str:
        return f"{self.feature}-{self.target}-{self.mode}"


@dataclass(frozen=True)
class Plan:
    core: str
    edges: tuple[str, ...]
    users: tuple[str, ...]
    duration_s: int
    repeats: int
    suggest_users: int
    cursor_users: int
    move_hz: float
    room_size: int
    codec: str
    access_ms: float | None
    jitter: bool
    html: str
    scenarios: tuple[Scenario, ...]

    def order(self) -> list[tuple[int, Scenario]]:
        """(repeat, scenario) in run order: the scenario order reversed every other repeat."""
        runs = []
        for repeat in range(self.repeats):
            scenarios = self.scenarios if repeat % 2 == 0 else tuple(reversed(self.scenarios))
            runs += [(repeat, s) for s in scenarios]
        return runs


def _codes(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())


def add_bench_parser(commands: Any) -> None:
    """Register ``lightcone bench`` on the CLI's subcommands."""
    bench = commands.add_parser(
        "bench",
        help="run the locust comparison (edge vs central, tolerant vs strict)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(bench)
    bench.set_defaults(run=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, help="report folder [a new folder under /tmp]")
    parser.add_argument("--quick", action="store_true", help="a smoke run of about 30 s")
    parser.add_argument("--core", default="iad", help="the core's region [iad]")
    parser.add_argument("--edges", default="iad,lhr,syd,sin", help="edge regions [iad,lhr,syd,sin]")
    parser.add_argument(
        "--users",
        default=",".join(DEFAULT_USERS),
        help="user cities as region codes [syd,lhr,sin,iad]",
    )
    parser.add_argument("--duration", type=int, help="seconds per locust run [8; quick 2]")
    parser.add_argument("--repeats", type=int, help="runs of each scenario [3; quick 1]")
    parser.add_argument(
        "--suggest-users", type=int, help="locust users in suggest runs, half HTTP [80; quick 16]"
    )
    parser.add_argument(
        "--cursor-users", type=int, help="locust users in cursor runs [16; quick 8]"
    )
    parser.add_argument("--move-hz", type=float, default=30.0, help="cursor moves per second [30]")
    parser.add_argument("--room-size", type=int, default=8, help="members per cursor room [8]")
    parser.add_argument("--codec", choices=("msgpack", "json"), default="msgpack")
    parser.add_argument("--access-ms", type=float, help="last-mile RTT of user entries [up's: 5]")
    parser.add_argument("--jitter", action="store_true", help="proxies add jitter toward P95")
    parser.add_argument(
        "--features", default=",".join(FEATURES), help="subset of suggest,cursors [both]"
    )
    parser.add_argument("--targets", default=",".join(TARGETS), help="subset of edge,central")
    parser.add_argument("--modes", default=",".join(MODES), help="subset of tolerant,strict")
    parser.add_argument(
        "--html",
        choices=("all", "first", "none"),
        default="all",
        help="locust HTML reports (~1 MB each): every run, first repeat only, or none [all]",
    )


def plan_from(args: argparse.Namespace) -> Plan:
    """The plan of ``args``; ``--quick`` changes the defaults, explicit values still win.

    Raises:
        ValueError: an option out of range or an unknown feature/target/mode/region.
    """
    quick = args.quick

    def pick(value: Any, full: Any, small: Any) -> Any:
        return value if value is not None else (small if quick else full)

    from shared import geography

    edges, users = _codes(args.edges), _codes(args.users)
    for code in (args.core, *edges, *users):
        geography.region(code)
    chosen = {
        "feature": _codes(args.features),
        "target": _codes(args.targets),
        "mode": _codes(args.modes),
    }
    for kind, allowed in (("feature", FEATURES), ("target", TARGETS), ("mode", MODES)):
        bad = set(chosen[kind]) - set(allowed)
        if bad or not chosen[kind]:
            raise ValueError(f"--{kind}s: pick from {','.join(allowed)}")
    scenarios = tuple(
        Scenario(f, t, m)
        for f in FEATURES
        if f in chosen["feature"]
        for m in MODES
        if m in chosen["mode"]
        for t in TARGETS
        if t in chosen["target"]
    )
    plan = Plan(
        core=args.core,
        edges=edges,
        users=users or DEFAULT_USERS,
        duration_s=pick(args.duration, 8, 2),
        repeats=pick(args.repeats, 3, 1),
        suggest_users=pick(args.suggest_users, 80, 16),
        cursor_users=pick(args.cursor_users, 16, 8),
        move_hz=args.move_hz,
        room_size=args.room_size,
        codec=args.codec,
        access_ms=args.access_ms,
        jitter=args.jitter,
        html=args.html,
        scenarios=scenarios,
    )
    if plan.duration_s < 1 or plan.repeats < 1:
        raise ValueError("--duration and --repeats must be at least 1")
    if plan.suggest_users < 2 or plan.cursor_users < 2 or plan.room_size < 2:
        raise ValueError("--suggest-users, --cursor-users and --room-size must be at least 2")
    return plan


def say(text: str) -> None:
    print(text, flush=True)


def run(args: argparse.Namespace) -> int:
    try:
        plan = plan_from(args)
    except ValueError as exc:
        say(f"lightcone bench: {exc}")
        return 2
    out: Path = args.out or Path(tempfile.mkdtemp(prefix="lightcone-bench-"))
    if sys.argv[1:2] == ["bench"]:
        command = ["lightcone", *sys.argv[1:]]
    else:
        command = ["python", "-m", "load.bench", *sys.argv[1:]]
    return Bench(plan, out, command).run()


# --- CPU accounting from /proc ------------------------------------------------------------


def _ticks(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by ``pid``, or ``None`` if unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine so far, from ``/proc/stat``."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    values = [int(v) for v in first[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(values[:8]) - idle) / hz, sum(values[:8]) / hz


@dataclass
class CpuMeter:
    """CPU used by named processes and by the whole machine, in % of one core."""

    pids: dict[str, list[int]]
    samples: list[tuple[float, dict[str, float], tuple[float, float] | None]] = field(
        default_factory=list
    )

    def sample(self) -> None:
        used = {}
        for name, pids in self.pids.items():
            ticks = [_ticks(p) for p in pids]
            used[name] = sum(t for t in ticks if t is not None)
        self.samples.append((time.time(), used, _machine_busy()))

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
        peaks: dict[str, float] = {}
        for (ta, a, _), (tb, b, _) in zip(samples, samples[1:], strict=False):
            if tb - ta >= 0.3:
                for name in a:
                    peaks[name] = max(peaks.get(name, 0.0), 100 * (b[name] - a[name]) / (tb - ta))
        result: dict[str, Any] = {
            "window_s": round(wall, 2),
            "mean_pct": {k: round(v, 1) for k, v in mean.items()},
            "max_pct": {k: round(v, 1) for k, v in peaks.items()},
        }
        if m0 is not None and m1 is not None:
            busy = 100 * (m1[0] - m0[0]) / wall
            result["machine_busy_pct"] = round(busy, 1)
            result["cores"] = os.cpu_count() or 1
            result["others_pct"] = round(max(0.0, busy - sum(mean.values())), 1)
        return result


def probe(url: str, n: int, path: str = "/suggest?q=sao&limit=10") -> dict[str, Any]:
    """``n`` sequential keep-alive ``GET``s from this (idle, plain Python) process: p50 and min.

    The floor under the locust numbers: the same request without the load generator.
    """
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    times = []
    try:
        for i in range(n + 2):  # the first two warm the connection up
            started = time.perf_counter()
            connection.request("GET", path)
            connection.getresponse().read()
            if i >= 2:
                times.append((time.perf_counter() - started) * 1000)
    finally:
        connection.close()
    times.sort()
    return {
        "url": url,
        "n": n,
        "p50_ms": round(times[len(times) // 2], 3),
        "min_ms": round(times[0], 3),
    }


# --- the topology --------------------------------------------------------------------------


class Topology:
    """``lightcone up`` as a subprocess: started, read from its status file, stopped."""

    def __init__(self, plan: Plan, data_dir: Path, log_path: Path) -> None:
        self.plan = plan
        self.data_dir = data_dir
        self.status_file = data_dir / "status.json"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.status: dict[str, Any] = {}

    def command(self) -> list[str]:
        p = self.plan
        args = [sys.executable, "-m", "shared.cli", "up", "--core", p.core]
        args += ["--edges", ",".join(p.edges), "--users", ",".join(p.users)]
        args += ["--data-dir", str(self.data_dir / "demo"), "--status-file", str(self.status_file)]
        if p.access_ms is not None:
            args += ["--access-ms", str(p.access_ms)]
        if p.jitter:
            args.append("--jitter")
        return args

    def start(self, timeout_s: float = 180) -> dict[str, Any]:
        """Start and wait for the status file.

        Raises:
            RuntimeError: ``lightcone up`` exited or was not ready in time.
        """
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"lightcone up exited with {self.process.returncode}:\n{tail}")
            try:
                self.status = json.loads(self.status_file.read_text())
                return self.status
            except (OSError, ValueError):
                time.sleep(0.05)
        raise RuntimeError(f"lightcone up was not ready within {timeout_s:.0f} s")

    def stop(self, timeout_s: float = 30) -> int | None:
        """SIGINT, then SIGKILL after ``timeout_s``; the exit code."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def entries(self, target: str) -> list[dict[str, Any]]:
        return [e for e in self.status["entries"] if e["kind"] == target]

    def pids(self) -> dict[str, list[int]]:
        nodes = self.status.get("nodes", [])
        up = [self.process.pid] if self.process is not None else []
        return {
            "up (proxies)": up,
            "core": [n["pid"] for n in nodes if n["kind"] == "core"],
            "edges": [n["pid"] for n in nodes if n["kind"] == "edge"],
        }


def _request(method: str, url: str, body: Any = None, timeout_s: float = 5) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return json.loads(response.read())


def set_flags(topology: Topology, mode: str, timeout_s: float = 15) -> float:
    """Both features to ``mode`` through the control API; wait until every edge has it.

    Returns the seconds it took. Raises ``RuntimeError`` if an edge did not follow in time.
    """
    started = time.monotonic()
    stale_ok = mode == "tolerant"
    control = topology.status["control_url"]
    for feature in FEATURES:
        _request("PUT", f"{control}/flags/{feature}", {"stale_ok": stale_ok})
    edges = [n for n in topology.status["nodes"] if n["kind"] == "edge"]
    deadline = started + timeout_s
    while True:
        lagging = []
        for edge in edges:
            flags = _request("GET", f"{edge['url']}/status").get("flags", {})
            if any(flags.get(f, {}).get("stale_ok") is not stale_ok for f in FEATURES):
                lagging.append(edge["region"])
        if not lagging:
            return time.monotonic() - started
        if time.monotonic() > deadline:
            raise RuntimeError(f"edges {', '.join(lagging)} did not switch to {mode}")
        time.sleep(0.02)


def calibrate(topology: Topology) -> list[dict[str, Any]]:
    """Sequential requests from the bench itself, before any load: the stack without locust.

    For the first far user city (else the first): straight to its edge (no proxy), through
    its edge entry and through its central entry (each with the simulated RTT).
    """
    entries = topology.status["entries"]
    core = topology.status["core_region"]
    far = [e for e in entries if e["kind"] == "edge" and e["target_region"] != core]
    city = (far or entries)[0]["user_region"]
    edge = next(e for e in entries if e["user_region"] == city and e["kind"] == "edge")
    central = next(e for e in entries if e["user_region"] == city and e["kind"] == "central")
    node = next(
        n
        for n in topology.status["nodes"]
        if n["kind"] == "edge" and n["region"] == edge["target_region"]
    )
    found = []
    for label, url, rtt, n in (
        (f"edge {node['region']} direct (no proxy)", node["url"], 0.0, 60),
        (f"{city} → edge {edge['target_region']}", edge["url"], edge["rtt_ms"], 60),
        (f"{city} → central {central['target_region']}", central["url"], central["rtt_ms"], 12),
    ):
        found.append({"label": label, "rtt_ms": rtt, **probe(url, n)})
    return found


# --- one locust run ------------------------------------------------------------------------


CPU_WARNING = "CPU usage above 90%"


@dataclass
class Bench:
    plan: Plan
    out: Path
    command: list[str]
    runs: list[dict[str, Any]] = field(default_factory=list)
    calibration: list[dict[str, Any]] = field(default_factory=list)

    def run(self) -> int:
        started = time.monotonic()
        self._prepare_out()
        env_before = environment()
        scratch = Path(tempfile.mkdtemp(prefix="lightcone-bench-up-"))
        topology = Topology(self.plan, scratch, self.out / "up.log")
        order = self.plan.order()
        say(
            f"lightcone bench: {len(order)} locust runs of {self.plan.duration_s} s "
            f"({len(self.plan.scenarios)} scenarios × {self.plan.repeats}), core {self.plan.core}, "
            f"edges {','.join(self.plan.edges)}, user cities {','.join(self.plan.users)} "
            f"→ {self.out}"
        )
        code = 0
        try:
            say("starting the topology (lightcone up) …")
            topology.start()
            say(f"topology ready in {time.monotonic() - started:.1f} s")
            self._show_topology(topology)
            self.calibration = calibrate(topology)
            say(
                "calibration (one idle client, sequential GET /suggest): "
                + ", ".join(f"{c['label']} p50 {c['p50_ms']:.2f} ms" for c in self.calibration)
            )
            per_run = self.plan.duration_s + 2.5
            for n, (repeat, scenario) in enumerate(order, start=1):
                record = self._one(topology, n, repeat, scenario)
                self.runs.append(record)
                per_run = sum(r["wall_s"] + r["flags_s"] for r in self.runs) / len(self.runs)
                elapsed = time.monotonic() - started
                total = elapsed + per_run * (len(order) - n)
                say(self._progress(n, len(order), elapsed, total, record))
                if not record["samples"]:
                    code = 1
        except (RuntimeError, OSError) as exc:
            say(f"lightcone bench: {exc}")
            code = 1
        except KeyboardInterrupt:
            say("lightcone bench: interrupted")
            code = 130
        finally:
            stopped = topology.stop()
            shutil.rmtree(scratch, ignore_errors=True)
            if stopped not in (0, None):
                say(f"lightcone bench: lightcone up exited with {stopped}")
        results = {
            "plan": {
                **dataclasses.asdict(self.plan),
                "scenarios": [s.name for s in self.plan.scenarios],
            },
            "command": self.command,
            "environment": env_before,
            "load_after": _loadavg(),
            "wall_s": round(time.monotonic() - started, 1),
            "tick_ms": tick_ms(),
            "calibration": self.calibration,
            "topology": {k: v for k, v in topology.status.items() if k != "admin_token"},
            "runs": self.runs,
        }
        (self.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        if not self.runs:
            return code or 1
        from load import report

        say("writing the report …")
        for line in report.build(self.out):
            say(line)
        say(f"report: {self.out / 'report.md'}  ({time.monotonic() - started:.0f} s in all)")
        return code

    def _prepare_out(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        for name in OUTPUTS:
            path = self.out / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        (self.out / "runs").mkdir()

    def _show_topology(self, topology: Topology) -> None:
        for e in topology.status["entries"]:
            say(
                f"  {e['user_region']} → {e['target_region']} ({e['kind']:<7}) "
                f"simulated RTT {e['rtt_ms']:6.1f} ms, fiber floor {e['fiber_floor_ms']:6.1f} ms"
            )

    def _one(self, topology: Topology, n: int, repeat: int, scenario: Scenario) -> dict[str, Any]:
        p = self.plan
        run_dir = self.out / "runs" / f"{n:02d}-{scenario.name}-r{repeat + 1}"
        run_dir.mkdir(parents=True)
        flags_s = set_flags(topology, scenario.mode)
        entries = topology.entries(scenario.target)
        users = p.suggest_users if scenario.feature == "suggest" else p.cursor_users
        args = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"]
        args += ["-u", str(users), "-r", str(users), "-t", f"{p.duration_s}s"]
        args += ["--csv", str(run_dir / "locust"), "--only-summary", "--host", entries[0]["url"]]
        if p.html == "all" or (p.html == "first" and repeat == 0):
            args += ["--html", str(run_dir / "locust.html")]
        args += USER_CLASSES[scenario.feature]
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTCONE_")}
        env.update(
            {
                "LIGHTCONE_TARGETS": ",".join(f"{e['user_region']}={e['url']}" for e in entries),
                "LIGHTCONE_SCENARIO": scenario.name,
                "LIGHTCONE_EXPECT_MODE": scenario.mode,
                "LIGHTCONE_OUT_DIR": str(run_dir),
                "LIGHTCONE_ROOM_PREFIX": f"bench-{n}",
                "LIGHTCONE_MOVE_HZ": str(p.move_hz),
                "LIGHTCONE_ROOM_SIZE": str(p.room_size),
                "LIGHTCONE_CODEC": p.codec,
            }
        )
        started = time.monotonic()
        started_at = time.time()
        with (run_dir / "locust.log").open("wb") as log:
            process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
            meter = CpuMeter({"locust": [process.pid], **topology.pids()})
            try:
                meter.sample()
                deadline = started + p.duration_s + 60
                while process.poll() is None:
                    if time.monotonic() > deadline:
                        process.kill()
                        break
                    try:
                        process.wait(0.5)
                    except subprocess.TimeoutExpired:
                        meter.sample()
            finally:
                if process.poll() is None:
                    process.kill()
                process.wait()
        wall = time.monotonic() - started
        log_text = (run_dir / "locust.log").read_text(errors="replace")
        counters: dict[str, Any] = {}
        if (run_dir / "counters.json").exists():
            counters = json.loads((run_dir / "counters.json").read_text())
        cpu = meter.summary(counters.get("test_started_at"), counters.get("test_stopped_at"))
        if "cpu_pct" in counters and cpu:  # locust's own view of itself, during the test only
            cpu["mean_pct"]["locust"] = counters["cpu_pct"]
            cpu["max_pct"]["locust"] = counters["cpu_peak_pct"]
        return {
            "n": n,
            "scenario": scenario.name,
            **dataclasses.asdict(scenario),
            "repeat": repeat + 1,
            "dir": str(run_dir.relative_to(self.out)),
            "started_at": round(started_at, 3),
            "wall_s": round(wall, 2),
            "flags_s": round(flags_s, 3),
            "users": users,
            "exit_code": process.returncode,
            "samples": counters.get("raw_rows", 0),
            "counters": counters,
            "cpu": cpu,
            "cpu_warning": CPU_WARNING in log_text,
            "loadavg": _loadavg(),
            "command": shlex.join(["python", *args[1:]]),
        }

    def _progress(
        self, n: int, total_runs: int, elapsed: float, total: float, record: dict[str, Any]
    ) -> str:
        cpu = record["cpu"]
        locust_cpu = cpu.get("mean_pct", {}).get("locust", float("nan"))
        peak = cpu.get("max_pct", {}).get("locust", float("nan"))
        warn = "  CPU WARNING" if record["cpu_warning"] or peak > 90 else ""
        failed = "" if record["exit_code"] == 0 else f"  exit {record['exit_code']}"
        return (
            f"[{n:>2}/{total_runs}] {_clock(elapsed)} / ~{_clock(total)}  "
            f"{record['feature']:<7} {record['target']:<7} {record['mode']:<8} "
            f"repeat {record['repeat']}  {record['samples']:>6} samples  "
            f"locust CPU {locust_cpu:3.0f}% (peak {peak:3.0f}%)  "
            f"machine {cpu.get('machine_busy_pct', float('nan')):3.0f}%{warn}{failed}"
        )


def _clock(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


# --- environment ---------------------------------------------------------------------------

PACKAGES = (
    "locust",
    "gevent",
    "geventhttpclient",
    "websocket-client",
    "msgpack",
    "matplotlib",
    "numpy",
    "uvicorn",
    "uvloop",
    "starlette",
    "websockets",
)


def _loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _git() -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def _versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def environment() -> dict[str, Any]:
    """The machine and software a run measured, for the report."""
    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "host": platform.node(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "mem_gb": _mem_gb(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "versions": _versions(),
        "git": _git(),
        "loadavg": _loadavg(),
        "lightcone_env": {k: v for k, v in os.environ.items() if k.startswith("LIGHTCONE_")},
        "cwd": os.getcwd(),
    }


def tick_ms() -> int | None:
    """The edges' cursor tick (they inherit this environment)."""
    try:
        from edge_node.settings import EdgeSettings
        from shared.config import from_environ

        settings = from_environ(EdgeSettings, os.environ, core_url="http://127.0.0.1:1")
        return int(settings.tick_ms)
    except Exception:  # a bad LIGHTCONE_ variable: the report says "unknown"
        return None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m load.bench`` (same options as ``lightcone bench``)."""
    parser = argparse.ArgumentParser(prog="python -m load.bench", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
