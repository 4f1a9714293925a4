"""Other names at the edge: classes, ranking, the overlay, and the wire items."""

from __future__ import annotations

from edge_node.suggest.aliases import AliasMatch
from edge_node.suggest.index import SuggestIndex
from edge_node.suggest.prepared import item as _item
from shared import snapshot
from shared.folding import fold
from shared.protocol import Delta, Item, TermChange, to_plain
from shared.snapshot import Entry

BASE = [
    Entry("mumbai", "Mumbai", 100),
    Entry("bombarral", "Bombarral", 5),
    Entry("bombay beach", "Bombay Beach", 2),
    Entry("munich", "Munich", 50),
    Entry("munchenstein", "Münchenstein", 10),
    Entry("moscow", "Moscow", 80),
    Entry("tokyo", "Tokyo", 90),
]
NAMES = {
    "mumbai": ("Bombay", "Bombaim"),
    "munich": ("München", "Munichen"),
    "moscow": ("Москва",),
    "tokyo": ("東京", "東京都"),
}


def index_of(names: dict[str, tuple[str, ...]] = NAMES, threshold: int = 64) -> SuggestIndex:
    blob = snapshot.build(BASE, version=1, hot={}, hot_threshold=threshold, depth=5, names=names)
    return SuggestIndex(snapshot.parse(blob))


def shown(entries: list[Entry]) -> list[tuple[str, str, str | None]]:
    return [(e.term, e.match, e.alias if isinstance(e, AliasMatch) else None) for e in entries]


def test_the_issues_names_suggest_the_canonical_term() -> None:
    index = index_of()
    assert shown(index.query(fold("москва"), 5)) == [("Moscow", "alias", "Москва")]
    assert shown(index.query(fold("東京"), 5))[0] == ("Tokyo", "alias", "東京")
    assert shown(index.query(fold("Bombay"), 5))[0] == ("Mumbai", "alias", "Bombay")


def test_exact_then_prefix_classes_rank_by_weight_above_typos() -> None:
    """munchen: Munich's other name exactly (exact class), then Münchenstein (prefix);
    "bomba": the prefix class mixes keys and names by weight, one item per term."""
    index = index_of()
    assert shown(index.query("munchen", 5)) == [
        ("Munich", "alias", "München"),
        ("Münchenstein", "prefix", None),
    ]
    assert shown(index.query("bomba", 5))[:3] == [
        ("Mumbai", "alias", "Bombay"),  # its shortest name
        ("Bombarral", "prefix", None),
        ("Bombay Beach", "prefix", None),
    ]
    # an exact key beats an exact name; the canonical match of a term beats its names
    assert shown(index.query("mu", 5))[:2] == [
        ("Mumbai", "prefix", None),
        ("Munich", "prefix", None),
    ]


def test_hot_name_prefixes_read_their_list() -> None:
    index = index_of(threshold=1)
    assert [e.term for e in index.query("bomba", 3)] == ["Mumbai", "Bombarral", "Bombay Beach"]
    assert shown(index.query("munic", 3))[0] == ("Munich", "prefix", None)  # its own key wins
    assert shown(index.query("munichen", 3))[0] == ("Munich", "alias", "Munichen")


def test_names_follow_deltas() -> None:
    """A change carries all the term's names: new ones match, old ones stop, and a term
    no longer served is not suggested through its names."""
    index = index_of()
    index.apply(Delta(1, 2, [TermChange("munich", "Munich", 60, ["Monaco di Baviera"])]))
    assert shown(index.query("monaco", 3)) == [("Munich", "alias", "Monaco di Baviera")]
    assert [e.term for e in index.query("munchen", 3)] == ["Münchenstein"]
    index.apply(Delta(2, 3, [TermChange("mumbai", None, 0)]))
    assert all(e.term != "Mumbai" for e in index.query("bombay", 5))
    index.apply(Delta(3, 4, [TermChange("mumbai", "Mumbai", 100)]))  # back, without names
    assert all(e.term != "Mumbai" for e in index.query("bombay", 5))
    index.apply(Delta(4, 5, [TermChange("paris", "Paris", 3, ["Lutèce", "Paris"])]))
    assert shown(index.query("lutece", 3)) == [("Paris", "alias", "Lutèce")]
    # weight changes rank a name by the term's current weight
    index.apply(Delta(5, 6, [TermChange("bombarral", "Bombarral", 500)]))
    assert [e.term for e in index.query("bomba", 2)] == ["Bombarral", "Bombay Beach"]


def test_an_index_without_names_answers_as_before() -> None:
    blob = snapshot.build(BASE, version=1, hot={}, hot_threshold=64, depth=5)
    index = SuggestIndex(snapshot.parse(blob))
    assert [e.match for e in index.query("bomba", 5)] == ["prefix", "prefix"]


def test_an_alias_item_says_which_name_matched_and_others_stay_as_they_were() -> None:
    item = _item(AliasMatch("munich", "Munich", 50, "München"))
    assert item == Item("Munich", 50, "alias", alias="München")
    assert to_plain(item) == {"term": "Munich", "weight": 50, "match": "alias", "alias": "München"}
    assert to_plain(_item(Entry("munich", "Munich", 50))) == {"term": "Munich", "weight": 50}
