"""Tolerant cursors across edges: the edge mesh against the core's relay and the physics.

Run: ``python -m load.bench_mesh [--edges syd,sin,lhr,iad] [--seconds 8] [--rounds 2]``

It starts ``lightcone up`` (its own data dir, room tokens off), in which every edge pair has
its own leg with the measured RTT of its two regions and every user its entry to the nearest
edge (5 ms access RTT). One user per edge region joins one tolerant room through its entry;
each moves ``--hz`` times a second, a move saying who moved (``y``) and when (``x``, a
counter), so the receiver (this process, one clock) times every position it is shown.

Phases alternate ``--rounds`` times, side by side in one run: **mesh** (every leg up: ticks go
edge → edge) and **core** (every leg cut through the demo's control API: the edges fall back
to the core's relay, edge → core → edge). Each phase starts once every edge says so in its
``/status`` (peers ``up``, or not). Per city pair (both directions pooled), printed and written
to ``--out`` (JSON, and a plot unless ``--plot ''``):

* p50 / p99 of tolerant delivery, mesh and core;
* the one-way fiber floor (great-circle distance at 200,000 km/s) and the measured one-way
  (half the pair's median RTT);
* the pair's *own sum*: measured one way + the two users' access legs (half the access RTT
  each) + half a tick; the issue's target is mesh p50 within 10 ms of it (Sydney → Singapore:
  47.5 + 5 + 12.5 = 65 ms, target 75 ms).

Bounded: at most ``--rounds`` × 2 phases of ``--seconds`` each (:func:`check_sizes`), plus the
demo's start (60 s at most) and each phase's switch (30 s at most); loopback only; everything
it starts is stopped. ``lightcone bench`` runs the same measurement (:func:`measure`) as its
last phase.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from deploy.local import geography
from shared.protocol import Join, Move, Moves, decode, encode

ROOM = "bench-mesh"
TICK_MS = 25
"""The edges' default tick (``LIGHTCONE_TICK_MS``): half of it is the mean wait."""
MARGIN_MS = 10.0
"""The issue's allowance over a pair's own sum."""
START_TIMEOUT_S = 60.0
SWITCH_TIMEOUT_S = 30.0
SETTLE_S = 1.0
"""After a switch: moves already on their way by the old path are not counted."""
MESH_ENV = {"LIGHTCONE_HEARTBEAT_S": "0.5", "LIGHTCONE_LINK_TIMEOUT_S": "3"}
"""Quicker switches (a cut leg is seen within half a second); delivery is not affected."""
HZ = 20.0
"""Moves per second per user, by default."""
MAX_ROUNDS, MAX_SECONDS, MAX_HZ = 10, 120.0, 35.0
"""The sizes a run may ask for: its length is bounded, and one move per tick at most."""


def say(text: str) -> None:
    print(text, flush=True)


@dataclass
class Pair:
    """One city pair's figures (milliseconds)."""

    a: str
    b: str
    fiber_one_way_ms: float
    direct_one_way_ms: float
    own_sum_ms: float
    samples: dict[str, int] = field(default_factory=dict)
    p50_ms: dict[str, float] = field(default_factory=dict)
    p99_ms: dict[str, float] = field(default_factory=dict)

    @property
    def target_ms(self) -> float:
        return self.own_sum_ms + MARGIN_MS

    @property
    def label(self) -> str:
        return f"{_city(self.a)} ↔ {_city(self.b)}"


def _city(code: str) -> str:
    return geography.region(code).city.split(",")[0]


@dataclass
class Recorder:
    """Send times of every move, and the delivery samples of each path by ordered pair."""

    regions: list[str]
    sent: dict[tuple[int, int], tuple[float, str | None]] = field(default_factory=dict)
    samples: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)
    phase: str | None = None
    """The path being measured (``mesh``, ``core``); None between phases."""

    def moved(self, sender: int, counter: int) -> None:
        self.sent[(sender, counter)] = (time.perf_counter(), self.phase)

    def shown(self, receiver: int, moves: Moves) -> None:
        now = time.perf_counter()
        for p in moves.moves:
            sent = self.sent.get((p.y, p.x))
            if sent is None or sent[1] is None or sent[1] != self.phase or p.y == receiver:
                continue
            key = (sent[1], self.regions[p.y], self.regions[receiver])
            self.samples.setdefault(key, []).append((now - sent[0]) * 1000)


def check_sizes(seconds: float, rounds: int, hz: float) -> None:
    """Raises ValueError unless 1 ≤ rounds ≤ :data:`MAX_ROUNDS`, 1 ≤ seconds ≤ :data:`MAX_SECONDS`
    and 1 ≤ hz ≤ :data:`MAX_HZ`."""
    if not (1 <= rounds <= MAX_ROUNDS and 1 <= seconds <= MAX_SECONDS and 1 <= hz <= MAX_HZ):
        raise ValueError(
            f"rounds 1..{MAX_ROUNDS}, seconds 1..{MAX_SECONDS:g}, "
            f"hz 1..{MAX_HZ:g} (one move per tick at most)"
        )


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def own_sum_ms(a: str, b: str, access_rtt_ms: float) -> float:
    """Measured one way + two access legs (half an access RTT each) + half a tick."""
    return geography.link(a, b).p50_ms / 2 + access_rtt_ms + TICK_MS / 2


# --- the demo --------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def demo(
    edges: Sequence[str], data_dir: Path, core: str | None = None
) -> AsyncIterator[dict[str, Any]]:
    """``lightcone up`` with ``edges`` (one user each) and the core in ``core`` (default
    ``iad`` if an edge is there, else the first edge's region); yields its topology. Stopped
    with SIGINT (killed if it does not stop within 30 s)."""
    status = data_dir / "status.json"
    core = core or ("iad" if "iad" in edges else edges[0])
    env = {**os.environ, **MESH_ENV}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shared.cli", "up",
        "--core", core, "--edges", ",".join(edges), "--users", ",".join(edges),
        "--room-auth", "off", "--data-dir", str(data_dir / "demo"), "--status-file", str(status),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            while True:
                line = (await process.stdout.readline()).decode()
                if not line:
                    raise RuntimeError("lightcone up ended before it was ready")
                if line.startswith("["):
                    say(f"  {line.rstrip()}")
                if "Ctrl-C stops everything" in line:
                    break
        drain = asyncio.create_task(process.stdout.read())  # its pipe must not fill up
        try:
            yield json.loads(status.read_text())
        finally:
            drain.cancel()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        try:
            async with asyncio.timeout(30):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


async def peer_states(client: httpx.AsyncClient, edges: dict[str, str]) -> list[str]:
    """Every edge's view of each of its mesh peers."""
    states: list[str] = []
    for url in edges.values():
        peers = (await client.get(f"{url}/status")).json()["mesh"]["peers"]
        states += [peer["state"] for peer in peers.values()]
    return states


async def switch(
    client: httpx.AsyncClient, topology: dict[str, Any], edges: dict[str, str], path: str
) -> float:
    """Put every leg up (``mesh``) or cut (``core``), and wait until every edge sees it."""
    started = time.monotonic()
    action = "mesh-heal" if path == "mesh" else "mesh-partition"
    for region in edges:
        response = await client.post(f"{topology['control_url']}/{action}/{region}")
        response.raise_for_status()
    async with asyncio.timeout(SWITCH_TIMEOUT_S):
        while True:
            states = await peer_states(client, edges)
            if all((s == "up") == (path == "mesh") for s in states):
                break
            await asyncio.sleep(0.1)
    await asyncio.sleep(SETTLE_S)
    return time.monotonic() - started


# --- the users -----------------------------------------------------------------------------


async def user(index: int, url: str, recorder: Recorder, hz: float, stop: asyncio.Event) -> None:
    async with connect(url.replace("http://", "ws://") + "/ws", proxy=None) as ws:
        await ws.send(encode(Join(ROOM, f"u{index}", "#3366ff")))
        reader = asyncio.create_task(_read(index, ws, recorder))
        try:
            counter = itertools.count(1)
            while not stop.is_set():
                x = next(counter) % 10001
                recorder.moved(index, x)
                await ws.send(encode(Move(x, index)))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1 / hz):
                        await stop.wait()
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


async def _read(index: int, ws: ClientConnection, recorder: Recorder) -> None:
    async for data in ws:
        message = decode(data if isinstance(data, bytes) else data.encode())
        if isinstance(message, Moves):
            recorder.shown(index, message)


# --- the run -------------------------------------------------------------------------------


Progress = Callable[[int, int, str, float, int], None]
"""Called after each phase: its number, the number of phases, its path (``mesh``, ``core``),
the seconds its switch took, and the samples of that path so far."""


def print_phase(n: int, phases: int, path: str, switched_s: float, samples: int) -> None:
    say(f"[{n}/{phases}] {path:<4}  switched in {switched_s:4.1f} s, {samples} samples so far")


async def measure(
    regions: Sequence[str],
    *,
    seconds: float,
    rounds: int,
    hz: float = HZ,
    core: str | None = None,
    progress: Progress = print_phase,
) -> list[Pair]:
    """Start the demo with an edge and a user in each of ``regions``, alternate ``rounds``
    mesh and core phases of ``seconds`` each, stop it; the figures of every city pair.

    Raises:
        ValueError: sizes out of :func:`check_sizes`' bounds, an unknown region, or fewer
            than two regions.
        RuntimeError: the demo did not start.
    """
    check_sizes(seconds, rounds, hz)
    regions = list(regions)
    if len(regions) < 2:
        raise ValueError("the mesh needs at least two edge regions")
    for code in regions:
        geography.region(code)
    with tempfile.TemporaryDirectory(prefix="bench-mesh-") as tmp:
        async with (
            demo(regions, Path(tmp), core) as topology,
            httpx.AsyncClient(timeout=10) as client,
        ):
            edges = {n["region"]: n["url"] for n in topology["nodes"] if n["kind"] == "edge"}
            entry = {e["user_region"]: e["url"] for e in topology["entries"] if e["kind"] == "edge"}
            access_rtt_ms = min(e["rtt_ms"] for e in topology["entries"])
            recorder = Recorder(regions)
            stop = asyncio.Event()
            users = [
                asyncio.create_task(user(i, entry[r], recorder, hz, stop))
                for i, r in enumerate(regions)
            ]
            try:
                for n, path in enumerate(["mesh", "core"] * rounds):
                    took = await switch(client, topology, edges, path)
                    recorder.phase = path
                    await asyncio.sleep(seconds)
                    recorder.phase = None
                    got = sum(len(v) for (p, _, _), v in recorder.samples.items() if p == path)
                    progress(n + 1, 2 * rounds, path, took, got)
            finally:
                stop.set()
                await asyncio.gather(*users, return_exceptions=True)
            return figures(regions, recorder, access_rtt_ms)


def figures(regions: Sequence[str], recorder: Recorder, access_rtt_ms: float) -> list[Pair]:
    pairs = []
    for a, b in itertools.combinations(regions, 2):
        pair = Pair(
            a,
            b,
            fiber_one_way_ms=round(geography.fiber_floor_ms(a, b) / 2, 1),
            direct_one_way_ms=geography.link(a, b).p50_ms / 2,
            own_sum_ms=own_sum_ms(a, b, access_rtt_ms),
        )
        for path in ("mesh", "core"):
            values = recorder.samples.get((path, a, b), []) + recorder.samples.get((path, b, a), [])
            pair.samples[path] = len(values)
            if values:
                pair.p50_ms[path] = round(statistics.median(values), 1)
                pair.p99_ms[path] = round(quantile(values, 0.99), 1)
        pairs.append(pair)
    return pairs


def report(pairs: list[Pair]) -> str:
    lines = [
        "| city pair | one-way floor | direct one way | own sum | mesh p50 / p99 (n) "
        "| core relay p50 / p99 (n) | mesh p50 ≤ own sum + 10 |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for p in pairs:
        mesh = p.p50_ms.get("mesh")
        ok = "—" if mesh is None else ("yes" if mesh <= p.target_ms else "no")
        lines.append(
            f"| {p.label} | {p.fiber_one_way_ms:.1f} | {p.direct_one_way_ms:.1f} | "
            f"{p.own_sum_ms:.1f} | {_pq(p, 'mesh')} | {_pq(p, 'core')} | {ok} |"
        )
    return "\n".join(lines)


def _pq(pair: Pair, path: str) -> str:
    if path not in pair.p50_ms:
        return "—"
    return f"{pair.p50_ms[path]:.1f} / {pair.p99_ms[path]:.1f} ({pair.samples[path]})"


def plot(pairs: list[Pair], path: Path) -> None:
    """Per city pair: the floor, the own sum, and the p50 (bar) and p99 (whisker) of each path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 0.6 * len(pairs) + 1.5))
    ys = list(range(len(pairs)))
    for offset, name, color in ((-0.2, "mesh", "#1b9e77"), (0.2, "core", "#d95f02")):
        p50 = [p.p50_ms.get(name, 0.0) for p in pairs]
        p99 = [max(0.0, p.p99_ms.get(name, 0.0) - p.p50_ms.get(name, 0.0)) for p in pairs]
        label = "mesh (edge → edge)" if name == "mesh" else "core relay (edge → core → edge)"
        ax.barh(
            [y + offset for y in ys],
            p50,
            0.38,
            xerr=[[0] * len(p99), p99],
            color=color,
            label=f"{label}: p50, whisker p99",
            capsize=2,
        )
    ax.scatter(
        [p.fiber_one_way_ms for p in pairs],
        ys,
        marker="|",
        s=300,
        color="black",
        label="one-way fiber floor",
        zorder=3,
    )
    ax.scatter(
        [p.own_sum_ms for p in pairs],
        ys,
        marker="|",
        s=300,
        color="#7570b3",
        label="own sum (direct one way + access + half tick)",
        zorder=3,
    )
    ax.set_yticks(ys, [p.label for p in pairs])
    ax.invert_yaxis()
    ax.set_xlabel("tolerant cursor delivery, ms (lightcone up, simulated legs)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edges", default="syd,sin,lhr,iad", help="edge regions (the core: iad)")
    parser.add_argument("--seconds", type=float, default=8.0, help="per phase [8]")
    parser.add_argument("--rounds", type=int, default=2, help="mesh/core phase pairs [2]")
    parser.add_argument("--hz", type=float, default=HZ, help=f"moves per second per user [{HZ:g}]")
    parser.add_argument("--out", type=Path, default=Path("docs/bench/mesh.json"))
    parser.add_argument("--plot", default="docs/bench/plots/mesh.png", help="'' for none")
    args = parser.parse_args(argv)
    regions = [r.strip() for r in args.edges.split(",") if r.strip()]
    try:
        check_sizes(args.seconds, args.rounds, args.hz)
    except ValueError as exc:
        parser.error(str(exc))
    say(f"bench_mesh: lightcone up with edges {' '.join(regions)} ...")
    pairs = asyncio.run(measure(regions, seconds=args.seconds, rounds=args.rounds, hz=args.hz))
    table = report(pairs)
    say("")
    say(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps([asdict(p) for p in pairs], indent=2) + "\n")
    say(f"\nwrote {args.out}")
    if args.plot:
        plot(pairs, Path(args.plot))
        say(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
