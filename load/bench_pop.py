"""The PoP rung: ``python -m load.bench_pop`` — a Zipf query mix through a real nginx PoP per
user city.

The topology of ``lightcone up --pop``, started by the bench so that it can cut one city's
edge: one ``lightcone core`` (region ``iad``, the default corpus), one ``lightcone edge`` per
city, each linked to the core through a latency proxy with the regions' measured one-way
delay, and per city user → PoP (:mod:`deploy.local.pop`, no delay: it is with the user) →
latency proxy (the user's RTT to the edge, :func:`deploy.local.geography.user_rtt_ms`) → edge.
The edges run with their default cache settings (``LIGHTCONE_HTTP_CACHE_*``: max-age 1 s,
stale-while-revalidate 2 s, stale-if-error 10 s) and their per-client HTTP rate lifted.

The query mix: the vocabulary is the first :data:`PREFIX_CHARS` characters (lower case) of
the corpus's terms in the corpus's order (largest cities first), each prefix once, the first
``--vocabulary`` of them; a query is rank *k* with probability proportional to
``1 / k ** --zipf`` (default exponent 1.0, as web query logs roughly follow).
``--users`` closed-loop users per city, each on its own keep-alive connection to its city's
PoP, each sending ``--rate`` requests per second at most.

Phases, each bounded in time:

1. **tolerant**, ``--seconds``: per city, latency p50/p95/p99 of hits (``X-Cache-Status``
   ``HIT``, ``STALE``, ``UPDATING``, ``REVALIDATED``: answered by the PoP) and misses (``MISS``,
   ``EXPIRED``: the edge answered), the hit ratio, origin requests per user request (the
   edges' ``lightcone_request_seconds_count{route="/suggest"}``: every request that reached an
   edge, background refreshes included) and core round trips per user request
   (``lightcone_edge_core_round_trips_total`` where the edges have it).
2. **strict**: the flag flipped to strict (core admin API). First, for max-age +
   stale-while-revalidate + 2 s, how long the PoPs go on answering from their caches once
   every edge is strict (the flip reaches users only when their entries expire); then
   ``--strict-seconds`` measured as in (1): nothing is stored, every request is a miss and a
   core round trip.
3. **cut**: the first city's edge is stopped; its users go on for max-age + stale-if-error
   + 3 s. Reported: until when the PoP answered (200 from its cache) and when it stopped,
   against the bound max-age + stale-if-error (+ 1 s: nginx counts whole seconds).

Everything is on 127.0.0.1, every process the bench starts is stopped by PID on the way out,
progress once a second, tables at the end, a plot with ``--plot``. Figures:
docs/BENCHMARKS.md, "The PoP rung".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import logging
import random
import re
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from core_region.suggest.corpus import default_path
from deploy.local import geography
from deploy.local.cores import READY, START_TIMEOUT_S
from deploy.local.latency import LatencyProxy
from deploy.local.pop import NginxMissing, Pop, running
from deploy.local.supervisor import Child, Supervisor
from load.bench_store import machine_notes

CORE_REGION = "iad"
PREFIX_CHARS = 4
MAX_SECONDS = 120.0
"""Longest phase the bench runs (``--seconds``, ``--strict-seconds``)."""
REQUEST_TIMEOUT_S = 10.0
HIT = ("HIT", "STALE", "UPDATING", "REVALIDATED")
"""``X-Cache-Status`` values of answers the PoP gave from its cache."""
MAX_AGE_S, SWR_S, SIE_S = 1, 2, 10
"""The edges' default ``LIGHTCONE_HTTP_CACHE_MAX_AGE_S``, ``..._SWR_S`` and ``..._SIE_S``."""
EDGE_ENV = {"LIGHTCONE_HTTP_RATE": "1000000", "LIGHTCONE_HTTP_BURST": "1000000"}
"""Every user of the bench is one address: the edges' per-client rate lifted."""
_SUGGEST_COUNT = re.compile(
    r'^lightcone_request_seconds_count\{[^}]*route="/suggest"[^}]*\} (\S+)$', re.M
)
_ROUND_TRIPS = re.compile(r"^lightcone_edge_core_round_trips_total\{[^}]*\} (\S+)$", re.M)


def say(text: str) -> None:
    print(text, flush=True)


def vocabulary(size: int, corpus: Path | None = None) -> list[str]:
    """The first ``size`` distinct lower-case prefixes of :data:`PREFIX_CHARS` characters of
    the corpus's terms, in the corpus's order."""
    seen: dict[str, None] = {}
    with gzip.open(corpus or default_path(), "rt", encoding="utf-8") as lines:
        for line in lines:
            prefix = line.split("\t", 1)[0][:PREFIX_CHARS].lower()
            if len(prefix) == PREFIX_CHARS:
                seen.setdefault(prefix)
                if len(seen) == size:
                    break
    return list(seen)


def zipf_weights(n: int, exponent: float) -> list[float]:
    return [1 / (k**exponent) for k in range(1, n + 1)]


@dataclass
class Sample:
    at: float
    """Seconds since the phase began."""
    ms: float
    status: int
    cache: str
    q: str


@dataclass
class City:
    region: str
    edge: Child
    entry: LatencyProxy
    pop: Pop
    samples: dict[str, list[Sample]] = field(default_factory=dict)


def quantiles(values: list[float]) -> tuple[float, float, float] | None:
    if len(values) < 2:
        return None
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


async def user(
    pop: Pop, words: list[str], weights: list[float], rate: float, until: float, out: list[Sample]
) -> None:
    """One user: Zipf queries to ``pop`` at ``rate`` per second at most, until ``until``."""
    rand = random.Random(secrets.randbits(32))
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=pop.url, timeout=REQUEST_TIMEOUT_S) as client:
        while (now := time.monotonic()) < until:
            q = rand.choices(words, weights)[0]
            begun = time.perf_counter()
            try:
                response = await client.get("/suggest", params={"q": q})
                status, cache = response.status_code, response.headers.get("x-cache-status", "")
            except httpx.HTTPError:
                status, cache = 0, ""
            ms = (time.perf_counter() - begun) * 1000
            out.append(Sample(now - started, ms, status, cache, q))
            await asyncio.sleep(max(0.0, 1 / rate - ms / 1000))


async def load(
    cities: list[City], phase: str, seconds: float, args: argparse.Namespace, words: list[str]
) -> None:
    """Run every city's users for ``seconds``, with progress once a second."""
    weights = zipf_weights(len(words), args.zipf)
    until = time.monotonic() + seconds
    tasks = []
    for city in cities:
        samples = city.samples.setdefault(phase, [])
        for _ in range(args.users):
            tasks.append(
                asyncio.create_task(user(city.pop, words, weights, args.rate, until, samples))
            )
    while not all(t.done() for t in tasks):
        await asyncio.wait(tasks, timeout=1.0)
        done = [s for c in cities for s in c.samples[phase]]
        hits = sum(s.cache in HIT for s in done)
        say(f"  {phase}: {len(done)} requests, hit ratio {hits / max(1, len(done)):.2f}")
    for task in tasks:
        task.result()


async def edge_counts(cities: list[City]) -> tuple[float, float | None]:
    """Requests to ``/suggest`` and core round trips (``None``: not counted) over the edges."""
    requests, trips, counted = 0.0, 0.0, False
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as client:
        for city in cities:
            text = (await client.get(f"{city.edge.url}/metrics/")).text
            requests += sum(float(v) for v in _SUGGEST_COUNT.findall(text))
            # Declared with no sample yet (no read has waited): zero, not "not counted".
            counted = counted or "# TYPE lightcone_edge_core_round_trips" in text
            trips += sum(float(v) for v in _ROUND_TRIPS.findall(text))
    return requests, (trips if counted else None)


async def build(
    tmp: Path, regions: list[str], stack: contextlib.AsyncExitStack
) -> tuple[Child, list[City], dict[str, str]]:
    tokens = {
        "LIGHTCONE_LINK_TOKEN": secrets.token_urlsafe(16),
        "LIGHTCONE_ADMIN_TOKEN": secrets.token_urlsafe(16),
    }
    supervisor = stack.enter_context(Supervisor(tmp / "logs"))
    started = time.monotonic()
    core = await asyncio.to_thread(
        supervisor.start,
        "core",
        ["core", "--port", "0", "--data-dir", str(tmp / "core")],
        {**tokens, "LIGHTCONE_REGION": CORE_REGION},
        READY,
        START_TIMEOUT_S,
    )
    say(f"core {CORE_REGION} ready in {time.monotonic() - started:.1f} s")
    core_port = int(core.url.rsplit(":", 1)[1])
    cities = []
    for region in regions:
        one_way = geography.link(region, CORE_REGION).p50_ms / 2000
        link = LatencyProxy("127.0.0.1", core_port, up_delay_s=one_way, down_delay_s=one_way)
        await link.start()
        stack.push_async_callback(link.close)
        started = time.monotonic()
        edge = await asyncio.to_thread(
            supervisor.start,
            f"edge-{region}",
            [
                "edge",
                "--port",
                "0",
                "--region",
                region,
                "--core-url",
                f"http://127.0.0.1:{link.port}",
            ],
            {**tokens, **EDGE_ENV},
            "loaded snapshot",
            START_TIMEOUT_S,
        )
        half = geography.user_rtt_ms(region, region) / 2000
        entry = LatencyProxy(
            "127.0.0.1", int(edge.url.rsplit(":", 1)[1]), up_delay_s=half, down_delay_s=half
        )
        await entry.start()
        stack.push_async_callback(entry.close)
        pop = await asyncio.to_thread(
            stack.enter_context, running(f"http://127.0.0.1:{entry.port}", tmp, f"pop-{region}")
        )
        say(
            f"edge {region} + PoP ready in {time.monotonic() - started:.1f} s "
            f"(PoP {pop.url}, pid {pop.pid})"
        )
        cities.append(City(region, edge, entry, pop))
    return core, cities, tokens


def table(cities: list[City], phase: str) -> list[str]:
    rows = [
        "| city | requests | hit ratio | hit p50/p95/p99 ms | miss p50/p95/p99 ms | errors |",
        "|---|---:|---:|---|---|---:|",
    ]
    for city in cities:
        samples = city.samples.get(phase, [])
        ok = [s for s in samples if s.status == 200]
        hits = [s.ms for s in ok if s.cache in HIT]
        misses = [s.ms for s in ok if s.cache not in HIT]
        rows.append(
            f"| {city.region} | {len(samples)} | {len(hits) / max(1, len(ok)):.2f} | "
            f"{_q(hits)} | {_q(misses)} | {len(samples) - len(ok)} |"
        )
    return rows


def _q(values: list[float]) -> str:
    q = quantiles(values)
    return "—" if q is None else " / ".join(f"{v:.1f}" for v in q)


def plot(cities: list[City], cut: City, after: list[Sample], path: Path) -> None:
    """Per city p50/p95/p99 of hits and misses; the cut city's answers for keys cached
    before the cut (``after``), against the time since the cut."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (by_city, timeline) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.12
    for i, city in enumerate(cities):
        ok = [s for s in city.samples.get("tolerant", []) if s.status == 200]
        for j, keep in enumerate((True, False)):  # hit, miss
            q = quantiles([s.ms for s in ok if (s.cache in HIT) == keep])
            if q is None:
                continue
            for k, value in enumerate(q):
                x = i + (j * 3 + k - 2.5) * width
                by_city.bar(x, value, width, color=("#1b9e77", "#d95f02")[j], alpha=1 - k * 0.3)
    by_city.set_xticks(range(len(cities)), [c.region for c in cities])
    by_city.set_yscale("log")
    by_city.set_ylabel("ms (p50, p95, p99; log)")
    by_city.set_title("tolerant through the PoP: hit (green) vs miss (orange)")
    good = [(s.at, 1) for s in after if s.status == 200]
    bad = [(s.at, 0) for s in after if s.status != 200]
    for points, color, label in ((good, "#1b9e77", "answered (cache)"), (bad, "#d95f02", "error")):
        if points:
            timeline.scatter(*zip(*points, strict=True), s=6, color=color, label=label)
    timeline.axvline(
        MAX_AGE_S + SIE_S + 1, color="grey", linestyle="--", label="max-age + sie + 1 s"
    )
    timeline.set_xlabel(f"seconds since {cut.region}'s edge stopped")
    timeline.set_yticks([0, 1], ["error", "200"])
    timeline.set_title(f"{cut.region}: the PoP during a cut edge (keys cached before it)")
    timeline.legend(loc="center left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    say(f"plot: {path}")


async def run(args: argparse.Namespace) -> int:
    regions = [r.strip() for r in args.cities.split(",") if r.strip()]
    for region in regions:
        geography.region(region)
    words = vocabulary(args.vocabulary)
    say(
        f"bench_pop: cities {' '.join(regions)}, {args.users} users each at {args.rate}/s, "
        f"Zipf s={args.zipf} over {len(words)} prefixes; {machine_notes()}"
    )
    with tempfile.TemporaryDirectory(prefix="lightcone-bench-pop-") as folder:
        async with contextlib.AsyncExitStack() as stack:
            core, cities, tokens = await build(Path(folder), regions, stack)
            report = await phases(core, cities, tokens, args, words)
    say("\n".join(report))
    return 0


async def phases(
    core: Child,
    cities: list[City],
    tokens: dict[str, str],
    args: argparse.Namespace,
    words: list[str],
) -> list[str]:
    out = []
    admin = httpx.AsyncClient(
        base_url=core.url,
        headers={"Authorization": f"Bearer {tokens['LIGHTCONE_ADMIN_TOKEN']}"},
        timeout=REQUEST_TIMEOUT_S,
    )
    async with admin:
        for phase, seconds, stale_ok in (
            ("tolerant", args.seconds, True),
            ("strict", args.strict_seconds, False),
        ):
            put = await admin.put("/admin/flags/suggest", json={"stale_ok": stale_ok})
            put.raise_for_status()
            await until_mode(cities, "tolerant" if stale_ok else "strict")
            if not stale_ok:  # what the PoPs still answer from their caches after the flip
                await load(cities, "flip", MAX_AGE_S + SWR_S + 2, args, words)
                last = max(
                    (s.at for c in cities for s in c.samples["flip"] if s.cache in HIT),
                    default=float("nan"),
                )
                out.append(
                    f"\nflip to strict: the PoPs answered from their caches until {last:.1f} s "
                    f"after every edge had it (bound: max-age {MAX_AGE_S} s + "
                    f"stale-while-revalidate {SWR_S} s + 1 s = {MAX_AGE_S + SWR_S + 1} s)"
                )
            before = await edge_counts(cities)
            await load(cities, phase, seconds, args, words)
            after = await edge_counts(cities)
            users = sum(len(c.samples[phase]) for c in cities)
            origin = (after[0] - before[0]) / max(1, users)
            trips = (
                "n/a (the edges do not count them)"
                if after[1] is None or before[1] is None
                else f"{(after[1] - before[1]) / max(1, users):.3f}"
            )
            out += ["", f"### {phase} ({seconds:.0f} s)", "", *table(cities, phase), ""]
            out.append(f"origin requests per user request: {origin:.3f}; core round trips: {trips}")
        await admin.put("/admin/flags/suggest", json={"stale_ok": True})
        await until_mode(cities, "tolerant")
    cut = cities[0]
    await load([cut], "warm", 2.0, args, words)
    cached = {s.q for s in cut.samples["warm"] if s.status == 200}
    await asyncio.to_thread(cut.edge.stop)
    # Each request the entry proxy cannot forward is logged: expected here, said once.
    logging.getLogger("deploy.local.latency").setLevel(logging.ERROR)
    await load([cut], "cut", MAX_AGE_S + SIE_S + 3, args, words)
    samples = [s for s in cut.samples["cut"] if s.q in cached]
    answered = [s.at for s in samples if s.status == 200]
    failed = [s.at for s in samples if s.status != 200]
    out += [
        "",
        f"### {cut.region}'s edge stopped (keys cached before the cut: {len(cached)})",
        "",
        f"answered from the PoP: {len(answered)} of {len(samples)} requests for those keys; "
        f"last answer {max(answered, default=float('nan')):.1f} s after the cut (bound: "
        f"max-age {MAX_AGE_S} s + stale-if-error {SIE_S} s + 1 s whole-second rounding = "
        f"{MAX_AGE_S + SIE_S + 1} s from a key's last refresh, at most the cut); first error "
        f"{min(failed, default=float('nan')):.1f} s after (a key last refreshed early in the "
        "2 s warm-up runs out first)",
    ]
    if args.plot:
        plot(cities, cut, samples, args.plot)
    return out


async def until_mode(cities: list[City], mode: str) -> None:
    """Wait (20 s at most) until every edge answers in ``mode`` (asking it directly)."""
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as client, asyncio.timeout(20):
        for city in cities:
            while True:
                answer = await client.get(f"{city.edge.url}/suggest", params={"q": "x"})
                if answer.json().get("mode") == mode:
                    break
                await asyncio.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cities", default="syd,lhr,sin,iad", help="user cities [syd,lhr,sin,iad]")
    parser.add_argument("--users", type=int, default=4, help="users per city [4]")
    parser.add_argument("--rate", type=float, default=10.0, help="requests/s per user [10]")
    parser.add_argument("--seconds", type=float, default=20.0, help="tolerant phase [20]")
    parser.add_argument("--strict-seconds", type=float, default=5.0, help="strict phase [5]")
    parser.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent [1.0]")
    parser.add_argument("--vocabulary", type=int, default=2000, help="distinct prefixes [2000]")
    parser.add_argument("--plot", type=Path, help="write the plot (PNG) here")
    args = parser.parse_args()
    if not (0 < args.seconds <= MAX_SECONDS and 0 < args.strict_seconds <= MAX_SECONDS):
        parser.error(f"phases last 0 to {MAX_SECONDS:.0f} s")
    if not (1 <= args.users <= 64 and 0 < args.rate <= 200):
        parser.error("--users 1..64, --rate 0..200")
    try:
        return asyncio.run(run(args))
    except NginxMissing as exc:
        say(f"bench_pop: {exc}")
        return 3


if __name__ == "__main__":
    sys.exit(main())
