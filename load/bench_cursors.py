"""Cursor fan-out benchmark: one room of N members moving at R Hz on one edge.

Run: ``python -m load.bench_cursors [--members 200] [--hz 30] [--seconds 10]``

What it measures, all on loopback:

* **same edge** — a core and one edge (tick 25 ms, tolerant mode). N members join one room
  and each moves at R Hz. A member's move encodes who moved (``y`` = its index) and when
  (``x`` = a counter), so a receiver knows the send time of every position it is given (one
  process, one clock). A few *probe* members decode every frame and time every position;
  the others are lean clients that send their moves and read (and drop) what they receive,
  so the load generator stays light. Reported: moves/s in, frames/s and positions/s out,
  delivery p50/p99, and the edge's CPU (from /proc).
* **cross edge** — two more edges whose links to the core run through latency proxies
  (one-way ``--link-ms``): members move on one, probes listen on the other. Expected:
  both one-way legs plus up to a tick.

Target (DESIGN §7): same-edge p99 ≤ one tick + 5 ms at 200 members × 30 Hz on one core.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.protocol import State
from websockets.uri import parse_uri

from deploy.local.latency import LatencyProxy
from deploy.local.supervisor import Child, Supervisor
from load.histogram import bucket_delta, bucket_quantile, parse_histogram, parse_sum
from load.machine import process_cpu_s
from shared.protocol import Join, Move, Moves, decode, encode

ROOM = "bench"
TICK_MS = 25
HELD = "lightcone_cursor_held_seconds"
"""The edge's server-side delivery histogram: from a move's arrival to the frame that carries it."""
FRAMES = "lightcone_cursor_frames_per_tick"
"""Room frames sent per tick: its ``_sum`` counts the frames sent so far."""


def say(text: str) -> None:
    print(text, flush=True)


@dataclass
class Clock:
    """Send times of every move, keyed by (member index, counter)."""

    sent: dict[tuple[int, int], float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    recording: bool = False


class LeanMember(asyncio.Protocol):
    """A member that moves and drops what it receives (no frame parsing on the way in)."""

    def __init__(self, url: str) -> None:
        self.protocol = ClientProtocol(parse_uri(url), max_size=None)
        self.transport: asyncio.Transport | None = None
        self.open = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.protocol.send_request(self.protocol.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        if not self.open.is_set():
            self.protocol.receive_data(data)
            self.protocol.events_received()
            if self.protocol.state is State.OPEN:
                self.open.set()

    def send(self, payload: bytes) -> None:
        self.protocol.send_binary(payload)
        self._flush()

    def _flush(self) -> None:
        assert self.transport is not None
        for data in self.protocol.data_to_send():
            if data:
                self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def lean_member(url: str) -> LeanMember:
    host, port = url.removeprefix("ws://").split("/")[0].rsplit(":", 1)
    loop = asyncio.get_running_loop()
    _, member = await loop.create_connection(lambda: LeanMember(url), host, int(port))
    async with asyncio.timeout(10):
        await member.open.wait()
    return member


async def probe(url: str, clock: Clock, stop: asyncio.Event) -> None:
    """Join and time every position received."""
    async with connect(url, compression=None, max_size=None) as ws:
        await ws.send(encode(Join(ROOM, "probe", "#000000")))
        while not stop.is_set():
            try:
                async with asyncio.timeout(0.5):
                    data = await ws.recv(decode=False)
            except TimeoutError:
                continue
            now = time.perf_counter()
            message = decode(data, strict=False)
            if not clock.recording or not isinstance(message, Moves):
                continue
            for p in message.moves:
                sent = clock.sent.get((p.y, p.x))
                if sent is not None:
                    clock.latencies.append((now - sent) * 1000)


async def mover(
    index: int, member: LeanMember, hz: float, clock: Clock, stop: asyncio.Event
) -> None:
    """Move at ``hz``, each move naming (index, counter) in its coordinates."""
    interval = 1 / hz
    loop = asyncio.get_running_loop()
    next_at = loop.time() + interval * (index % 97) / 97  # spread the members' phases
    counter = 0
    while not stop.is_set():
        await asyncio.sleep(max(0.0, next_at - loop.time()))
        next_at += interval
        counter = (counter + 1) % 10000
        clock.sent[(index, counter)] = time.perf_counter()
        member.send(encode(Move(counter, index)))


def scrape(edge_url: str) -> str:
    """The edge's Prometheus metrics."""
    with urllib.request.urlopen(f"{edge_url}/metrics/", timeout=5) as response:
        body: bytes = response.read()
    return body.decode()


def held_ms(before: str, after: str, q: float) -> float:
    """``q`` of the server-side delivery times between two scrapes, interpolated within its
    bucket, in ms (NaN without observations)."""
    held = bucket_delta(parse_histogram(after, HELD), parse_histogram(before, HELD))
    value = bucket_quantile(held, q)
    return math.nan if value is None else value * 1000


def frames_sent(before: str, after: str) -> float:
    return (parse_sum(after, FRAMES) or 0.0) - (parse_sum(before, FRAMES) or 0.0)


@dataclass
class Result:
    name: str
    members: int
    hz: float
    seconds: float
    moves_in: float
    positions_out: float
    edge_cpu: float
    latencies: list[float]
    held_p50_ms: float = math.nan
    held_p99_ms: float = math.nan
    frames_out: float = math.nan

    def line(self) -> str:
        lat = sorted(self.latencies)
        p50 = statistics.median(lat) if lat else float("nan")
        p99 = lat[int(len(lat) * 0.99)] if lat else float("nan")
        return (
            f"{self.name:<11} {self.members:>4} × {self.hz:g} Hz  moves in {self.moves_in:>7.0f}/s"
            f"  frames out {self.frames_out:>6.0f}/s  positions out {self.positions_out:>8.0f}/s"
            f"  edge CPU {self.edge_cpu:4.0%}"
            f"\n{'':<11} delivery at the probes p50 {p50:6.1f} ms  p99 {p99:6.1f} ms "
            f"({len(lat)} samples); server side (edge histogram) p50 {self.held_p50_ms:5.1f} ms"
            f"  p99 {self.held_p99_ms:5.1f} ms"
        )


def ws_url(node: Child) -> str:
    return node.url.replace("http://", "ws://") + "/ws"


async def run_room(
    name: str, move_url: str, probe_url: str, edge: Child, members: int, args: argparse.Namespace
) -> Result:
    """Members move on ``move_url``; probes listen on ``probe_url``; ``edge``, the one that
    runs the room's ticks, is the one measured."""
    probes, hz, seconds = args.probes, args.hz, args.seconds
    clock, stop = Clock(), asyncio.Event()
    say(f"{name}: connecting {members} members and {probes} probes ...")
    lean = [await lean_member(move_url) for _ in range(members - probes)]
    for m in lean:
        m.send(encode(Join(ROOM, "m", "#336699")))
    probe_tasks = [asyncio.create_task(probe(probe_url, clock, stop)) for _ in range(probes)]
    move_tasks = [asyncio.create_task(mover(i, m, hz, clock, stop)) for i, m in enumerate(lean)]
    await asyncio.sleep(2.0)  # warm-up: joins settle, ticks run
    say(f"{name}: measuring for {seconds:g} s ...")
    metrics0 = scrape(edge.url)
    cpu0, t0 = process_cpu_s(edge.pid), time.perf_counter()
    sent0 = len(clock.sent)
    clock.recording = True
    await asyncio.sleep(seconds)
    clock.recording = False
    elapsed = time.perf_counter() - t0
    cpu = (process_cpu_s(edge.pid) - cpu0) / elapsed
    metrics1 = scrape(edge.url)
    moves_in = (len(clock.sent) - sent0) / elapsed
    stop.set()
    await asyncio.gather(*move_tasks, *probe_tasks, return_exceptions=True)
    for m in lean:
        m.close()
    return Result(
        name,
        members,
        hz,
        elapsed,
        moves_in,
        moves_in * members,
        cpu,
        clock.latencies,
        held_ms(metrics0, metrics1, 0.5),
        held_ms(metrics0, metrics1, 0.99),
        frames_sent(metrics0, metrics1) * members / elapsed,
    )


async def main_async(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="lightcone-cursors-"))
    env = {"LIGHTCONE_TICK_MS": str(TICK_MS), "LIGHTCONE_MAX_ROOM_MEMBERS": "1000"}
    with Supervisor(work / "logs") as supervisor:
        core = await asyncio.to_thread(
            supervisor.start,
            "core",
            ["core", "--port", "0", "--data-dir", str(work / "core")],
            env,
            "Application startup complete",
            120,
        )
        edge = await _start_edge(supervisor, "edge", "iad", core.url, env)
        url = ws_url(edge)
        results = [await run_room("same edge", url, url, edge, args.members, args)]
        results.append(await _cross_edge(supervisor, core.url, env, args))
    _report(results, args)
    return 0


async def _start_edge(
    supervisor: Supervisor, name: str, region: str, core_url: str, env: dict[str, str]
) -> Child:
    args = ["edge", "--port", "0", "--region", region, "--core-url", core_url]
    return await asyncio.to_thread(supervisor.start, name, args, env, "loaded snapshot", 60)


async def _cross_edge(
    supervisor: Supervisor, core_url: str, env: dict[str, str], args: argparse.Namespace
) -> Result:
    """Two more edges, each linked to the core through a latency proxy (``--link-ms`` each
    way): members move on the first, probes listen on the second."""
    host, port = core_url.removeprefix("http://").rsplit(":", 1)
    proxies: list[LatencyProxy] = []
    try:
        edges = []
        for region in ("lhr", "syd"):
            proxy = LatencyProxy(
                host,
                int(port),
                up_delay_s=args.link_ms / 1000,
                down_delay_s=args.link_ms / 1000,
                name=f"link-{region}",
            )
            await proxy.start()
            proxies.append(proxy)
            link = f"http://127.0.0.1:{proxy.port}"
            edges.append(await _start_edge(supervisor, f"edge-{region}", region, link, env))
        a, b = (ws_url(e) for e in edges)
        return await run_room("cross edge", a, b, edges[0], args.cross_members, args)
    finally:
        for proxy in proxies:
            await proxy.close()


def _report(results: list[Result], args: argparse.Namespace) -> None:
    say("")
    say(
        f"tick {TICK_MS} ms; cross-edge links {args.link_ms:g} ms one way each "
        f"(expected ≈ {2 * args.link_ms:g} ms + up to a tick)"
    )
    for result in results:
        say(result.line())
    same = sorted(results[0].latencies)
    if same:
        p99 = same[int(len(same) * 0.99)]
        server = results[0].held_p99_ms
        verdict = "met" if server <= TICK_MS + 5 else "NOT met"
        say(
            f"target same-edge p99 ≤ {TICK_MS + 5} ms (server side): {verdict} ({server:.1f} ms;"
            f" {p99:.1f} ms at the probes, which adds the load generator's own delays)"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m load.bench_cursors", description=__doc__)
    parser.add_argument("--members", type=int, default=200, help="members in the room [200]")
    parser.add_argument("--cross-members", type=int, default=50, help="members, cross edge [50]")
    parser.add_argument("--probes", type=int, default=4, help="members that time moves [4]")
    parser.add_argument("--hz", type=float, default=30.0, help="moves per member per s [30]")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds [10]")
    parser.add_argument("--link-ms", type=float, default=40.0, help="cross-edge one-way [40]")
    args = parser.parse_args(argv)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
