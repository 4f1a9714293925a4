"""The topology ``lightcone bench`` measures: ``lightcone up`` as a subprocess, its flags, and a
calibration of its latency proxies before any load."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from load.plan import FEATURES, Plan


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
        args += ["--room-auth", "off"]  # the load generator's members join without tokens
        if p.access_ms is not None:
            args += ["--access-ms", str(p.access_ms)]
        if p.jitter:
            args.append("--jitter")
        return args

    def start(self, timeout_s: float = 180) -> None:
        """Start and wait for the status file (then in :attr:`status`).

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
