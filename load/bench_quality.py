"""Suggestion quality you can read: recall and latency per class of the labelled query set.

Run: ``python -m load.bench_quality [--quick] [--sample N] [--split tuning] [--plot PATH]``.
A benchmark, not a test: it prints figures (progress per class, then a table) and draws
recall@5 per class and system on the held-out part (``docs/bench/plots/quality_recall5.png``
unless ``--quick``, ``--split tuning`` or ``--plot ''``). While tuning a matcher, run it with
``--split tuning``: the held-out part is for the final figures only.

The queries are ``load/quality/queries.tsv`` (see ``load/quality/README.md``: classes, typo
model, provenance, the tuning / held-out split). Two systems answer each query, limit 5:

* ``edge``: the edge's :class:`~edge_node.suggest.index.SuggestIndex`, built from a snapshot of
  the default corpus as the core builds it (hot lists and depth at their defaults) and asked
  ``query(fold(q), 5)``: whatever ``query`` does today is what is measured.
* ``rapidfuzz``: a reference built on RapidFuzz (``process.extract``, C++): a term matches when
  the query is within the issue's typo allowance (none under 4 characters of the folded query,
  one from 4, two from 8; a transposition counts as one: optimal string alignment distance) of
  a prefix of the term's key; matches rank by distance, then weight. It knows canonical names
  only (no other names), as the corpus gives them.

A query is a hit at k when one of its targets is among the first k answers (same folded key, or
a display form that folds to it). Latency is wall time per call in this process (``p99``: the
99th percentile over the class's queries), after a warm-up pass. Bounds: ``--sample`` queries
per class and split at most (all by default: a few hundred, see the README), each answer at
most 5 terms.
"""

from __future__ import annotations

import argparse
import heapq
import math
import os
import platform
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core_region.suggest import corpus
from edge_node.suggest.index import SuggestIndex
from load import machine
from load.quality.generate import CLASSES, QUERIES, Query, read
from shared import snapshot
from shared.folding import fold

LIMIT = 5
"""Answers asked for per query: recall@5 is the widest figure."""
QUICK_SAMPLE = 8
"""Queries per class and split in ``--quick`` mode (the test's: a smoke run, not a figure)."""
PLOT = Path(__file__).resolve().parent.parent / "docs" / "bench" / "plots" / "quality_recall5.png"
SPLITS = ("tuning", "heldout")

Answer = list[tuple[str, str]]
"""``(folded key, display form)`` of each suggestion, best first."""
System = Callable[[str], Answer]


def typo_allowance(folded: str) -> int:
    """Typos a query of this folded length may carry (the issue's rule): 0, 1 from 4, 2 from 8."""
    return 0 if len(folded) < 4 else 1 if len(folded) < 8 else 2


def edge_system(
    entries: list[tuple[str, str, int]], names: dict[str, tuple[str, ...]] | None = None
) -> System:
    """The edge's index over a snapshot of ``entries`` and their other ``names``, built as the
    core builds it (hot lists twice the depth deep; the defaults of the core's settings)."""
    rows = sorted((snapshot.Entry(k, t, w) for k, t, w in entries), key=lambda e: e.key)
    hot = snapshot.hot_lists(rows, threshold=64, depth=40)
    blob = snapshot.build(rows, version=1, hot=hot, hot_threshold=64, depth=20, names=names)
    index = SuggestIndex(snapshot.parse(blob))

    def ask(query: str) -> Answer:
        return [(e.key, e.term) for e in index.query(fold(query), LIMIT)]

    return ask


class PrefixFuzzy:
    """The reference: RapidFuzz's ``process.extract`` over the distinct prefixes of the keys.

    For a folded query of length n with allowance k, each length L in n-k..n+k is searched: the
    distinct L-character prefixes of all keys are scored with the OSA distance to the query
    (cutoff k), and every key with a matching prefix is a candidate at its best distance.
    The prefixes of each length are built once, on first use (memory: one list per length).
    """

    def __init__(self, entries: list[tuple[str, str, int]]) -> None:
        self.keys = [k for k, _, _ in entries]
        self.terms = [t for _, t, _ in entries]
        self.weights = [w for _, _, w in entries]
        self._by_length: dict[int, tuple[list[str], list[list[int]]]] = {}

    def prefixes(self, length: int) -> tuple[list[str], list[list[int]]]:
        """The distinct ``length``-character prefixes (keys shorter than it are themselves)
        and, for each, the indices of the keys that start with it."""
        if length not in self._by_length:
            groups: dict[str, list[int]] = defaultdict(list)
            for i, key in enumerate(self.keys):
                groups[key[:length]].append(i)
            self._by_length[length] = (list(groups), list(groups.values()))
        return self._by_length[length]

    def __call__(self, query: str) -> Answer:
        from rapidfuzz import process
        from rapidfuzz.distance import OSA

        folded = fold(query)
        if not folded:
            return []
        allowed = typo_allowance(folded)
        best: dict[int, int] = {}
        for length in range(max(1, len(folded) - allowed), len(folded) + allowed + 1):
            choices, groups = self.prefixes(length)
            for _, distance, at in process.extract(
                folded, choices, scorer=OSA.distance, score_cutoff=allowed, limit=None
            ):
                for i in groups[at]:
                    if distance < best.get(i, allowed + 1):
                        best[i] = int(distance)
        top = heapq.nsmallest(LIMIT, best, key=lambda i: (best[i], -self.weights[i], self.keys[i]))
        return [(self.keys[i], self.terms[i]) for i in top]


@dataclass(frozen=True, slots=True)
class Figures:
    """One system on one class and split."""

    queries: int
    recall_1: float
    recall_5: float
    p99_ms: float


def hit_at(answer: Answer, targets: Sequence[str], k: int) -> bool:
    """Whether a target is among the first ``k`` answers."""
    wanted = {fold(t) for t in targets}
    return any(key in wanted or fold(term) in wanted for key, term in answer[:k])


def p99(samples: list[float]) -> float:
    """The 99th percentile (nearest rank)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def measure(system: System, queries: list[Query]) -> Figures:
    """Recall@1, recall@5 and p99 latency of ``system`` over ``queries`` (after a warm-up)."""
    for query in queries:
        system(query.text)
    hits1 = hits5 = 0
    times: list[float] = []
    for query in queries:
        start = time.perf_counter()
        answer = system(query.text)
        times.append((time.perf_counter() - start) * 1000)
        hits1 += hit_at(answer, query.targets, 1)
        hits5 += hit_at(answer, query.targets, 5)
    n = len(queries)
    return Figures(n, hits1 / n, hits5 / n, p99(times))


def sample(queries: list[Query], per: int | None) -> dict[tuple[str, str], list[Query]]:
    """The queries by (class, split), the first ``per`` of each (the file's order is random)."""
    out: dict[tuple[str, str], list[Query]] = defaultdict(list)
    for query in queries:
        group = out[(query.cls, query.split)]
        if per is None or len(group) < per:
            group.append(query)
    return out


def table(results: dict[tuple[str, str, str], Figures], systems: Sequence[str]) -> str:
    """The results as a markdown table: one row per class and split, three columns per system."""
    head = ["class", "split", "n"] + [f"{s} {m}" for s in systems for m in ("r@1", "r@5", "p99 ms")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cls in CLASSES:
        for split in SPLITS:
            row = [results.get((s, cls, split)) for s in systems]
            if row[0] is None:
                continue
            cells = [cls, split, str(row[0].queries)]
            for f in row:
                assert f is not None
                cells += [f"{f.recall_1:.2f}", f"{f.recall_5:.2f}", f"{f.p99_ms:.2f}"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: dict[tuple[str, str, str], Figures], systems: Sequence[str], out: Path) -> None:
    """Recall@5 on the held-out split, one group of bars per class, one bar per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = [c for c in CLASSES if (systems[0], c, "heldout") in results]
    width = 0.8 / len(systems)
    fig, ax = plt.subplots(figsize=(11, 4.5))
    for n, system in enumerate(systems):
        values = [results[(system, c, "heldout")].recall_5 for c in classes]
        xs = [i + (n - (len(systems) - 1) / 2) * width for i in range(len(classes))]
        ax.bar(xs, values, width, label=system)
    ax.axhline(0.95, color="grey", linestyle="--", linewidth=1, label="target 0.95")
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("recall@5 (held-out)")
    ax.set_title("Suggestion quality per query class, default corpus")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SAMPLE} queries per group")
    parser.add_argument("--sample", type=int, default=None, help="queries per class and split")
    parser.add_argument(
        "--split",
        choices=SPLITS,
        default=None,
        help="only this part (tune on 'tuning'; the held-out part is for the final figures)",
    )
    parser.add_argument("--queries", type=Path, default=QUERIES, help="(default %(default)s)")
    parser.add_argument("--plot", default=None, help=f"(default {PLOT}; '' for none)")
    args = parser.parse_args(argv)
    per = args.sample if args.sample is not None else QUICK_SAMPLE if args.quick else None
    # An empty --plot means no plot (it is read as text: Path("") would be ".").
    if args.plot is not None:
        out = Path(args.plot) if args.plot else None
    else:
        out = None if args.quick else PLOT
    groups = sample([q for q in read(args.queries) if args.split in (None, q.split)], per)

    packages = machine.versions(["rapidfuzz", "marisa-trie"])
    print(
        f"machine: {machine.cpu_model()}, {os.cpu_count()} CPUs, load {machine.loadavg()}; "
        f"Python {platform.python_version()}, "
        + ", ".join(f"{name} {version}" for name, version in packages.items())
    )
    print(f"git: {machine.git_state()}")
    started = time.perf_counter()
    loaded = corpus.load(corpus.default_path())
    entries = loaded.entries
    systems: dict[str, System] = {
        "edge": edge_system(entries, loaded.names),
        "rapidfuzz": PrefixFuzzy(entries),
    }
    print(
        f"loaded {len(entries)} terms, built both systems in {time.perf_counter() - started:.1f} s"
    )
    results: dict[tuple[str, str, str], Figures] = {}
    for step, cls in enumerate(CLASSES, 1):
        for split in SPLITS:
            queries = groups.get((cls, split), [])
            if not queries:
                continue
            for name, system in systems.items():
                results[(name, cls, split)] = f = measure(system, queries)
                print(
                    f"[{step}/{len(CLASSES)}] {cls:14} {split:8} {name:10} n={f.queries:3} "
                    f"r@1={f.recall_1:.2f} r@5={f.recall_5:.2f} p99={f.p99_ms:.2f} ms",
                    flush=True,
                )
    print()
    print(table(results, list(systems)))
    if out is not None and args.split != "tuning":
        plot(results, list(systems), out)
        print(f"\nplot: {machine.shown_path(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
