"""The suggestion-quality query set and its benchmark (load/quality, load/bench_quality)."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

import pytest

from core_region.suggest import corpus
from load import bench_quality
from load.quality import ceiling, generate
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


# --- the Bayes ceiling of the single-typo classes (load/quality/ceiling.py) -------------------


def test_slip_outcomes_are_what_the_generator_slips_to() -> None:
    text = "sydney"
    for at in range(len(text)):
        outcomes = ceiling.slip_outcomes(text, at)
        assert sum(outcomes.values()) == pytest.approx(1.0)
        rng = random.Random(at)
        made = {generate.slip(text, at, rng) for _ in range(2_000)}
        assert made == set(outcomes)  # every outcome reachable, nothing else
    assert ceiling.slip_outcomes("a'b", 1) == {}  # not a letter: the generator makes nothing
    free = ceiling.slip_outcomes(text, 0, ceiling.LAYOUT_FREE)
    assert len({q for q in free if q[1:] == text[1:]}) == 25  # any other first letter


def test_class_outcomes_place_the_slip_where_the_class_says() -> None:
    assert set(ceiling.class_outcomes("abcd", "typo1_first")) == set(
        ceiling.slip_outcomes("abcd", 0)
    )
    middle = ceiling.class_outcomes("abcde", "typo1_middle")
    assert sum(middle.values()) == pytest.approx(1.0)
    assert all(q[0] == "a" for q in middle)  # the first character is never the middle
    assert ceiling.class_outcomes("abcd", "transposition") == pytest.approx(
        {"bacd": 1 / 3, "acbd": 1 / 3, "abdc": 1 / 3}
    )
    with pytest.raises(ValueError):
        ceiling.class_outcomes("abcd", "exact")


def test_the_ceiling_ranks_by_weight_times_the_odds_of_the_slip() -> None:
    entries = [
        ("sydney", "Sydney", 5_000_000),
        ("sydenham", "Sydenham", 30_000),
        ("aydin", "Aydın", 200_000),
        ("cydra", "Cydra", 100),
    ] + [(f"xydn{c}", f"Xydn{c}", 10) for c in "abcde"]
    c = ceiling.Ceiling(entries)
    # "sydmey": a neighbour key (m for n) in the middle: Sydney, whatever the model.
    for model in ceiling.MODELS:
        assert c.ranked("sydmey", "typo1_middle", model, rule=False)[0] == "sydney"
    # "xydn" starts five terms: under the rule no typo match is shown; free, Sydney wins.
    assert c.blocked("xydn")
    assert "sydney" not in c.ranked("xydn", "typo1_first", "keyboard", rule=True)
    assert c.ranked("xydn", "typo1_first", "keyboard", rule=False)[0] == "sydney"
    # "qydin": q is no neighbour of a on the keyboard, any other letter without one.
    assert c.likelihood("aydin", "qydin", "typo1_first", "keyboard") > 0  # q neighbours a
    assert c.likelihood("aydin", "pydin", "typo1_first", "keyboard") == 0
    assert c.likelihood("aydin", "pydin", "typo1_first", "layout-free") > 0


def test_the_ceiling_measures_a_sample_and_every_exact_loss_has_a_rule(
    entries: list[tuple[str, str, int]], committed: list[generate.Query]
) -> None:
    c = ceiling.Ceiling(generate.corpus_entries())
    sample = [q for q in committed if q.split == "tuning" and q.cls in ceiling.CLASSES][::40]
    rows = ceiling.measure(c, sample)
    assert set(rows) == {*ceiling.CLASSES, ceiling.POOLED}
    for row in rows.values():
        assert row.edge is None and 0 <= row.recall[("oracle", True)] <= row.rule
    pooled = rows[ceiling.POOLED]
    assert pooled.n == len(sample)
    assert pooled.rule == pytest.approx(
        sum(rows[c].rule * rows[c].n for c in ceiling.CLASSES) / len(sample)
    )
    assert "| typo1" in ceiling.table(rows)
    loaded = corpus.load(corpus.default_path())
    tuning = [q for q in committed if q.split == "tuning"]
    n, lost, causes = ceiling.exact_losses(loaded.entries, loaded.names, tuning)
    assert n == sum(q.cls == "exact" for q in tuning) and lost > 0
    blamed = {line.split(": ")[0] for seen in causes.values() for line in seen}
    assert len(blamed) == lost  # each lost query has a term above its target by some rule
    assert not causes["typo"]  # typo matches never rank above prefix matches
