"""A corpus of about a million terms, and what the core and an edge need to serve it.

``python -m load.million make FILE`` writes the corpus: the shipped world-cities corpus
(128,782 terms) and each city with seven common suffixes (``Airport``, ``Station``,
``University``, ``Hospital``, ``Park``, ``Museum``, ``Stadium``), 1,030,256 terms in all,
weighted below their city (a suffix's term weighs ``city weight // (2 + its index)``), in
the ``term<TAB>weight[<TAB>name...]`` format ``--corpus`` reads (gzip when FILE ends in
``.gz``). A city keeps its other names; its suffixed terms have none (``Munich Airport`` is
not ``München Airport``'s other name by inheritance).

``python -m load.million measure`` makes it in a temporary folder, then, on loopback:

1. starts ``lightcone core --corpus FILE`` on a fresh data folder and times spawn → ready
   (seed + first snapshot), sampling the process's resident memory every 50 ms (its peak, and
   its steady state once ready);
2. starts ``lightcone edge`` and times spawn → ``/readyz`` 200, and the snapshot's arrival
   (``snapshot v… arrived``, logged once its frame is decoded, before it is parsed) → ready;
   reads its resident memory once ready (steady) and its peak so far (the first snapshot);
   then asks it as many distinct queries as it caches answers (10,000, over HTTP) and reads
   it again: the steady state of a busy edge;
3. makes the core publish a new snapshot (``LIGHTCONE_COMPACT_AFTER`` writes through the admin
   API) and reads the edge's peak while it swaps the new one in, with two snapshots held: the
   kernel's own peak (``VmHWM``, restarted from the steady state just before through
   ``/proc/PID/clear_refs``), or where that cannot be restarted the highest of the samples
   taken every 50 ms; and the core's peak while it builds that snapshot, the same way.

Every process it starts is stopped by PID. Progress on stderr, a table against issue 12's
budget on stdout (edge ≤ 128 MB steady, ≤ 192 MB at the swap, ready ≤ 1 s after the
snapshot; core ≤ 384 MB, seed + first snapshot ≤ 10 s).
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from core_region.suggest import corpus
from deploy.local.supervisor import LISTENING, Child
from edge_node.suggest.feature import ANSWER_CACHE_ENTRIES
from load.machine import cpu_model, loadavg

SUFFIXES = ("Airport", "Station", "University", "Hospital", "Park", "Museum", "Stadium")
ADMIN_TOKEN = "million-admin-token"
LINK_TOKEN = "million-link-token"
COMPACT_AFTER = 50
"""Changes after which the core publishes a new snapshot (step 3 makes that many)."""
START_TIMEOUT_S = 600.0
"""Longest wait for a node to be ready (a million terms on a busy 2-core machine)."""
SAMPLE_S = 0.05
SEED = 12

BUDGET = {
    "core peak RSS": ("MB", 384),
    "core peak RSS at a compaction": ("MB", 384),
    "core seed + first snapshot": ("s", 10),
    "edge steady RSS": ("MB", 128),
    "edge peak RSS at a snapshot swap": ("MB", 192),
    "edge ready after the snapshot arrives": ("s", 1),
}


def terms(source: Path) -> Iterator[tuple[str, int, tuple[str, ...]]]:
    """The shipped corpus's terms with their other names, and each with every suffix (and
    no other names): ``(term, weight, names)``."""
    loaded = corpus.load(source)
    for key, term, weight in loaded.entries:
        yield term, weight, loaded.names.get(key, ())
        for n, suffix in enumerate(SUFFIXES):
            yield f"{term} {suffix}", max(1, weight // (2 + n)), ()


def cache_filling(source: Path) -> list[str]:
    """As many distinct queries as the edge caches answers (:data:`ANSWER_CACHE_ENTRIES`):
    prefixes of 1-12 characters of the corpus's terms, drawn with a fixed seed."""
    forms = [term for term, _ in itertools.islice(terms_in(source), 200_000)]
    rng = random.Random(SEED)
    found: set[str] = set()
    while len(found) < ANSWER_CACHE_ENTRIES:
        form = rng.choice(forms)
        found.add(form[: rng.randint(1, min(12, len(form)))])
    return sorted(found)


def terms_in(path: Path) -> Iterator[tuple[str, int]]:
    """The ``(term, weight)`` of each line of a corpus file this module made (other names
    left out)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            term, weight = line.rstrip("\n").split("\t")[:2]
            yield term, int(weight)


def make(path: Path, source: Path | None = None) -> int:
    """Write the corpus to ``path``; returns how many terms it has."""
    opener = gzip.open if path.suffix == ".gz" else open
    count = 0
    with opener(path, "wt", encoding="utf-8") as out:
        for term, weight, names in terms(source or corpus.default_path()):
            out.write("\t".join((term, str(weight), *names)) + "\n")
            count += 1
    return count


def reset_peak(pid: int) -> bool:
    """Start ``pid``'s ``VmHWM`` afresh from its current resident size (Linux 4.0+); whether
    it could."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def rss_mb(pid: int, field_name: str = "VmRSS") -> float:
    """A process's resident memory (``VmRSS``) or its peak (``VmHWM``), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class Sampler:
    """Samples one process's resident memory every :data:`SAMPLE_S` in a thread."""

    pid: int
    samples: list[tuple[float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self.samples.append((time.monotonic(), rss_mb(self.pid)))

    def peak(self, since: float = 0.0) -> float:
        return max((mb for at, mb in self.samples if at >= since), default=0.0)

    def now(self) -> float:
        return rss_mb(self.pid)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def measure(folder: Path) -> dict[str, float]:
    source = folder / "million.tsv.gz"
    started = time.monotonic()
    count = make(source)
    say(f"corpus: {count:,} terms in {time.monotonic() - started:.1f} s ({source})")
    env = {
        "LIGHTCONE_ADMIN_TOKEN": ADMIN_TOKEN,
        "LIGHTCONE_LINK_TOKEN": LINK_TOKEN,
        "LIGHTCONE_COMPACT_AFTER": str(COMPACT_AFTER),
        "LIGHTCONE_HTTP_RATE": "1e9",  # step 2 fills the edge's answer cache from one address
        "LIGHTCONE_HTTP_BURST": "1000000000",
    }
    figures: dict[str, float] = {}
    core_args = ["core", "--port", "0", "--data-dir", str(folder / "core"), "--corpus", str(source)]
    spawned = time.monotonic()
    core = Child("core", core_args, env, folder / "core.log")
    core_mem = Sampler(core.pid)
    edge: Child | None = None
    try:
        url = core.wait_for(LISTENING, START_TIMEOUT_S).group(1)
        say(f"core listening on {url}; seeding and building the first snapshot ...")
        core.wait_for("Application startup complete", START_TIMEOUT_S)
        figures["core seed + first snapshot"] = time.monotonic() - spawned
        figures["core peak RSS"] = rss_mb(core.pid, "VmHWM")
        figures["core steady RSS"] = core_mem.now()
        say(f"core ready in {figures['core seed + first snapshot']:.1f} s")

        spawned = time.monotonic()
        edge_args = ["edge", "--port", "0", "--region", "syd", "--core-url", url]
        edge = Child("edge", edge_args, env, folder / "edge.log")
        edge_mem = Sampler(edge.pid)
        edge_url = edge.wait_for(LISTENING, START_TIMEOUT_S).group(1)
        edge.wait_for("snapshot v[0-9]+ arrived", START_TIMEOUT_S)
        arrived = time.monotonic()
        with httpx.Client(timeout=10) as client:
            while client.get(f"{edge_url}/readyz").status_code != 200:
                if time.monotonic() - spawned > START_TIMEOUT_S:
                    raise RuntimeError("the edge did not get ready")
                time.sleep(0.01)  # polling a condition with a deadline
            ready = time.monotonic()
            figures["edge spawn → ready"] = ready - spawned
            figures["edge ready after the snapshot arrives"] = ready - arrived
            for n in range(20):  # a little load, then the steady state
                client.get(f"{edge_url}/suggest", params={"q": f"sa{n}"})
            figures["edge steady RSS"] = edge_mem.now()
            figures["edge peak RSS at the first snapshot"] = rss_mb(edge.pid, "VmHWM")
            say(f"edge ready: {figures['edge steady RSS']:.0f} MB; filling its answer cache ...")
            for q in cache_filling(source):
                client.get(f"{edge_url}/suggest", params={"q": q}).raise_for_status()
            figures["edge RSS with a full answer cache"] = edge_mem.now()
            say(f"edge: {figures['edge RSS with a full answer cache']:.0f} MB; compacting ...")

            swap_from = time.monotonic()
            exact = reset_peak(edge.pid)
            core_exact = reset_peak(core.pid)
            headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            for n in range(COMPACT_AFTER):
                put = client.put(
                    f"{url}/admin/terms/Million Town {n}", json={"weight": 5}, headers=headers
                )
                put.raise_for_status()
            loaded = len([line for line in edge.lines if "loaded snapshot" in line])
            deadline = time.monotonic() + START_TIMEOUT_S
            while len([line for line in edge.lines if "loaded snapshot" in line]) <= loaded:
                if time.monotonic() > deadline:
                    raise RuntimeError("the edge did not load the new snapshot")
                time.sleep(0.05)  # polling a condition with a deadline
            time.sleep(1.0)  # the old snapshot's memory is freed after the swap
            swap_peak = rss_mb(edge.pid, "VmHWM")
            if not exact:  # the process's peak since it started: the samples tell the swap's
                swap_peak = max(edge_mem.peak(swap_from), figures["edge steady RSS"])
            figures["edge peak RSS at a snapshot swap"] = swap_peak
            figures["edge RSS after the swap"] = edge_mem.now()
            figures["core RSS after a compaction"] = core_mem.now()
            figures["core peak RSS at a compaction"] = (
                rss_mb(core.pid, "VmHWM") if core_exact else core_mem.peak(swap_from)
            )
        edge_mem.stop()
    finally:
        core_mem.stop()
        if edge is not None:
            edge.stop()
        core.stop()
    return figures


def table(figures: dict[str, float]) -> str:
    rows = ["| figure | measured | budget (issue 12) |", "|---|---|---|"]
    for name, value in figures.items():
        unit, most = BUDGET.get(name, ("MB" if "RSS" in name else "s", None))
        shown = f"{value:.0f} MB" if unit == "MB" else f"{value:.2f} s"
        budget = (
            ""
            if most is None
            else f"≤ {most} {unit}: " + ("met" if value <= most else "**not met**")
        )
        rows.append(f"| {name} | {shown} | {budget} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make_parser = sub.add_parser("make", help="write the corpus to FILE")
    make_parser.add_argument("file", type=Path)
    sub.add_parser("measure", help="make it, then measure a core and an edge on it")
    args = parser.parse_args()
    if args.command == "make":
        print(f"{make(args.file):,} terms in {args.file}")
        return 0
    print(
        f"{os.cpu_count()} CPUs ({cpu_model()}), load average {loadavg()}, "
        f"Python {sys.version.split()[0]}"
    )
    with tempfile.TemporaryDirectory(prefix="lightcone-million-") as tmp:
        print(table(measure(Path(tmp))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
