"""``lightcone bench``: the locust comparison — every rung (device, PoP, edge, central) at
every consistency level (tolerant, bounded, session, strict).

What one run does, all on loopback:

1. starts ``lightcone up`` (core, edges and latency proxies with simulated geography; with
   ``--pop`` when the plan goes through the PoP) as a subprocess and reads its status file:
   for each user city, one entry through its nearest edge (and that entry's PoP,
   ``pop_url``) and one through the *central* node (the edge in the core's region), each
   delayed by that user's simulated RTT;
2. finds what this tree can do (levels the core takes, the PoP, the device pack) and skips
   the scenarios it cannot run, each with a line saying why;
3. for each repeat, runs every scenario of the plan (:mod:`load.plan`) once — targets side by
   side, the order reversed every other repeat so drift hits all scenarios alike. Before each
   run it sets the features' levels through the demo's control API and waits until every
   edge shows them, and reads every edge's ``/metrics`` (core round trips, requests) before
   and after. A cut run cuts the far city's edge off the core (the control API's partition)
   for ``--cut-s`` seconds in its middle, heals it, and waits for the edge to link up again.
   Each run is ``python -m locust -f load/locustfile.py --headless`` with users spread
   round-robin over the user cities (``LIGHTCONE_TARGETS``); see ``USERS`` for who runs;
4. prints one line per run (elapsed / estimated total), measuring the CPU of locust, of the
   ``lightcone up`` process (which carries every proxy), of the nodes and of everything else;
5. stops the topology (SIGINT);
6. the mesh phase (``--mesh``; not with ``--quick`` unless asked): tolerant cursors between
   every pair of edge regions over the edge mesh and over the core's relay, against the
   one-way floor and the pair's own sum (:func:`load.bench_mesh.measure`, which starts a
   ``lightcone up`` of its own: one edge and one user per edge region, room tokens off);
   one line per part, mesh and core in turn;
7. writes ``--out``: ``results.json`` (everything measured), ``report.md`` and ``plots/``
   (:mod:`load.report`), and ``runs/<n>-<scenario>-r<k>/`` with locust's CSVs, HTML report
   and log, and the raw per-request times (``raw.csv.gz``).

Defaults take about 16 minutes (24 scenarios × 3 repeats, then the mesh phase; the first
line says how many runs); ``--quick`` about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from load import bench_mesh
from load.cpu_meter import CpuMeter
from load.machine import environment, loadavg, shown_command
from load.plan import MODES, Plan, Scenario, add_arguments, plan_from
from load.topology import (
    Topology,
    calibrate,
    edge_counts,
    flag_bodies,
    has_pack,
    level_refused,
    pop_missing,
    set_flags,
    wait_linked,
)
from shared.cli import plain_text

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
USERS = {
    ("suggest", "edge"): ["SuggestHttpUser", "SuggestWsUser"],
    ("suggest", "central"): ["SuggestHttpUser", "SuggestWsUser"],
    ("suggest", "pop"): ["SuggestHttpUser"],
    ("cursors", "edge"): ["CursorUser"],
    ("cursors", "central"): ["CursorUser"],
    ("device", "edge"): ["SuggestDeviceUser"],
}
"""Which locust users a run of (feature, target) has: a PoP caches HTTP answers only."""
STARTED_FILE = "started"
"""Written by the locustfile in the run's folder when the test starts (cuts are timed from it)."""
OUTPUTS = ("runs", "report.md", "results.json", "up.log")
"""What a bench writes in ``--out`` (and removes from an earlier run there), with the plots
of :data:`load.report.plots.OWN` in ``plots/``; nothing else (``docs/bench/plots`` holds
other benchmarks' plots too)."""
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
    skipped: list[dict[str, Any]] = field(default_factory=list)
    cut: dict[str, Any] = field(default_factory=dict)
    """The edge cut runs cut off (``region``) and the user cities behind it (``cities``)."""
    mesh: dict[str, Any] = field(default_factory=dict)
    """The mesh phase: its sizes and ``pairs`` (:class:`load.bench_mesh.Pair` each), or why
    there are none (``skipped``, ``failed``); empty without the phase."""

    def run(self) -> int:
        started = time.monotonic()
        self._prepare_out()
        env_before = environment(PACKAGES)
        scratch = Path(tempfile.mkdtemp(prefix="lightcone-bench-up-"))
        topology = Topology(self.plan, scratch, self.out / "up.log")
        p = self.plan
        length = sum(p.run_s(s) + RUN_OVERHEAD_S for _, s in p.order()) + mesh_estimate_s(p)
        what = []
        if p.scenarios:
            what.append(
                f"{len(p.order())} locust runs of {p.duration_s} s, cut runs "
                f"{p.duration_s + p.cut_s} s ({len(p.scenarios)} scenarios × {p.repeats})"
            )
        if p.mesh_phases:
            what.append(
                f"the mesh phase ({p.mesh_phases} parts of {p.duration_s} s, mesh and core "
                "relay in turn)"
            )
        say(
            f"lightcone bench: {', then '.join(what)}, about {_clock(length)} in all; core "
            f"{p.core}, edges {','.join(p.edges)}, user cities {','.join(p.users)} → {self.out}"
        )
        code = 0
        try:
            if p.scenarios:
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
        if p.mesh_phases and code != 130:
            code = self._mesh(started) or code
        self._write_results(topology, env_before, started)
        if not self.runs and "pairs" not in self.mesh:
            return code or 1
        from load import report

        say("writing the report …")
        for line in report.build(self.out):
            say(line)
        say(f"report: {self.out / 'report.md'}  ({time.monotonic() - started:.0f} s in all)")
        return code

    def _mesh(self, started: float) -> int:
        """The mesh phase (:func:`load.bench_mesh.measure`), in :attr:`mesh`; 1 if it failed,
        130 if interrupted."""
        p = self.plan
        if len(p.edges) < 2:
            self.mesh = {"skipped": "the mesh needs at least two edge regions"}
            say(f"skipping the mesh phase: {self.mesh['skipped']}")
            return 0
        say(
            f"the mesh phase: a lightcone up of its own (core {p.core}, an edge and one user "
            f"in each of {','.join(p.edges)}, room tokens off), {p.repeats} × mesh then core "
            f"relay, {p.duration_s} s each …"
        )
        begun = time.monotonic()

        def progress(n: int, phases: int, path: str, switched_s: float, samples: int) -> None:
            elapsed = time.monotonic() - started
            total = elapsed + (phases - n) * (p.duration_s + MESH_SWITCH_S)
            say(
                f"[mesh {n}/{phases}] {_clock(elapsed)} / ~{_clock(total)}  {path:<4} "
                f"switched in {switched_s:4.1f} s  {samples:>6} samples so far"
            )

        sizes = {
            "core": p.core,
            "edges": list(p.edges),
            "seconds": p.duration_s,
            "rounds": p.repeats,
            "hz": bench_mesh.HZ,
            "tick_ms": bench_mesh.TICK_MS,
            "margin_ms": bench_mesh.MARGIN_MS,
        }
        try:
            pairs = asyncio.run(
                bench_mesh.measure(
                    p.edges,
                    seconds=p.duration_s,
                    rounds=p.repeats,
                    core=p.core,
                    progress=progress,
                )
            )
        except (RuntimeError, OSError, httpx.HTTPError) as exc:
            say(f"lightcone bench: the mesh phase failed: {exc}")
            self.mesh = {**sizes, "failed": str(exc) or type(exc).__name__}
            return 1
        except KeyboardInterrupt:
            say("lightcone bench: interrupted")
            self.mesh = {**sizes, "failed": "interrupted"}
            return 130
        self.mesh = {
            **sizes,
            "wall_s": round(time.monotonic() - begun, 1),
            "pairs": [dataclasses.asdict(pair) for pair in pairs],
        }
        return 0

    def _run_all(self, topology: Topology, started: float) -> int:
        """Start the topology, calibrate, then every locust run; 1 if a run had no samples."""
        missing = pop_missing() if self.plan.needs_pop else None
        if missing:
            self._skip(lambda s: s.target == "pop", missing)
        pop = self.plan.needs_pop
        say("starting the topology (lightcone up" + (" --pop" if pop else "") + ") …")
        topology.start(pop=pop)
        say(f"topology ready in {time.monotonic() - started:.1f} s")
        self._abilities(topology)
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
            # what the runs so far took beyond their locust time, spread over the rest
            extra = sum(r["wall_s"] + r["flags_s"] + r["between_s"] - r["run_s"] for r in self.runs)
            left = sum(self.plan.run_s(s) for _, s in order[n:])
            elapsed = time.monotonic() - started
            total = elapsed + left + extra / len(self.runs) * (len(order) - n)
            total += mesh_estimate_s(self.plan)
            say(_progress(n, len(order), elapsed, total, record))
            if not record["samples"]:
                code = 1
        return code

    def _skip(self, which: Callable[[Scenario], bool], why: str) -> None:
        """Drop the scenarios ``which`` picks, with a line saying why."""
        dropped = set(filter(which, self.plan.scenarios))
        if dropped:
            names = ", ".join(s.name for s in self.plan.scenarios if s in dropped)
            say(f"skipping {names}: {why}")
            self.skipped.append({"scenarios": sorted(s.name for s in dropped), "why": why})
            self.plan = self.plan.without(dropped)

    def _abilities(self, topology: Topology) -> None:
        """Skip what the running topology cannot do: levels the core refuses, a PoP that
        did not come up, a missing device pack."""
        for level in MODES:
            if any(s.mode == level for s in self.plan.scenarios):
                refused = level_refused(topology, level)
                if refused:
                    why = f"the core refuses the level {level} ({refused})"
                    self._skip(partial(_at_level, level), why)
        if self.plan.needs_pop and not topology.entries("pop"):
            self._skip(lambda s: s.target == "pop", "lightcone up --pop gave no pop_url")
        if any(s.feature == "device" for s in self.plan.scenarios):
            missing = has_pack(topology)
            if missing:
                self._skip(lambda s: s.feature == "device", f"no device pack ({missing})")
        self.cut = cut_target(topology)
        if not self.plan.scenarios:
            raise RuntimeError("no scenario left to run")
        set_flags(topology, flag_bodies("suggest", "tolerant"))  # as before the probes

    def _prepare_out(self) -> None:
        from load.report.plots import OWN

        self.out.mkdir(parents=True, exist_ok=True)
        for pattern in OWN:
            for path in (self.out / "plots").glob(pattern):
                path.unlink()
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
            "publish_delay_ms": publish_delay_ms(),
            "calibration": self.calibration,
            "skipped": self.skipped,
            "cut": self.cut,
            "mesh": self.mesh,
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
        flags_s = set_flags(topology, flag_bodies(scenario.feature, scenario.mode))
        entries = topology.entries(scenario.target)
        users = self.plan.cursor_users if scenario.feature == "cursors" else self.plan.suggest_users
        args = self._locust_args(run_dir, entries[0]["url"], users, repeat, scenario)
        env = self._locust_env(run_dir, n, scenario, entries)
        counts_before = _counts(topology)
        started = time.monotonic()
        started_at = time.time()
        exit_code, meter, cut = self._locust(args, env, run_dir, topology, scenario)
        wall = time.monotonic() - started
        between = time.monotonic()
        if cut:
            cut["relink_s"] = round(wait_linked(topology, cut["region"]), 2)
        counts_after = _counts(topology)
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
            "run_s": self.plan.run_s(scenario),
            "wall_s": round(wall, 2),
            "flags_s": round(flags_s, 3),
            "between_s": round(time.monotonic() - between, 2),
            "users": users,
            "exit_code": exit_code,
            "samples": counters.get("raw_rows", 0),
            "counters": counters,
            "edge_counts": {
                k: round(v - counts_before.get(k, 0.0), 3) for k, v in counts_after.items()
            },
            "cut": cut,
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
        args += ["-u", str(users), "-r", str(users), "-t", f"{p.run_s(scenario)}s"]
        args += ["--csv", str(run_dir / "locust"), "--only-summary", "--host", host]
        if p.html == "all" or (p.html == "first" and repeat == 0):
            args += ["--html", str(run_dir / "locust.html")]
        return args + USERS[(scenario.feature, scenario.target)]

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
                "LIGHTCONE_ZIPF_S": str(p.zipf_s),
            }
        )
        if scenario.feature == "suggest":  # the same read-mostly mix at every level
            env["LIGHTCONE_SEARCH_SHARE"] = str(p.search_share)
        if scenario.mode == "session":
            env["LIGHTCONE_SESSION"] = "1"
        if scenario.target == "pop":
            env["LIGHTCONE_CACHE_TAG"] = f"{n}"
        return env

    def _locust(
        self,
        args: list[str],
        env: dict[str, str],
        run_dir: Path,
        topology: Topology,
        scenario: Scenario,
    ) -> tuple[int, CpuMeter, dict[str, Any]]:
        """Run locust to its end (killed a minute past its duration), sampling CPU every 0.5 s;
        in a cut run, cut the edge's link :meth:`Plan.run_s` / 2 − ``cut_s`` / 2 after the
        test starts and heal it ``cut_s`` later (healed in any case before this returns).

        Returns its exit code, the CPU it, the topology and the machine used meanwhile, and
        the cut (region, cities, wall-clock ``cut_at`` and ``healed_at``; empty without one).
        """
        p = self.plan
        deadline = time.monotonic() + p.run_s(scenario) + 60
        cut: dict[str, Any] = {}
        cut_after = (p.run_s(scenario) - p.cut_s) / 2
        with (run_dir / "locust.log").open("wb") as log:
            process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
            meter = CpuMeter({"locust": [process.pid], **topology.pids()})
            next_sample = time.monotonic()
            try:
                while process.poll() is None:
                    now = time.monotonic()
                    if now > deadline:
                        process.kill()
                        break
                    if now >= next_sample:
                        meter.sample()
                        next_sample = now + 0.5
                    if scenario.cut and self.cut:
                        cut = self._cut_step(topology, run_dir, cut, cut_after)
                    try:
                        process.wait(0.05 if scenario.cut else 0.5)
                    except subprocess.TimeoutExpired:
                        pass
            finally:
                if process.poll() is None:
                    process.kill()
                process.wait()
                if cut and "healed_at" not in cut:
                    topology.control("POST", f"/heal/{cut['region']}")
                    cut["healed_at"] = round(time.time(), 3)
        return process.returncode, meter, cut

    def _cut_step(
        self, topology: Topology, run_dir: Path, cut: dict[str, Any], cut_after: float
    ) -> dict[str, Any]:
        """Cut or heal when it is time (times from the locustfile's ``started`` file)."""
        started = run_dir / STARTED_FILE
        if not started.exists() or "healed_at" in cut:
            return cut
        test_started = float(started.read_text() or 0)
        now = time.time()
        region = self.cut["region"]
        if not cut and now >= test_started + cut_after:
            topology.control("POST", f"/partition/{region}")
            return {**self.cut, "cut_at": round(time.time(), 3)}
        if cut and now >= cut["cut_at"] + self.plan.cut_s:
            topology.control("POST", f"/heal/{region}")
            return {**cut, "healed_at": round(time.time(), 3)}
        return cut


def _at_level(level: str, scenario: Scenario) -> bool:
    """A scenario of the suggestion feature at ``level`` (cursors keep their levels)."""
    return scenario.mode == level and scenario.feature != "cursors"


RUN_OVERHEAD_S = 3
"""Seconds a run takes beyond its locust time (locust's start-up, flags, metrics), for the
first estimate of the whole bench's length."""
MESH_START_S = 10
MESH_SWITCH_S = 3
"""What the mesh phase takes beyond its measured parts, for the estimates: its own
``lightcone up`` starting and stopping, and each switch between mesh and core relay (every
edge must see its legs up or cut, then a settling second)."""


def mesh_estimate_s(plan: Plan) -> float:
    """The mesh phase's length, roughly; 0 without it."""
    if not plan.mesh_phases or len(plan.edges) < 2:
        return 0
    return MESH_START_S + plan.mesh_phases * (plan.duration_s + MESH_SWITCH_S)


def cut_target(topology: Topology) -> dict[str, Any]:
    """The edge cut runs cut off: the nearest edge of the first user city outside the core's
    region (else the first); and the user cities whose entries lead to it."""
    entries = topology.entries("edge")
    core = topology.status["core_region"]
    far = [e for e in entries if e["target_region"] != core] or entries
    region = far[0]["target_region"]
    cities = [e["user_region"] for e in entries if e["target_region"] == region]
    return {"region": region, "cities": cities}


def _counts(topology: Topology) -> dict[str, float]:
    """Every edge's counts (:func:`edge_counts`), or none if an edge does not answer."""
    try:
        return edge_counts(topology)
    except OSError:
        return {}


def _progress(n: int, total_runs: int, elapsed: float, total: float, record: dict[str, Any]) -> str:
    cpu = record["cpu"]
    locust_cpu = cpu.get("mean_pct", {}).get("locust", float("nan"))
    peak = cpu.get("max_pct", {}).get("locust", float("nan"))
    warn = "  CPU WARNING" if record["cpu_warning"] or peak > 90 else ""
    failed = "" if record["exit_code"] == 0 else f"  exit {record['exit_code']}"
    return (
        f"[{n:>2}/{total_runs}] {_clock(elapsed)} / ~{_clock(total)}  "
        f"{record['feature']:<7} {record['target']:<7} {record['mode']:<8} "
        f"{'cut' if record['cut'] else '   '} "
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


def publish_delay_ms() -> int | None:
    """The core's publish delay (it inherits this environment): the longest a committed
    change waits before it goes out to the edges."""
    try:
        from core_region.settings import CoreSettings
        from shared.config import from_environ

        return int(from_environ(CoreSettings, os.environ).publish_delay_ms)
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
