"""The edge's suggestion cost on answer-cache misses, typo matching included, in one process.

Run: ``python -m load.bench_typos [--rounds N] [--corpus FILE]``. A benchmark, not a test: it
prints figures.

An edge app is made in this process and loads a snapshot of the default corpus, or of the
``--corpus`` file (``term<TAB>weight`` lines, as ``lightcone core --corpus`` reads; e.g. the
million terms of ``python -m load.million make FILE``), with hot lists as the core makes them;
each call is ``SuggestFeature.suggest_now`` with the answer cache
emptied first, so it folds, checks, queries the index and encodes the items: the server-side
work of a cache miss, without the transport. Three sets of queries:

* ``exact``: the serving benchmark's prefixes (:mod:`load.serving.workload`), as typed;
* ``one typo``: a prefix (5-9 characters) of one of the 2,000 heaviest terms with one edit
  (deletion, insertion, substitution or adjacent transposition, drawn with a fixed seed);
* ``two typos``: a prefix (9-14 characters) with two such edits, the first character kept.

Each query is asked once to warm the index (the children of hot prefixes are read once per
snapshot), then timed over ``--rounds`` rounds: wall time (``perf_counter_ns``) and the
thread's CPU time (``thread_time_ns``, unaffected by other processes on a shared machine).
It prints p50/p99/max per set, how often the typo walk hit its cap, and the share of typo
queries whose source term is in the top 5.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core_region.suggest import corpus
from edge_node.app import create_app
from edge_node.settings import EdgeSettings
from load.serving import workload
from shared import snapshot
from shared.folding import fold

SEED = 12
LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Query:
    q: str
    source: str  # the folded key the query was made from ("" for the exact set)


def edit(text: str, rng: random.Random, keep_first: bool) -> str:
    """``text`` with one random edit (never in the first character when ``keep_first``)."""
    i = rng.randrange(1 if keep_first else 0, len(text) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        return text[:i] + text[i + 1 :]
    if kind == 1:
        return text[:i] + rng.choice(LETTERS) + text[i:]
    if kind == 2:
        return text[:i] + rng.choice(LETTERS.replace(text[i], "")) + text[i + 1 :]
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def typo_queries(keys: Sequence[str], typos: int, count: int) -> list[Query]:
    rng = random.Random(SEED + typos)
    lo, hi = (5, 9) if typos == 1 else (9, 14)
    long_enough = [k for k in keys if len(k) >= lo]
    found: list[Query] = []
    while len(found) < count:
        key = rng.choice(long_enough)
        q = key[: rng.randint(lo, min(hi, len(key)))]
        for _ in range(typos):
            q = edit(q, rng, keep_first=typos == 2)
        found.append(Query(q, key))
    return found


def percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=400, help="queries per typo set")
    parser.add_argument(
        "--corpus", type=Path, default=None, help="corpus file (default: the shipped corpus)"
    )
    opts = parser.parse_args(argv)

    loaded = corpus.load(opts.corpus or corpus.default_path())
    entries = sorted((snapshot.Entry(k, t, w) for k, t, w in loaded.entries), key=lambda e: e.key)
    hot = snapshot.hot_lists(entries, threshold=64, depth=20)
    blob = snapshot.build(entries, version=1, hot=hot, hot_threshold=64, depth=20)
    settings = EdgeSettings(core_url="http://127.0.0.1:9", region="bench")
    feature = create_app(settings).state.node.features["suggest"]
    feature.replica.load(snapshot.parse(blob), "")
    index = feature.replica.index
    heaviest = [e.key for e in sorted(entries, key=lambda e: -e.weight)[:2000]]
    sets = {
        "exact": [Query(p, "") for p in workload.PREFIXES],
        "one typo": typo_queries(heaviest, 1, opts.count),
        "two typos": typo_queries(heaviest, 2, opts.count),
    }
    print(f"{len(entries)} terms; {opts.rounds} rounds; limit {workload.LIMIT}; times in ms")
    print(
        f"{'set':<10} {'n':>5} {'wall p50':>9} {'p99':>7} {'max':>7} "
        f"{'cpu p50':>8} {'p99':>7} {'max':>7} {'capped':>7} {'top5':>6}"
    )
    for name, queries in sets.items():
        for query in queries:  # warm
            feature.suggest_now(query.q, workload.LIMIT)
        capped = index.typo_walks_capped
        wall: list[int] = []
        cpu: list[int] = []
        for _ in range(opts.rounds):
            for query in queries:
                feature._cache.clear()  # a miss every time
                w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
                feature.suggest_now(query.q, workload.LIMIT)
                cpu.append(time.thread_time_ns() - c0)
                wall.append(time.perf_counter_ns() - w0)
        capped = (index.typo_walks_capped - capped) / opts.rounds
        sourced = [q for q in queries if q.source]
        top5 = (
            sum(q.source in {e.key for e in index.query(fold(q.q), 5)} for q in sourced)
            / len(sourced)
            if sourced
            else float("nan")
        )
        print(
            f"{name:<10} {len(queries):>5} {percentile(wall, 0.5):>9.3f} "
            f"{percentile(wall, 0.99):>7.3f} {max(wall) / 1e6:>7.3f} "
            f"{percentile(cpu, 0.5):>8.3f} {percentile(cpu, 0.99):>7.3f} {max(cpu) / 1e6:>7.3f} "
            f"{capped / len(queries):>7.1%} {top5:>6.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
