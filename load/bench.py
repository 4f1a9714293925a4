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
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from load.cpu_meter import CpuMeter
from load.machine import environment, loadavg, shown_command
from load.plan import Plan, Scenario, add_arguments, plan_from
from load.topology import Topology, calibrate, set_flags
from shared.cli import plain_text

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
USER_CLASSES = {"suggest": ["SuggestHttpUser", "SuggestWsUser"], "cursors": ["CursorUser"]}
OUTPUTS = ("runs", "plots", "report.md", "results.json", "up.log")
"""What a bench writes in ``--out`` (and removes from an earlier run there); nothing else."""
CPU_WARNING = "CPU usage above 90%"
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
"""Whose versions the report lists."""


def configure(parser: argparse.ArgumentParser, command: str) -> None:
    """``lightcone bench``: its description, arguments and :func:`run`."""
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_arguments(parser)
    parser.set_defaults(run=run)


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
        env_before = environment(PACKAGES)
        scratch = Path(tempfile.mkdtemp(prefix="lightcone-bench-up-"))
        topology = Topology(self.plan, scratch, self.out / "up.log")
        p = self.plan
        say(
            f"lightcone bench: {len(p.order())} locust runs of {p.duration_s} s "
            f"({len(p.scenarios)} scenarios × {p.repeats}), core {p.core}, "
            f"edges {','.join(p.edges)}, user cities {','.join(p.users)} → {self.out}"
        )
        try:
            code = self._run_all(topology, started)
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
        self._write_results(topology, env_before, started)
        if not self.runs:
            return code or 1
        from load import report

        say("writing the report …")
        for line in report.build(self.out):
            say(line)
        say(f"report: {self.out / 'report.md'}  ({time.monotonic() - started:.0f} s in all)")
        return code

    def _run_all(self, topology: Topology, started: float) -> int:
        """Start the topology, calibrate, then every locust run; 1 if a run had no samples."""
        say("starting the topology (lightcone up) …")
        topology.start()
        say(f"topology ready in {time.monotonic() - started:.1f} s")
        for e in topology.status["entries"]:
            say(
                f"  {e['user_region']} → {e['target_region']} ({e['kind']:<7}) "
                f"simulated RTT {e['rtt_ms']:6.1f} ms, fiber floor {e['fiber_floor_ms']:6.1f} ms"
            )
        self.calibration = calibrate(topology)
        say(
            "calibration (one idle client, sequential GET /suggest): "
            + ", ".join(f"{c['label']} p50 {c['p50_ms']:.2f} ms" for c in self.calibration)
        )
        code = 0
        order = self.plan.order()
        for n, (repeat, scenario) in enumerate(order, start=1):
            record = self._one(topology, n, repeat, scenario)
            self.runs.append(record)
            per_run = sum(r["wall_s"] + r["flags_s"] for r in self.runs) / len(self.runs)
            elapsed = time.monotonic() - started
            total = elapsed + per_run * (len(order) - n)
            say(_progress(n, len(order), elapsed, total, record))
            if not record["samples"]:
                code = 1
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

    def _write_results(
        self, topology: Topology, env_before: dict[str, Any], started: float
    ) -> None:
        results = {
            "plan": {
                **dataclasses.asdict(self.plan),
                "scenarios": [s.name for s in self.plan.scenarios],
            },
            "command": self.command,
            "environment": env_before,
            "load_after": loadavg(),
            "wall_s": round(time.monotonic() - started, 1),
            "tick_ms": tick_ms(),
            "calibration": self.calibration,
            # Secrets of one run (the admin token, the control API's capability) stay out.
            "topology": {
                k: v for k, v in topology.status.items() if k not in ("admin_token", "control_url")
            },
            "runs": self.runs,
        }
        (self.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    def _one(self, topology: Topology, n: int, repeat: int, scenario: Scenario) -> dict[str, Any]:
        """One locust run of ``scenario``, with the flags set first; its record."""
        run_dir = self.out / "runs" / f"{n:02d}-{scenario.name}-r{repeat + 1}"
        run_dir.mkdir(parents=True)
        flags_s = set_flags(topology, scenario.mode)
        entries = topology.entries(scenario.target)
        users = self.plan.suggest_users if scenario.feature == "suggest" else self.plan.cursor_users
        args = self._locust_args(run_dir, entries[0]["url"], users, repeat, scenario)
        env = self._locust_env(run_dir, n, scenario, entries)
        started = time.monotonic()
        started_at = time.time()
        exit_code, meter = self._locust(args, env, run_dir / "locust.log", topology)
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
            "exit_code": exit_code,
            "samples": counters.get("raw_rows", 0),
            "counters": counters,
            "cpu": cpu,
            "cpu_warning": CPU_WARNING in log_text,
            "loadavg": loadavg(),
            "command": shown_command(["python", *args[1:]], self.out),
        }

    def _locust_args(
        self, run_dir: Path, host: str, users: int, repeat: int, scenario: Scenario
    ) -> list[str]:
        p = self.plan
        args = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"]
        args += ["-u", str(users), "-r", str(users), "-t", f"{p.duration_s}s"]
        args += ["--csv", str(run_dir / "locust"), "--only-summary", "--host", host]
        if p.html == "all" or (p.html == "first" and repeat == 0):
            args += ["--html", str(run_dir / "locust.html")]
        return args + USER_CLASSES[scenario.feature]

    def _locust_env(
        self, run_dir: Path, n: int, scenario: Scenario, entries: list[dict[str, Any]]
    ) -> dict[str, str]:
        """This environment without its ``LIGHTCONE_*`` variables, plus the run's own."""
        p = self.plan
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
        return env

    def _locust(
        self, args: list[str], env: dict[str, str], log_path: Path, topology: Topology
    ) -> tuple[int, CpuMeter]:
        """Run locust to its end (killed a minute past its duration), sampling CPU every 0.5 s.

        Returns its exit code and the CPU it, the topology and the machine used meanwhile.
        """
        deadline = time.monotonic() + self.plan.duration_s + 60
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
            meter = CpuMeter({"locust": [process.pid], **topology.pids()})
            try:
                meter.sample()
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
        return process.returncode, meter


def _progress(n: int, total_runs: int, elapsed: float, total: float, record: dict[str, Any]) -> str:
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
    parser = argparse.ArgumentParser(
        prog="python -m load.bench",
        description=plain_text(__doc__ or ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
