"""The snapshot: hot lists (checked against brute force), and build/parse on the wire."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import pytest
from hypothesis import given, settings, strategies as st

from shared.errors import ProtocolError
from shared.folding import FOLD_VERSION, fold
from shared.protocol import pack, unpack
from shared.snapshot import FORMAT, Entry, Terms, build, hot_lists, parse, rank


def brute_hot(entries: list[Entry], threshold: int, depth: int) -> dict[str, list[str]]:
    """Every prefix of every key with more than ``threshold`` completions -> its top keys."""
    prefixes = {e.key[:n] for e in entries for n in range(len(e.key) + 1)}
    result: dict[str, list[str]] = {}
    for prefix in prefixes:
        matching = [e for e in entries if e.key.startswith(prefix)]
        if len(matching) > threshold:
            ranked = sorted(matching, key=lambda e: (-e.weight, e.key))
            result[prefix] = [e.key for e in ranked[:depth]]
    return result


def entries_of(weights: dict[str, int]) -> list[Entry]:
    return [Entry(key, key.title(), weight) for key, weight in sorted(weights.items())]


corpora = st.dictionaries(
    st.text(alphabet="ab c", min_size=1, max_size=5),
    st.integers(min_value=1, max_value=6),  # small weights: many ties, broken by key
    max_size=30,
)


@settings(max_examples=200, deadline=None, database=None)
@given(
    corpora,
    st.integers(min_value=0, max_value=4),
    st.integers(min_value=1, max_value=4),
)
def test_hot_lists_equal_brute_force(weights: dict[str, int], threshold: int, depth: int) -> None:
    """Exactly the prefixes with more than ``threshold`` completions, each with its top keys."""
    entries = entries_of(weights)
    assert hot_lists(entries, threshold=threshold, depth=depth) == brute_hot(
        entries, threshold, depth
    )


def test_hot_lists_of_nothing_is_empty() -> None:
    """An empty corpus has no hot prefix."""
    assert hot_lists([], threshold=0, depth=3) == {}


def test_hot_lists_break_ties_by_key() -> None:
    """Equal weights are ranked by folded key ascending."""
    entries = entries_of({"ab": 5, "aa": 5, "ac": 7, "b": 5})
    hot = hot_lists(entries, threshold=2, depth=3)
    assert hot == {"": ["ac", "aa", "ab"], "a": ["ac", "aa", "ab"]}


def test_a_key_equal_to_its_prefix_counts_as_a_completion() -> None:
    """A key that is itself a hot prefix competes in that prefix's list."""
    entries = entries_of({"a": 9, "ab": 1, "ac": 2})
    assert hot_lists(entries, threshold=2, depth=2) == {"": ["a", "ac"], "a": ["a", "ac"]}


def test_rank_orders_heavier_first_then_key() -> None:
    """rank sorts by weight descending, then key ascending."""
    entries = [Entry("b", "B", 1), Entry("c", "C", 2), Entry("a", "A", 1)]
    assert [e.key for e in sorted(entries, key=rank)] == ["c", "a", "b"]


class _Hung(Exception):
    pass


@contextmanager
def _watchdog(seconds: float) -> Iterator[None]:
    """Interrupt the main thread's Python code after ``seconds`` (an infinite loop fails)."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise _Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, interrupt)
    outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay:  # give back pytest-timeout's alarm, if it had one running
            left = max(outer_delay - (time.monotonic() - started), 0.001)
            signal.setitimer(signal.ITIMER_REAL, left, outer_interval)


def test_hot_lists_terminate_on_keys_containing_the_last_code_point() -> None:
    """U+10FFFF is a legal character in a key; hot lists still cover every key."""
    entries = entries_of({"a": 1, "a\U0010ffffb": 2, "b": 3})
    with _watchdog(1.0):
        hot = hot_lists(entries, threshold=2, depth=3)
    assert hot == {"": ["b", "a\U0010ffffb", "a"]}


# --- build / parse ---------------------------------------------------------------------------


def test_build_parse_round_trip_keeps_every_entry() -> None:
    """Every entry comes back through get(); unknown keys give None."""
    entries = entries_of({"paris": 100, "parma": 5, "porto": 50, "são": 7})
    hot = hot_lists(entries, threshold=2, depth=2)
    data = parse(build(entries, version=12, hot=hot, hot_threshold=2, depth=2))
    assert data.version == 12
    assert len(data) == 4
    assert [data.get(e.key) for e in entries] == entries
    assert data.get("par") is None
    assert data.get("lyon") is None
    assert data.hot == {"": ["paris", "porto"], "p": ["paris", "porto"]}
    assert (data.hot_threshold, data.depth) == (2, 2)


def test_build_cuts_hot_lists_to_depth() -> None:
    """Deeper lists (the core keeps 2 x depth) are cut to ``depth`` on the wire."""
    entries = entries_of({"a": 1, "b": 2, "c": 3})
    data = parse(build(entries, version=1, hot={"": ["c", "b", "a"]}, hot_threshold=1, depth=2))
    assert data.hot == {"": ["c", "b"]}


def test_build_accepts_entries_in_any_order() -> None:
    """Entries need not be sorted: ids come from the trie."""
    entries = entries_of({"x": 3, "a": 1, "m": 2})
    data = parse(build(entries[::-1], version=1, hot={}, hot_threshold=5, depth=5))
    assert [data.get(k) for k in ("a", "m", "x")] == entries


def test_empty_snapshot_round_trips() -> None:
    """A snapshot without terms parses to an empty one."""
    data = parse(build([], version=0, hot={}, hot_threshold=64, depth=20))
    assert len(data) == 0
    assert data.get("") is None
    assert data.hot == {}


def test_single_entry_snapshot_round_trips() -> None:
    """One term (no separator in the joined display forms) still parses."""
    data = parse(build([Entry("a", "A", 1)], version=3, hot={}, hot_threshold=1, depth=1))
    assert data.get("a") == Entry("a", "A", 1)


@settings(max_examples=100, deadline=None, database=None)
@given(corpora, st.integers(min_value=0, max_value=2**62))
def test_build_parse_round_trip_property(weights: dict[str, int], version: int) -> None:
    """Any corpus comes back whole: every key, weight, display form and hot list."""
    entries = entries_of(weights)
    hot = hot_lists(entries, threshold=2, depth=3)
    data = parse(build(entries, version=version, hot=hot, hot_threshold=2, depth=3))
    assert data.version == version
    assert len(data) == len(entries)
    assert [data.get(e.key) for e in entries] == entries
    assert data.hot == hot


def _good_raw() -> dict[str, object]:
    raw = unpack(build(entries_of({"a": 1, "b": 2}), version=1, hot={}, hot_threshold=1, depth=1))
    assert isinstance(raw, dict)
    return raw


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\xc1",
        b"not msgpack at all",
        pack([1, 2, 3]),
        pack("snapshot"),
        pack({}),
        pack({"format": FORMAT + 1}),
        pack({**_good_raw(), "trie": b"garbage"}),
        pack({**_good_raw(), "weights": b"\x00" * 8}),  # one weight for two terms
        pack({**_good_raw(), "terms": "only one"}),
        pack({**_good_raw(), "hot": ["not", "a", "map"]}),
        pack({k: v for k, v in _good_raw().items() if k != "depth"}),
    ],
)
def test_parse_of_garbage_raises_protocol_error(blob: bytes) -> None:
    """Anything that is not a snapshot of this format is a ProtocolError."""
    with pytest.raises(ProtocolError):
        parse(blob)


@pytest.mark.parametrize(("made_with", "upgrade"), [(None, "core"), (FOLD_VERSION + 1, "edge")])
def test_a_snapshot_of_another_fold_is_refused_saying_which_side_to_upgrade(
    made_with: int | None, upgrade: str
) -> None:
    """Keys of another fold would not match this side's queries: refused, naming the older
    side (a snapshot without ``fold`` was made by version 1, before the field)."""
    raw = {k: v for k, v in _good_raw().items() if k != "fold"}
    if made_with is not None:
        raw["fold"] = made_with
    with pytest.raises(ProtocolError) as caught:
        parse(pack(raw))
    assert f"fold version {made_with or 1}" in caught.value.message
    assert f"upgrade the {upgrade}" in caught.value.message


def test_a_snapshot_says_which_fold_made_its_keys() -> None:
    assert (
        unpack(build([Entry("a", "A", 1)], version=1, hot={}, hot_threshold=64, depth=10))["fold"]
        == FOLD_VERSION
    )


# --- long keys sharing a long prefix (issue 9, finding 1) ----------------------------------


def test_hot_lists_of_80_keys_sharing_1800_characters_need_no_recursion() -> None:
    """The fold of "\\ufdfa" × 98 and 80 distinct suffixes: every prefix of the shared part
    is hot. The walk is iterative (it used to recurse once per character), exact, and fast."""
    shared = fold("\ufdfa" * 98)
    assert len(shared) == 1470
    entries = sorted(
        (Entry(f"{shared} {n:02d}", "t", n + 1) for n in range(80)), key=lambda e: e.key
    )
    with _watchdog(2.0):
        hot = hot_lists(entries, threshold=64, depth=40)
    ranked = [e.key for e in sorted(entries, key=lambda e: -e.weight)[:40]]
    assert set(hot) == {f"{shared} "[:n] for n in range(len(shared) + 2)}  # 10 keys per digit
    assert all(top == ranked for top in hot.values())


def test_hot_lists_walk_a_chain_far_deeper_than_the_recursion_limit() -> None:
    """No bound on key length is assumed by the walk itself: 5,000 shared characters."""
    shared = "a" * 5_000
    entries = [Entry(f"{shared}{n}", "t", n) for n in range(4)]
    with _watchdog(10.0):
        hot = hot_lists(entries, threshold=2, depth=2)
    assert hot[shared] == [f"{shared}3", f"{shared}2"] and len(hot) == len(shared) + 1


def test_hot_lists_with_long_keys_equal_brute_force() -> None:
    """Long shared prefixes with branches at several depths: still exactly brute force."""
    stem = "x" * 150
    keys = [stem + tail for tail in ("", "a", "ab", "abc", "b", "ba", "bb")]
    keys += ["y" * 120 + str(n) for n in range(5)]
    entries = sorted((Entry(k, "t", len(k) % 7 + 1) for k in keys), key=lambda e: e.key)
    assert hot_lists(entries, threshold=2, depth=3) == brute_hot(entries, 2, 3)


def test_terms_are_read_by_key_id_from_one_string() -> None:
    """A snapshot's display forms stay one string and its line offsets (no list of a million
    strings at the edge); any term reads back whole, first, last and non-ASCII alike."""
    forms = ["São Paulo", "東京", "Xi'an", "N'Djamena", "a"]
    terms = Terms("\n".join(forms))
    assert len(terms) == len(forms)
    assert [terms[i] for i in range(len(forms))] == forms
    assert len(Terms("")) == 0
