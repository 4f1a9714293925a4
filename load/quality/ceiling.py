"""How high recall@5 on single typos can go on this query set: its Bayes ceiling.

Run from the repository root: ``python -m load.quality.ceiling [--split tuning|heldout]
[--plot PATH]`` (about a minute). A measurement of the query set, not of a matcher: no
matcher's parameter may be chosen from its held-out figures (see ``load/quality/README.md``).

For each query of a single-typo class (``typo1_first``, ``typo1_middle``, ``typo1_last``,
``transposition``), every corpus term that could have been typed as it is scored by

    weight(term) x P(query | term)

under a model of how people slip, and the five likeliest are the answer. Ranking by that
posterior is the best any matcher can do with the model (for each query it maximises the
chance that the target is among the first five: Bayes' rule), so each model gives a ceiling.
From the most knowing to the least:

``oracle``
    the generator itself (``generate.py``): QWERTY neighbours, the class of the query (where
    the slip falls), and where the query was cut (where its target first shows among the five
    heaviest exact completions, plus 0-2 characters). No matcher can know the class, and
    the cut is the set's own artifact.
``keyboard``
    QWERTY neighbours; the slip may be any of the four single-typo kinds of the set, each as
    likely, anywhere; the query may stop anywhere.
``layout-free, cut``
    no keyboard (a wrong or added key may be any other letter), the slip anywhere, but where
    the query was cut: a letter-blind ranking that exploits how the set was made.
``layout-free``
    no keyboard, the slip anywhere, the query may stop anywhere: what a matcher that assumes
    no keyboard can know.

Each ceiling is read twice: free (the five likeliest terms), and under the issue's rule that
exact and prefix matches always rank above typo matches (the heaviest terms that start with the
query as typed take the first places, the likeliest others fill the rest). The generator keys
the corpus with version 1 of the fold (``generate.fold_v1``), and so does this module. The
``rule`` column is the plain bound of that rule: the share of queries that are not themselves
the start of five or more terms. The edge's own figure (``bench_quality.edge_system``, the
serving fold) is shown beside them.

Bounds: each query scores the heaviest ``CANDIDATES`` terms under each prefix one edit from it
(a few thousand terms at most); about 0.1 s per query.
"""

from __future__ import annotations

import argparse
import bisect
import functools
import heapq
import string
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from core_region.suggest import corpus
from load.quality import generate
from load.quality.generate import NEIGHBOURS, Query, Terms

CLASSES = ("typo1_first", "typo1_middle", "typo1_last", "transposition")
"""The single-typo classes: the ones the issue's 0.95 target reads."""


@dataclass(frozen=True, slots=True)
class Model:
    """What a ranking knows of how the queries were made."""

    keyboard: bool  # the QWERTY neighbours (else a wrong or extra key is any letter)
    cut: bool  # where the generator cut the query (else anywhere)
    cls: bool  # the query's class: where the slip falls (else any of the four, as likely)


MODEL = {
    "layout-free": Model(keyboard=False, cut=False, cls=False),
    "layout-free, cut": Model(keyboard=False, cut=True, cls=False),
    "keyboard": Model(keyboard=True, cut=False, cls=False),
    "oracle": Model(keyboard=True, cut=True, cls=True),
}
MODELS = tuple(MODEL)
POOLED = "all four"
"""The row of the four classes together (weighted by their queries)."""
LIMIT = 5
CANDIDATES = 10
"""Heaviest completions scored under each prefix one edit from a query (a term needs to be
among its prefix's heaviest to make the first five; ten leaves room for sums over lengths)."""
TARGET = 0.95
PLOT = (
    Path(__file__).resolve().parent.parent.parent
    / "docs"
    / "bench"
    / "plots"
    / "quality_ceiling.png"
)

Outcomes = dict[str, float]
"""What a slip can make of a text, with the probability of each."""


def slip_outcomes(text: str, at: int, neighbours: dict[str, str] = NEIGHBOURS) -> Outcomes:
    """Everything :func:`generate.slip` can make of ``text`` at ``at``, with its probability
    (empty where it returns None: not a letter on the layout). ``neighbours`` may widen the
    keys a slip can hit (the layout-free model: every other letter)."""
    c = text[at]
    if c not in NEIGHBOURS:
        return {}
    near = neighbours[c]
    out: Outcomes = defaultdict(float)
    for d in near:
        out[text[:at] + d + text[at + 1 :]] += 0.25 / len(near)
        out[text[: at + 1] + d + text[at + 1 :]] += 0.25 / len(near)
    out[text[:at] + text[at + 1 :]] += 0.25
    out[text[: at + 1] + c + text[at + 1 :]] += 0.25
    return out


def class_outcomes(typed: str, cls: str, neighbours: dict[str, str] = NEIGHBOURS) -> Outcomes:
    """What the generator's class ``cls`` can make of the prefix ``typed``, with probabilities
    (as ``generate._typed`` places the slip: the first character, a middle one, the last, or a
    swap of two neighbours anywhere)."""
    if cls == "typo1_first":
        return slip_outcomes(typed, 0, neighbours)
    if cls == "typo1_last":
        return slip_outcomes(typed, len(typed) - 1, neighbours)
    out: Outcomes = defaultdict(float)
    if cls == "typo1_middle":
        places = range(1, len(typed) - 1)
        for at in places:
            for made, p in slip_outcomes(typed, at, neighbours).items():
                out[made] += p / len(places)
    elif cls == "transposition":
        places = range(len(typed) - 1)
        for at in places:
            swapped = generate.swap(typed, at)
            if swapped is not None:
                out[swapped] += 1 / len(places)
    else:
        raise ValueError(f"not a single-typo class: {cls}")
    return out


LAYOUT_FREE = {c: "".join(d for d in string.ascii_lowercase if d != c) for c in NEIGHBOURS}
"""Every letter's "neighbours" when no keyboard is assumed: every other letter."""


class Ceiling:
    """The corpus as the generator keys it, and the posterior ranking of each model."""

    def __init__(self, entries: list[tuple[str, str, int]]) -> None:
        self.terms = Terms(entries)
        self.keys = self.terms.keys
        self.weight = self.terms.weight
        self.alphabet = sorted({c for k in self.keys for c in k})
        self._heaviest = functools.lru_cache(maxsize=200_000)(self._heaviest_uncached)
        self._shows = functools.lru_cache(maxsize=200_000)(self._shows_uncached)

    # --- the corpus ---------------------------------------------------------------------

    def _range(self, prefix: str) -> tuple[int, int]:
        lo = bisect.bisect_left(self.keys, prefix)
        return lo, bisect.bisect_left(self.keys, prefix + "\U0010ffff", lo)

    def has_prefix(self, prefix: str) -> bool:
        lo, hi = self._range(prefix)
        return hi > lo

    def _heaviest_uncached(self, prefix: str, most: int) -> tuple[str, ...]:
        lo, hi = self._range(prefix)
        weight = self.weight
        return tuple(heapq.nsmallest(most, self.keys[lo:hi], key=lambda k: (-weight[k], k)))

    def heaviest(self, prefix: str, most: int = LIMIT) -> tuple[str, ...]:
        """The ``most`` heaviest keys starting with ``prefix`` (ties: the smaller key)."""
        return self._heaviest(prefix, most)

    def _shows_uncached(self, key: str) -> int | None:
        return self.terms.shows_at(key, generate.ONE_TYPO_FROM)

    def one_edit(self, query: str) -> set[str]:
        """Strings one edit from ``query`` (optimal string alignment) that start some key."""
        out = {query}
        for i in range(len(query) + 1):
            out.update(query[:i] + c + query[i:] for c in self.alphabet)
        for i in range(len(query)):
            out.add(query[:i] + query[i + 1 :])
            out.update(query[:i] + c + query[i + 1 :] for c in self.alphabet)
        for i in range(len(query) - 1):
            out.add(query[:i] + query[i + 1] + query[i] + query[i + 2 :])
        return {p for p in out if p and self.has_prefix(p)}

    # --- the models ---------------------------------------------------------------------

    def cuts(self, key: str) -> list[str]:
        """The prefixes of ``key`` the generator may type before the slip (``_cut``: where
        the key first shows among the five heaviest, plus 0, 1 or 2; each as likely)."""
        start = generate.ONE_TYPO_FROM
        shown = self._shows(key)
        if shown is None or len(key) < start:
            return []
        out = []
        for more in range(generate.EXTRA_CHARS + 1):
            typed = key[: min(len(key), shown + more)]
            out.append(key[: len(typed) + 1] if typed.endswith(" ") else typed)
        return out

    def likelihood(self, key: str, query: str, cls: str, model: str) -> float:
        """P(``query`` | the user meant ``key``) under ``model`` (up to a constant factor
        shared by every key, which the ranking ignores)."""
        if key.startswith(query):
            return 0.0  # the generator drops slips that leave a prefix: no typo
        known = MODEL[model]
        if known.cut:
            cut = self.cuts(key)
        else:
            n = len(query)
            cut = [key[:m] for m in (n - 1, n, n + 1) if generate.ONE_TYPO_FROM <= m <= len(key)]
        classes: Iterable[str] = (cls,) if known.cls else CLASSES
        neighbours = NEIGHBOURS if known.keyboard else LAYOUT_FREE
        total = 0.0
        for typed in cut:
            for c in classes:
                total += class_outcomes(typed, c, neighbours).get(query, 0.0)
        return total

    def candidates(self, query: str, model: str) -> set[str]:
        """The keys that can rank among the first five under ``model``: the heaviest under
        each prefix one edit from ``query`` (knowing the cut, those the cut rule can reach)."""
        out: set[str] = set()
        for p in self.one_edit(query):
            if MODEL[model].cut:  # a key is cut where it shows: among the 5 heaviest there
                for m in range(max(generate.ONE_TYPO_FROM, len(p) - 3), len(p) + 1):
                    out.update(k for k in self.heaviest(p[:m]) if k.startswith(p))
            else:
                out.update(self.heaviest(p, CANDIDATES))
        return out

    def ranked(self, query: str, cls: str, model: str, *, rule: bool) -> list[str]:
        """The first five keys for ``query`` under ``model`` (by ``rule``: the exact and
        prefix matches of the query as typed first)."""
        scored = [
            (self.weight[k] * self.likelihood(k, query, cls, model), k)
            for k in self.candidates(query, model)
        ]
        best = [k for s, k in sorted(scored, key=lambda sk: (-sk[0], sk[1])) if s > 0]
        if not rule:
            return best[:LIMIT]
        first = list(self.heaviest(query))
        return [*first, *(k for k in best if k not in first)][:LIMIT]

    def blocked(self, query: str) -> bool:
        """Whether the query as typed starts five or more keys: under the rule, no typo match
        can then be shown."""
        return len(self.heaviest(query)) >= LIMIT


@dataclass(slots=True)
class Row:
    """One class's figures: recall@5 per model, free and under the rule."""

    n: int
    rule: float
    recall: dict[tuple[str, bool], float]
    edge: float | None


def measure(
    ceiling: Ceiling,
    queries: list[Query],
    edge: Callable[[str], list[tuple[str, str]]] | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> dict[str, Row]:
    """recall@5 of each model on each single-typo class of ``queries``."""
    from load.bench_quality import hit_at

    rows: dict[str, Row] = {}
    for cls in CLASSES:
        mine = [q for q in queries if q.cls == cls]
        if not mine:
            continue
        started = time.perf_counter()
        hits: dict[tuple[str, bool], int] = defaultdict(int)
        unblocked = edge_hits = 0
        for q in mine:
            target = generate.fold_v1(q.targets[0])
            unblocked += not ceiling.blocked(q.text)
            for model in MODELS:
                for rule in (False, True):
                    hits[(model, rule)] += target in ceiling.ranked(q.text, cls, model, rule=rule)
            if edge is not None:
                edge_hits += hit_at(edge(q.text), q.targets, LIMIT)
        n = len(mine)
        rows[cls] = Row(
            n,
            unblocked / n,
            {key: hits[key] / n for key in ((m, r) for m in MODELS for r in (False, True))},
            edge_hits / n if edge is not None else None,
        )
        progress(f"  {cls}: {n} queries in {time.perf_counter() - started:.1f} s")
    if len(rows) > 1:  # the target reads the single typos together
        total = sum(r.n for r in rows.values())

        def pooled(figure: Callable[[Row], float]) -> float:
            return sum(figure(r) * r.n for r in rows.values()) / total

        rows[POOLED] = Row(
            total,
            pooled(lambda r: r.rule),
            {
                key: pooled(functools.partial(_recall, key=key))
                for key in next(iter(rows.values())).recall
            },
            pooled(lambda r: r.edge or 0.0) if edge is not None else None,
        )
    return rows


EXACT_CAUSES = ("own name", "folding", "other name", "typo")
"""Why a term can rank above an exact query's target, by the issue's own rules: a term whose
whole name is the query ranks first (exact before prefix matches), even when lighter;
forgiving folding reads the query across spaces and punctuation (``alg`` starts "Al
Ghanāyim", ``fu’`` is read as ``fu``); another name starts with it; a typo match (never
above a prefix match)."""


def exact_losses(
    entries: list[tuple[str, str, int]],
    names: dict[str, tuple[str, ...]],
    queries: list[Query],
) -> tuple[int, int, dict[str, list[str]]]:
    """The exact-class queries the edge loses (target not in its first five), and the rule that
    put each term above the target: ``(queries, lost, {cause: ["query: term", ...]})``.

    Without those rules (fold version 1, terms by weight only: the set's construction) every
    exact query shows its target, so each loss is owed to a rule the issue asks for."""
    from edge_node.suggest.aliases import AliasMatch
    from edge_node.suggest.index import SuggestIndex
    from edge_node.suggest.typos import TypoMatch
    from shared import snapshot
    from shared.folding import fold

    rows = sorted((snapshot.Entry(k, t, w) for k, t, w in entries), key=lambda e: e.key)
    hot = snapshot.hot_lists(rows, threshold=64, depth=40)
    blob = snapshot.build(rows, version=1, hot=hot, hot_threshold=64, depth=20, names=names)
    index = SuggestIndex(snapshot.parse(blob))
    mine = [q for q in queries if q.cls == "exact"]
    causes: dict[str, list[str]] = {cause: [] for cause in EXACT_CAUSES}
    lost = 0
    for q in mine:
        targets = {fold(t) for t in q.targets}
        answer = index.query(fold(q.text), LIMIT)
        if targets & {e.key for e in answer}:
            continue
        lost += 1
        weight = max((e.weight for t in targets if (e := index.get(t)) is not None), default=0)
        for e in answer:
            if isinstance(e, TypoMatch):
                cause = "typo"
            elif isinstance(e, AliasMatch):
                cause = "other name"
            elif not generate.fold_v1(e.term).startswith(q.text):
                cause = "folding"
            elif e.key == fold(q.text) and e.weight < weight:
                cause = "own name"
            else:
                continue  # a heavier term that starts with the query as typed: not a loss
            causes[cause].append(f"{q.text}: {e.term}")
    return len(mine), lost, causes


def _recall(row: Row, key: tuple[str, bool]) -> float:
    return row.recall[key]


def table(rows: dict[str, Row]) -> str:
    """A Markdown table: recall@5 per class and model (free / under the rule)."""
    head = "| class | n | rule | " + " | ".join(f"{m} free / rule" for m in MODELS)
    lines = [head + " | edge |", "|---|---:|---:|" + "---:|" * (len(MODELS) + 1)]
    for cls, row in rows.items():
        cells = [f"{row.recall[(m, False)]:.3f} / {row.recall[(m, True)]:.3f}" for m in MODELS]
        edge = f"{row.edge:.3f}" if row.edge is not None else "-"
        lines.append(f"| {cls} | {row.n} | {row.rule:.3f} | " + " | ".join(cells) + f" | {edge} |")
    return "\n".join(lines)


def plot(rows: dict[str, Row], split: str, out: Path) -> None:
    """Bars per class: each model's ceiling under the rule, and the edge; the target line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = [(f"{m} (rule)", [r.recall[(m, True)] for r in rows.values()]) for m in MODELS]
    if all(r.edge is not None for r in rows.values()):
        bars.append(("edge", [r.edge or 0.0 for r in rows.values()]))
    fig, ax = plt.subplots(figsize=(9, 4.2))
    width = 0.8 / len(bars)
    for i, (label, values) in enumerate(bars):
        xs = [j + (i - (len(bars) - 1) / 2) * width for j in range(len(rows))]
        ax.bar(xs, values, width, label=label)
    ax.axhline(TARGET, color="black", linestyle="--", linewidth=1, label=f"target {TARGET}")
    ax.set_xticks(range(len(rows)), list(rows))
    ax.set_ylim(0.6, 1.0)
    ax.set_ylabel("recall@5")
    part = "held-out" if split == "heldout" else split
    ax.set_title(f"Single typos: the best any ranking can do ({part} part)")
    ax.legend(fontsize=8, ncol=len(bars) + 1, loc="upper center", bbox_to_anchor=(0.5, -0.08))
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m load.quality.ceiling",
        description="The Bayes ceiling of recall@5 on the single-typo classes of the query set.",
    )
    parser.add_argument("--split", choices=("tuning", "heldout"), default="tuning")
    parser.add_argument("--sample", type=int, default=None, help="queries per class at most")
    parser.add_argument("--no-edge", action="store_true", help="skip the edge's own figure")
    parser.add_argument("--plot", default=str(PLOT), help="(default %(default)s; '' for none)")
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    say("loading the corpus as the generator keyed it ...")
    ceiling = Ceiling(generate.corpus_entries())
    queries = [q for q in generate.read() if q.split == args.split and q.cls in CLASSES]
    if args.sample is not None:
        per: dict[str, int] = defaultdict(int)
        kept = []
        for q in queries:
            per[q.cls] += 1
            if per[q.cls] <= args.sample:
                kept.append(q)
        queries = kept
    loaded = corpus.load(corpus.default_path())
    edge = None
    if not args.no_edge:
        from load.bench_quality import edge_system

        say("building the edge's index ...")
        edge = edge_system(loaded.entries, loaded.names)
    say(f"scoring {len(queries)} queries of the {args.split} part ...")
    rows = measure(ceiling, queries, edge, say)
    print(table(rows))
    split_queries = [q for q in generate.read() if q.split == args.split]
    n, lost, causes = exact_losses(loaded.entries, loaded.names, split_queries)
    print(f"\nexact prefixes: the edge loses {lost} of {n}; terms above the target, by the rule:")
    for cause, seen in causes.items():
        print(f"  {cause}: {len(seen)}" + (f" ({'; '.join(seen)})" if seen else ""))
    if args.plot:
        plot(rows, args.split, Path(args.plot))
        say(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
