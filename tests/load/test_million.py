"""The million-term corpus (``python -m load.million make``): every city and each with every
suffix, weighted below it, in the format ``--corpus`` reads."""

from __future__ import annotations

from pathlib import Path

from core_region.suggest import corpus
from load.million import SUFFIXES, make, terms_in
from tests.helpers.nodes import SMALL_CORPUS


def test_every_city_comes_with_every_suffix_below_it(tmp_path: Path) -> None:
    path = tmp_path / "million.tsv.gz"
    cities = corpus.load(SMALL_CORPUS).entries
    assert make(path, SMALL_CORPUS) == len(cities) * (1 + len(SUFFIXES))
    loaded = {term: weight for _, term, weight in corpus.load(path).entries}
    _, first, weight = cities[0]
    assert loaded[first] == weight
    assert loaded[f"{first} {SUFFIXES[0]}"] == weight // 2 < weight


def test_cities_keep_their_other_names_and_suffixed_terms_have_none(tmp_path: Path) -> None:
    source = tmp_path / "named.tsv"
    source.write_text("Mumbai\t100\tBombay\nPune\t50\n", encoding="utf-8")
    path = tmp_path / "million.tsv"
    make(path, source)
    assert corpus.load(path).names == {"mumbai": ("Bombay",)}
    assert list(terms_in(path))[:2] == [("Mumbai", 100), ("Mumbai Airport", 50)]
