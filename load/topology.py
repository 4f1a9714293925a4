"""The topology ``lightcone bench`` measures: ``lightcone up`` as a subprocess, its flags and
link cuts (through the demo's control API), what its edges count (``/metrics``), what it can do
(:func:`abilities`), and a calibration of its latency proxies before any load."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from load.plan import SUPPORTED, Plan

ONE_ADDRESS = {
    "LIGHTCONE_HTTP_RATE": "1000000",
    "LIGHTCONE_HTTP_BURST": "1000000",
    "LIGHTCONE_MAX_CLIENT_CONNECTIONS": "100000",
}
"""Per-client budgets lifted for load tests: every simulated user comes from 127.0.0.1, where
real users each have an address of their own (an explicit LIGHTCONE_ variable still wins)."""


class Topology:
    """``lightcone up`` as a subprocess: started, read from its status file, stopped."""

    def __init__(self, plan: Plan, data_dir: Path, log_path: Path) -> None:
        self.plan = plan
        self.data_dir = data_dir
        self.status_file = data_dir / "status.json"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.status: dict[str, Any] = {}

    def command(self, pop: bool = False) -> list[str]:
        """``lightcone up`` for this plan; ``pop``: with a PoP (nginx) per user city."""
        p = self.plan
        args = [sys.executable, "-m", "shared.cli", "up", "--core", p.core]
        args += ["--edges", ",".join(p.edges), "--users", ",".join(p.users)]
        args += ["--data-dir", str(self.data_dir / "demo"), "--status-file", str(self.status_file)]
        args += ["--room-auth", "off"]  # the load generator's members join without tokens
        if p.access_ms is not None:
            args += ["--access-ms", str(p.access_ms)]
        if p.jitter:
            args.append("--jitter")
        if pop:
            args.append("--pop")
        return args

    def start(self, timeout_s: float = 180, pop: bool = False) -> None:
        """Start and wait for the status file (then in :attr:`status`).

        Raises:
            RuntimeError: ``lightcone up`` exited or was not ready in time.
        """
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(pop),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**ONE_ADDRESS, **os.environ},
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"lightcone up exited with {self.process.returncode}:\n{tail}")
            try:
                self.status = json.loads(self.status_file.read_text())
                return
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
        """Each user city's entry to ``target`` (``edge``, ``central``, or ``pop``: the edge
        entry's ``pop_url`` as its ``url``)."""
        if target != "pop":
            return [e for e in self.status["entries"] if e["kind"] == target]
        return [
            {**e, "url": e["pop_url"]}
            for e in self.status["entries"]
            if e["kind"] == "edge" and e.get("pop_url")
        ]

    def edges(self) -> list[dict[str, Any]]:
        return [n for n in self.status["nodes"] if n["kind"] == "edge"]

    def control(self, method: str, path: str, body: Any = None) -> Any:
        """A call to the demo's control API (``path`` below its capability)."""
        return _request(method, f"{self.status['control_url']}{path}", body)

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


def flag_bodies(feature: str, mode: str) -> dict[str, dict[str, Any]]:
    """What each feature's flag is set to for a run of ``feature`` at level ``mode``.

    The suggestion feature (which ``device`` runs use too) takes ``mode``; cursors take it
    when they have it, else tolerant, and the other way round.
    """
    flag = "cursors" if feature == "cursors" else "suggest"
    other = "suggest" if flag == "cursors" else "cursors"
    other_mode = mode if mode in SUPPORTED[other][1] else "tolerant"
    return {flag: {"level": mode}, other: {"level": other_mode}}


def set_flags(
    topology: Topology, bodies: dict[str, dict[str, Any]], timeout_s: float = 15
) -> float:
    """Set each feature's flag through the control API; wait until every edge shows it.

    Returns the seconds it took. Raises ``RuntimeError`` if an edge did not follow in time,
    ``urllib.error.HTTPError`` if the core refused a level.
    """
    started = time.monotonic()
    for feature, body in bodies.items():
        topology.control("PUT", f"/flags/{feature}", body)
    deadline = started + timeout_s
    while True:
        lagging = []
        for edge in topology.edges():
            flags = _request("GET", f"{edge['url']}/status").get("flags", {})
            if any(flags.get(f, {}).get("level") != b["level"] for f, b in bodies.items()):
                lagging.append(edge["region"])
        if not lagging:
            return time.monotonic() - started
        if time.monotonic() > deadline:
            levels = ", ".join(f"{f} {b['level']}" for f, b in bodies.items())
            raise RuntimeError(f"edges {', '.join(lagging)} did not switch to {levels}")
        time.sleep(0.02)


def level_refused(topology: Topology, level: str) -> str | None:
    """Why the core refuses the suggestion feature at ``level`` (its error), or ``None``."""
    try:
        topology.control("PUT", "/flags/suggest", {"level": level})
    except urllib.error.HTTPError as exc:
        return f"{exc.code} {exc.read().decode(errors='replace')[:200]}"
    return None


def has_pack(topology: Topology) -> str | None:
    """Why the edges have no device pack (``GET /suggest/pack``), or ``None``."""
    edge = topology.edges()[0]
    try:
        with urllib.request.urlopen(f"{edge['url']}/suggest/pack", timeout=10) as answer:
            answer.read()
    except urllib.error.HTTPError as exc:
        return f"GET /suggest/pack answers {exc.code}"
    return None


def pop_missing() -> str | None:
    """Why ``lightcone up --pop`` cannot run here (no such option in this tree, or no
    nginx), or ``None``."""
    import argparse

    from deploy.local.cli import configure

    parser = argparse.ArgumentParser()
    configure(parser, "up")
    if "--pop" not in parser.format_help():
        return "this tree's lightcone up has no --pop"
    from deploy.local import pop

    try:
        pop.program()
    except pop.NginxMissing as exc:
        return str(exc)
    return None


def wait_linked(topology: Topology, region: str, timeout_s: float = 60) -> float:
    """Wait until the edge in ``region`` has its link up, is fresh, and answers a strict read
    again (its circuit breaker, opened by the reads that failed during a cut, closed by a
    trial that succeeds); the seconds it took. Leaves the suggestion feature strict: the next
    run sets its own levels.

    Raises ``RuntimeError`` past ``timeout_s``.
    """
    edge = next(e for e in topology.edges() if e["region"] == region)
    started = time.monotonic()
    deadline = started + timeout_s
    set_flags(topology, {"suggest": {"level": "strict"}}, timeout_s)
    while True:
        status = _request("GET", f"{edge['url']}/status")
        if status.get("link") == "up" and not status.get("stale"):
            try:
                with urllib.request.urlopen(f"{edge['url']}/suggest?q=a", timeout=10):
                    return time.monotonic() - started
            except urllib.error.HTTPError as exc:
                if exc.code != 503:
                    raise
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the edge in {region} did not answer again within {timeout_s:.0f} s"
            )
        time.sleep(0.05)


ROUND_TRIPS = "lightcone_edge_core_round_trips"
"""The edges' counter of reads that waited for the core (``{feature,level}``)."""
EDGE_REQUESTS = {
    ("lightcone_request_seconds_count", "route"): ("/suggest", "/suggest/pack"),
    ("lightcone_ws_message_seconds_count", "type"): ("suggest",),
}
"""Which request counters count a user request reaching an edge (the PoP's origin)."""


def edge_counts(topology: Topology) -> dict[str, float]:
    """What the edges have counted so far, summed over them: ``round_trips`` (every level),
    ``round_trips <level>``, and per route ``http /suggest``, ``ws suggest`` …; a counter an
    edge does not have is absent."""
    found: dict[str, float] = {}
    for edge in topology.edges():
        with urllib.request.urlopen(f"{edge['url']}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        for key, value in read_counts(text).items():
            found[key] = found.get(key, 0.0) + value
    return found


def read_counts(text: str) -> dict[str, float]:
    """The counts :func:`edge_counts` reads, from one edge's ``/metrics`` text."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == ROUND_TRIPS:  # declared: none yet is a count of 0
            found.setdefault("round_trips", 0.0)
        for sample in family.samples:
            if family.name == ROUND_TRIPS and sample.name.endswith("_total"):
                level = sample.labels.get("level", "")
                for key in ("round_trips", f"round_trips {level}"):
                    found[key] = found.get(key, 0.0) + sample.value
            for (name, label), values in EDGE_REQUESTS.items():
                if sample.name == name and sample.labels.get(label) in values:
                    kind = "http" if label == "route" else "ws"
                    key = f"{kind} {sample.labels[label]}"
                    found[key] = found.get(key, 0.0) + sample.value
    return found


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
