"""One phase of the serving benchmark: a closed-loop load on one target, and what it cost.

A round runs five phases, :data:`PHASES`: HTTP ``/suggest`` on the edge vs ``/echo`` on the
echo app, then websocket ``suggest`` messages to the edge's ``/ws`` vs the same frames to the
echo's ``/ws`` and ``/ws-codec``. Every other round reverses each transport's phases
(:func:`swapped`) so drift hits both sides alike.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from load.histogram import Buckets, bucket_delta, bucket_quantile, parse_histogram
from load.machine import machine_cpu_s
from load.serving import BenchError
from load.serving.http_client import http_load_python
from load.serving.result import LoadResult
from load.serving.servers import Server, http_get
from load.serving.workload import frames, paths
from load.serving.wrk import http_load_wrk
from load.serving.ws_client import ws_load

PHASES = [
    ("http", "suggest"),
    ("http", "echo"),
    ("ws", "suggest"),
    ("ws", "echo"),
    ("ws", "codec"),
]
"""(transport, target) of each phase of a round, in the order of odd rounds."""
HISTOGRAMS = {
    "http": ("lightcone_request_seconds", {"route": "/suggest"}),
    "ws": ("lightcone_ws_message_seconds", {"type": "suggest"}),
}
"""The edge's server-side histogram of each transport: name and label values."""


def swapped(order: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``order`` with each transport's phases reversed (HTTP still first, then websocket)."""
    out: list[tuple[str, str]] = []
    for transport in dict.fromkeys(t for t, _ in order):
        out += reversed([phase for phase in order if phase[0] == transport])
    return out


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
class Loads:
    """The loads of a round against the running edge and echo, run from this process.

    HTTP goes through ``wrk`` when :attr:`wrk` is its path (pinned to :attr:`pin_client`, its
    Lua scripts written to :attr:`script_dir`), else through the asyncio client.
    """

    runner: asyncio.Runner
    edge: Server
    echo: Server
    connections: int
    wrk: str | None
    pin_client: int | None
    script_dir: Path

    def __post_init__(self) -> None:
        self.paths = {route: paths(route) for route in ("/suggest", "/echo")}
        self.frames = frames()

    def run(self, transport: str, target: str, seconds: float) -> tuple[LoadResult, float]:
        """One load; its result and the CPU seconds the server used meanwhile."""
        server = self.edge if target == "suggest" else self.echo
        cpu0 = server.cpu_s()
        if transport == "http":
            result = self._http(server, "/suggest" if target == "suggest" else "/echo", seconds)
        else:
            path = "/ws-codec" if target == "codec" else "/ws"
            url = server.url.replace("http://", "ws://", 1) + path
            expect = "suggestions" if target == "suggest" else "suggest"
            result = self.runner.run(ws_load(url, self.frames, expect, self.connections, seconds))
        return result, server.cpu_s() - cpu0

    def _http(self, server: Server, route: str, seconds: float) -> LoadResult:
        if self.wrk:
            return http_load_wrk(
                self.wrk,
                server.url,
                self.paths[route],
                self.connections,
                max(1, round(seconds)),
                self.script_dir,
                self.pin_client,
            )
        host, port = server.host_port()
        load = http_load_python(host, port, self.paths[route], self.connections, seconds)
        return self.runner.run(load)

    def measure(self, round_: int, transport: str, target: str, seconds: float) -> Phase:
        """One load as a :class:`Phase`, with the machine's CPU and, for the edge, the
        server-side latency from its histograms (scraped before and after)."""
        before = self._scrape(transport) if target == "suggest" else []
        busy0, steal0 = machine_cpu_s()
        res, server_cpu = self.run(transport, target, seconds)
        busy1, steal1 = machine_cpu_s()
        phase = Phase(
            round=round_,
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
            delta = bucket_delta(self._scrape(transport), before)
            phase.server_buckets = delta
            phase.server_count = int(delta[-1][1]) if delta else 0
            phase.server_p50_s = bucket_quantile(delta, 0.5)
            phase.server_p99_s = bucket_quantile(delta, 0.99)
        return phase

    def _scrape(self, transport: str) -> Buckets:
        status, body = http_get(self.edge.url + "/metrics/", timeout_s=5)
        if status != 200:
            raise BenchError(f"GET /metrics/ on the edge: {status}")
        name, labels = HISTOGRAMS[transport]
        return parse_histogram(body.decode(), name, **labels)
