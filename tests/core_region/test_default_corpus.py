"""The shipped default corpus (core_region/data/cities.tsv.gz) is well formed.

Read with the standard library only, so a broken file is caught independently of the loader.
Regenerate the file with ``scripts/derive_cities.py`` (see core_region/data/NOTICE.md).
"""

from __future__ import annotations

import gzip
import itertools
from functools import cache
from pathlib import Path

from load.quality.generate import fold_v1
from shared.folding import fold

CORPUS = Path(__file__).resolve().parents[2] / "core_region" / "data" / "cities.tsv.gz"
MIN_TERMS = 100_000


@cache
def _lines() -> tuple[str, ...]:
    with gzip.open(CORPUS, "rt", encoding="utf-8", newline="") as f:
        text = f.read()
    assert text.endswith("\n"), "the last line must end with a newline"
    return tuple(text[:-1].split("\n"))


MAX_OTHER_NAMES = 20_000
"""The other names' budget (scripts/derive_cities.py: about 12,000 on 3,400 cities)."""


@cache
def _rows() -> tuple[tuple[str, int], ...]:
    rows: list[tuple[str, int]] = []
    for number, line in enumerate(_lines(), start=1):
        fields = line.split("\t")
        assert len(fields) >= 2, f"line {number}: expected term<TAB>weight..., got {line!r}"
        term, weight = fields[:2]
        assert term, f"line {number}: empty term"
        assert weight.isascii(), f"line {number}: bad weight {weight!r}"
        assert weight.isdigit(), f"line {number}: bad weight {weight!r}"
        assert int(weight) > 0, f"line {number}: weight must be positive"
        rows.append((term, int(weight)))
    return tuple(rows)


def test_corpus_has_enough_lines() -> None:
    assert len(_lines()) >= MIN_TERMS


def test_every_line_is_term_tab_positive_weight() -> None:
    assert len(_rows()) == len(_lines())


def test_folded_terms_are_unique() -> None:
    """Unique under the fold the file was derived with (scripts/derive_cities.py merges
    names that fold alike; version 1 of the fold, or a later one). Folding that ignores
    spaces and punctuation (version 2) merges a few hundred more ("Saint-Louis" and "St.
    Louis"): the loader keeps the heaviest of each (core_region/suggest/corpus.py)."""
    folded = [fold(term) for term, _ in _rows()]
    assert "" not in folded
    assert len(set(map(fold_v1, (term for term, _ in _rows())))) == len(folded)
    assert len(folded) - len(set(folded)) < len(folded) // 200


def test_sorted_by_weight_descending() -> None:
    weights = [weight for _, weight in _rows()]
    assert all(a >= b for a, b in itertools.pairwise(weights))


def test_sao_paulo_keeps_its_accent_and_a_large_weight() -> None:
    weights = dict(_rows())
    assert weights.get("São Paulo", 0) > 1_000_000


@cache
def _names() -> dict[str, tuple[str, ...]]:
    return {f[0]: tuple(f[2:]) for line in _lines() if len(f := line.split("\t")) > 2}


def test_other_names_are_within_budget_and_distinct() -> None:
    names = _names()
    assert 0 < sum(len(ns) for ns in names.values()) <= MAX_OTHER_NAMES
    for term, ns in names.items():
        folded = [fold(n) for n in ns]
        assert all(folded), term
        assert fold(term) not in folded, term
        assert len(set(folded)) == len(folded), term


def test_the_issues_other_names_are_there() -> None:
    names = _names()
    assert "Bombay" in names["Mumbai"]
    assert "Peking" in names["Beijing"]
    assert "Москва" in names["Moscow"]
    assert "東京" in names["Tokyo"]
    assert "München" in names["Munich"]
