"""The edge's suggestion index: a snapshot plus an overlay of deltas."""

from __future__ import annotations

import pytest

from edge_node.suggest.index import GapError, SuggestIndex
from shared import snapshot
from shared.folding import fold
from shared.protocol import Delta, TermChange
from shared.snapshot import Entry

BASE = [
    Entry("paris", "Paris", 100),
    Entry("parma", "Parma", 50),
    Entry("pau", "Pau", 20),
    Entry("perth", "Perth", 70),
    Entry("lyon", "Lyon", 60),
    Entry("lille", "Lille", 10),
]
HOT = {"": ["paris", "perth", "lyon"], "p": ["paris", "perth", "parma"]}  # threshold 3, depth 3


def index_at(version: int = 5) -> SuggestIndex:
    blob = snapshot.build(BASE, version=version, hot=HOT, hot_threshold=3, depth=3)
    return SuggestIndex(snapshot.parse(blob))


def keys(entries: list[Entry]) -> list[str]:
    return [e.key for e in entries]


def test_fresh_index_serves_the_snapshot() -> None:
    """Hot prefixes read their list; others rank their completions."""
    index = index_at()
    assert index.version == 5
    assert len(index) == 6
    assert index.overlay_size == 0
    assert keys(index.query("", 3)) == ["paris", "perth", "lyon"]
    assert keys(index.query("p", 2)) == ["paris", "perth"]
    assert keys(index.query("pa", 3)) == ["paris", "parma", "pau"]
    assert keys(index.query("l", 3)) == ["lyon", "lille"]
    assert index.query("x", 3) == []
    assert index.get("lyon") == Entry("lyon", "Lyon", 60)
    assert index.get("ly") is None


def test_non_hot_query_breaks_weight_ties_by_key() -> None:
    """Equal weights rank by folded key ascending."""
    entries = [Entry("ab", "AB", 1), Entry("aa", "AA", 1), Entry("ac", "AC", 2)]
    blob = snapshot.build(entries, version=1, hot={}, hot_threshold=10, depth=3)
    assert keys(SuggestIndex(snapshot.parse(blob)).query("a", 3)) == ["ac", "aa", "ab"]


def test_delta_with_a_gap_raises_and_leaves_the_index_untouched() -> None:
    """A delta not starting at the index's version raises GapError and applies nothing."""
    index = index_at(5)
    delta = Delta(
        6,
        7,
        [TermChange("paris", None, 0), TermChange("pamiers", "Pamiers", 999)],
        {"": ["pamiers"], "p": ["pamiers"]},
    )
    with pytest.raises(GapError) as info:
        index.apply(delta)
    assert (info.value.have, info.value.got) == (5, 6)
    assert index.version == 5
    assert index.overlay_size == 0
    assert index.get("paris") == Entry("paris", "Paris", 100)
    assert index.get("pamiers") is None
    assert keys(index.query("", 3)) == ["paris", "perth", "lyon"]
    assert keys(index.query("pa", 3)) == ["paris", "parma", "pau"]


def test_old_delta_is_a_gap_too() -> None:
    """A delta the index already has (from < version) is refused the same way."""
    index = index_at(5)
    with pytest.raises(GapError):
        index.apply(Delta(4, 5, []))
    assert index.version == 5


def test_overlay_shadows_the_base() -> None:
    """A changed weight and display form replace the snapshot's, everywhere."""
    index = index_at()
    index.apply(Delta(5, 6, [TermChange("pau", "PAU!", 500)], {"": ["pau", "paris", "perth"]}))
    assert index.version == 6
    assert index.overlay_size == 1
    assert index.get("pau") == Entry("pau", "PAU!", 500)
    assert index.query("", 1) == [Entry("pau", "PAU!", 500)]
    assert index.query("pa", 2) == [Entry("pau", "PAU!", 500), Entry("paris", "Paris", 100)]
    assert len(index) == 6


def test_removed_keys_vanish() -> None:
    """A term sent as None is no longer found, by get or by any prefix."""
    index = index_at()
    index.apply(Delta(5, 6, [TermChange("lyon", None, 0)], {"": ["paris", "perth", "parma"]}))
    assert index.get("lyon") is None
    assert keys(index.query("l", 3)) == ["lille"]
    assert keys(index.query("lyon", 3)) == []
    assert keys(index.query("", 3)) == ["paris", "perth", "parma"]


def test_hot_list_entries_removed_without_a_new_list_are_skipped() -> None:
    """If a hot list still names a removed key, the answer drops it rather than fail."""
    index = index_at()
    index.apply(Delta(5, 6, [TermChange("perth", None, 0)]))
    assert keys(index.query("p", 3)) == ["paris", "parma"]


def test_base_hot_lists_read_by_key_id_show_the_overlay() -> None:
    """The snapshot's hot lists are key ids: an entry a delta changed without resending the
    list (a new display form, the same rank) shows its new state from the overlay."""
    index = index_at()
    index.apply(Delta(5, 6, [TermChange("paris", "PARIS", 100)]))
    assert index.query("", 2) == [Entry("paris", "PARIS", 100), Entry("perth", "Perth", 70)]
    assert index.query("p", 1) == [Entry("paris", "PARIS", 100)]


def test_new_keys_in_non_hot_prefixes_are_found() -> None:
    """Keys only in the overlay are ranked with the snapshot's under a non-hot prefix."""
    index = index_at()
    index.apply(
        Delta(
            5,
            6,
            [TermChange("lima", "Lima", 30), TermChange("lisbon", "Lisbon", 5)],
            {},
        )
    )
    assert keys(index.query("l", 4)) == ["lyon", "lima", "lille", "lisbon"]
    assert keys(index.query("li", 4)) == ["lima", "lille", "lisbon"]
    assert keys(index.query("lis", 4)) == ["lisbon"]
    assert index.get("lima") == Entry("lima", "Lima", 30)
    assert len(index) == 6  # the base size; the overlay is counted apart
    assert index.overlay_size == 2


def test_new_key_added_then_removed_is_gone() -> None:
    """An overlay-only key that a later delta removes is not found any more."""
    index = index_at()
    index.apply(Delta(5, 6, [TermChange("lima", "Lima", 30)]))
    index.apply(Delta(6, 7, [TermChange("lima", None, 0)]))
    assert index.get("lima") is None
    assert keys(index.query("l", 4)) == ["lyon", "lille"]
    index.apply(Delta(7, 8, [TermChange("lima", "Lima", 1)]))
    assert keys(index.query("l", 4)) == ["lyon", "lille", "lima"]


def test_removed_base_key_can_come_back() -> None:
    """A snapshot key removed and then served again is found with its new state."""
    index = index_at()
    index.apply(Delta(5, 6, [TermChange("lille", None, 0)]))
    index.apply(Delta(6, 7, [TermChange("lille", "Lille", 99)]))
    assert keys(index.query("l", 3)) == ["lille", "lyon"]


def test_limit_cuts_hot_and_non_hot_answers() -> None:
    """``limit`` bounds both kinds of answer."""
    index = index_at()
    assert len(index.query("", 1)) == 1
    assert len(index.query("pa", 1)) == 1


def test_hot_lists_are_replaced_only_where_the_delta_says() -> None:
    """A delta's hot lists replace those prefixes; other lists stay."""
    index = index_at()
    index.apply(
        Delta(5, 6, [TermChange("parma", "Parma", 200)], {"p": ["parma", "paris", "perth"]})
    )
    assert keys(index.query("p", 3)) == ["parma", "paris", "perth"]
    assert keys(index.query("", 3)) == ["paris", "perth", "lyon"]  # not resent: unchanged


def test_keys_never_hold_the_last_code_point_that_bounds_prefix_ranges() -> None:
    """Folding drops U+10FFFF (a noncharacter), so the overlay's prefix range, bounded by
    it, covers every key that starts with the prefix."""
    assert fold("L\U0010ffffx") == "lx"
    index = index_at()
    index.apply(Delta(5, 6, [TermChange(fold("L\U0010ffffx"), "Lx", 1)]))
    assert keys(index.query("l", 3)) == ["lyon", "lille", "lx"]
