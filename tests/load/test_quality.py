"""The suggestion-quality query set and its benchmark (load/quality, load/bench_quality)."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

import pytest

from core_region.suggest import corpus
from load import bench_quality
from load.quality import generate
from shared.folding import fold


@pytest.fixture(scope="module")
def entries() -> list[tuple[str, str, int]]:
    return corpus.load(corpus.default_path()).entries


@pytest.fixture(scope="module")
def entries_v1() -> list[tuple[str, str, int]]:
    """The corpus as the generator sees it: keyed by the frozen version-1 fold."""
    return generate.corpus_entries()


@pytest.fixture(scope="module")
def committed() -> list[generate.Query]:
    return generate.read()


def test_the_generator_is_deterministic_and_made_the_committed_file(
    entries_v1: list[tuple[str, str, int]], committed: list[generate.Query]
) -> None:
    first = generate.generate(entries_v1)
    assert first == generate.generate(entries_v1)
    assert first == committed


def test_the_generator_reads_the_corpus_as_version_1_of_the_fold_keyed_it(
    entries_v1: list[tuple[str, str, int]],
) -> None:
    """The pin: the serving fold may change, the generator's view of the corpus does not."""
    keys = {k for k, _, _ in entries_v1}
    assert {"xi’an", "new york city", "saint petersburg", "winston-salem"} <= keys
    assert generate.fold_v1("  Xi'an\u00a0 ") == "xi'an" != fold("Xi'an")
    assert len(entries_v1) == 128_782


def test_another_seed_gives_other_queries(entries_v1: list[tuple[str, str, int]]) -> None:
    made = generate.generate(entries_v1, seed=generate.SEED + 1)
    typo = {q.text for q in made if q.cls == "typo1_middle"}
    assert typo != {q.text for q in generate.read() if q.cls == "typo1_middle"}


def test_held_out_targets_never_appear_in_tuning(committed: list[generate.Query]) -> None:
    targets: dict[str, set[str]] = defaultdict(set)
    for query in committed:
        targets[query.split].update(generate.fold_v1(t) for t in query.targets)
    assert targets["heldout"] and targets["tuning"]
    assert not targets["heldout"] & targets["tuning"]
    for query in committed:
        assert query.split == generate.split_of(query.targets[0])


def test_every_class_has_both_splits_and_a_few_hundred_queries(
    committed: list[generate.Query],
) -> None:
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for query in committed:
        counts[(query.cls, query.split)] += 1
    for cls in generate.CLASSES:
        assert counts[(cls, "heldout")] >= 20, cls
        assert counts[(cls, "tuning")] >= 20, cls
        if cls != "misspelling":
            assert counts[(cls, "heldout")] + counts[(cls, "tuning")] == generate.PER_CLASS


def test_queries_keep_to_their_class_rules(
    entries_v1: list[tuple[str, str, int]], committed: list[generate.Query]
) -> None:
    keys = {k for k, _, _ in entries_v1}
    for query in committed:
        assert all(generate.fold_v1(t) in keys for t in query.targets), query
        key = generate.fold_v1(query.targets[0])
        if query.cls == "exact":
            assert key.startswith(query.text), query
        elif query.cls.startswith(("typo1", "transposition")):
            assert len(query.text) >= generate.ONE_TYPO_FROM
            assert not key.startswith(query.text), query
        elif query.cls == "typo2":
            assert len(query.text) >= generate.TWO_TYPOS_FROM


def test_a_slip_lands_on_a_neighbour_key_or_drops_or_doubles_one() -> None:
    rng = random.Random(1)
    seen = set()
    for _ in range(200):
        slipped = generate.slip("paris", 2, rng)
        assert slipped is not None
        seen.add(slipped)
        if len(slipped) == 5:
            assert slipped[2] in generate.NEIGHBOURS["r"]
    assert "pais" in seen and "parris" in seen
    assert any(len(s) == 6 and s != "parris" for s in seen)
    assert generate.slip("a b", 1, rng) is None  # a space has no neighbours here
    assert generate.swap("paris", 1) == "prais"
    assert generate.swap("appl", 1) is None  # equal letters: no visible swap


def test_neighbours_are_symmetric() -> None:
    for key, around in generate.NEIGHBOURS.items():
        for other in around:
            assert key in generate.NEIGHBOURS[other]


def test_the_quick_bench_prints_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "recall.png"
    assert bench_quality.main(["--quick", "--sample", "2", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "| class | split | n | edge r@1 | edge r@5 | edge p99 ms | rapidfuzz r@1" in out
    for cls in generate.CLASSES:
        assert f"| {cls} | heldout | 2 |" in out
        assert f"| {cls} | tuning | 2 |" in out
    assert plot.stat().st_size > 0


def test_the_reference_tolerates_the_issues_typos(entries: list[tuple[str, str, int]]) -> None:
    fuzzy = bench_quality.PrefixFuzzy(entries)
    assert fuzzy("sydny")[0][1] == "Sydney"
    assert any(term == "Los Angeles" for _, term in fuzzy("los angelos"))
    assert fuzzy("lodnon")[0][1] == "London"  # a transposition is one typo
    assert fuzzy("qqx") == []  # under 4 characters: exact prefixes only
    assert bench_quality.hit_at([("munich", "Munich")], ["Munich"], 1)
    assert not bench_quality.hit_at([("a", "A"), ("munich", "Munich")], ["Munich"], 1)
