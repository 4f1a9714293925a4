"""The snapshot: hot lists (checked against brute force), and build/parse on the wire."""

from __future__ import annotations

import gc
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

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
    assert data.hot_keys() == {"": ["paris", "porto"], "p": ["paris", "porto"]}
    assert (data.hot_threshold, data.depth) == (2, 2)


def test_build_cuts_hot_lists_to_depth() -> None:
    """Deeper lists (the core keeps 2 x depth) are cut to ``depth`` on the wire."""
    entries = entries_of({"a": 1, "b": 2, "c": 3})
    data = parse(build(entries, version=1, hot={"": ["c", "b", "a"]}, hot_threshold=1, depth=2))
    assert data.hot_keys() == {"": ["c", "b"]}


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
    assert data.hot_keys() == {}


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
    assert data.hot_keys() == hot


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
        pack({**_good_raw(), "trie": "text"}),
        pack({**_good_raw(), "weights": b"\x00" * 4}),  # one weight for two terms
        pack({**_good_raw(), "weights": b"\x00" * 15}),  # not whole integers
        pack({**_good_raw(), "terms": "A\nB"}),  # format 1's text
        pack({k: v for k, v in _good_raw().items() if k != "depth"}),
    ],
)
def test_parse_of_garbage_raises_protocol_error(blob: bytes) -> None:
    """Anything that is not a snapshot of this format is a ProtocolError."""
    with pytest.raises(ProtocolError):
        parse(blob)


def _raw3() -> dict[str, Any]:
    """A good snapshot of three terms ("a", "b", "é"), hot lists "" and "x", as its map."""
    entries = [Entry("a", "A", 1), Entry("b", "B", 2), Entry("e", "É", 3)]
    blob = build(entries, version=1, hot={"": ["e", "b"], "e": ["e"]}, hot_threshold=1, depth=2)
    raw = unpack(blob)
    assert isinstance(raw, dict)
    return raw


def _ids(*values: int) -> bytes:
    return b"".join(v.to_bytes(4, "little") for v in values)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"format": 3}, "unsupported snapshot format 3"),
        ({"terms": "A\nB\nÉÉ".encode()}, "term_ends do not end with the terms"),
        ({"terms": b"A\nB\xff\x89", "term_ends": _ids(1, 3, 5)}, "do not fall on the newlines"),
        ({"term_ends": _ids(3, 1, 6)}, "do not fall on the newlines in order"),
        ({"terms": b"A\nB\n\n", "term_ends": _ids(1, 3, 5)}, "a newline inside a display form"),
        ({"terms": b"A\nB\n\xff\x89"}, "terms are not UTF-8"),
        ({"term_ends": _ids(1, 3)}, "disagree in length"),
        ({"term_ends": "text"}, "term_ends must be bytes"),
        ({"hot_prefixes": ["", 7]}, "hot_prefixes must be a list of text"),
        ({"hot_prefixes": ["", ""]}, "hot_prefixes repeat a prefix"),
        ({"hot_ends": _ids(2)}, "hot_ends do not match"),
        ({"hot_ends": _ids(2, 2)}, "hot_ends do not match"),
        ({"hot_ends": _ids(1, 4)}, "hot_ends do not match"),
        ({"hot_ends": _ids(3, 2), "hot_ids": _ids(2, 1)}, "hot_ends go back"),
        ({"hot_ids": _ids(2, 1, 3)}, "hot_ids name a key the trie does not have"),
        ({"alphabet": b"ab"}, "alphabet must be text"),
    ],
)
def test_parse_refuses_parts_that_disagree_clearly(change: dict[str, Any], says: str) -> None:
    """Format 2's parts are checked against each other: a blob that parses serves every key,
    and one that does not says what is wrong."""
    with pytest.raises(ProtocolError, match=says):
        parse(pack({**_raw3(), **change}))


def test_format_2_wire_form_is_flat_little_endian_arrays() -> None:
    """Key ids, offsets and weights travel as little-endian bytes; display forms as UTF-8."""
    raw = _raw3()
    assert raw["format"] == FORMAT == 2
    assert raw["terms"] == "A\nB\nÉ".encode()
    assert raw["term_ends"] == _ids(1, 3, 6)
    assert raw["weights"] == _ids(1, 2, 3)  # they fit 32 bits
    assert raw["hot_prefixes"] == ["", "e"]
    assert raw["hot_ends"] == _ids(2, 3)
    assert raw["hot_ids"] == _ids(2, 1, 2)
    assert raw["alphabet"] == "be"
    data = parse(pack(raw))
    assert data.hot_keys() == {"": ["e", "b"], "e": ["e"]}
    assert [data.entry(i) for i in data.hot[""]] == [Entry("e", "É", 3), Entry("b", "B", 2)]
    assert "x" not in data.hot and data.hot.get("x") is None


@pytest.mark.parametrize("heavy", [2**32, 2**63 - 1, -1, -(2**63)])
def test_weights_beyond_32_bits_travel_as_64(heavy: int) -> None:
    """One weight out of 0..2³²−1 makes every weight int64; all come back exact."""
    entries = [Entry("a", "A", 0), Entry("b", "B", heavy), Entry("c", "C", 2**32 - 1)]
    blob = build(entries, version=1, hot={}, hot_threshold=9, depth=1)
    raw = unpack(blob)
    assert raw["weights"] == b"".join(e.weight.to_bytes(8, "little", signed=True) for e in entries)
    assert [parse(blob).get(e.key) for e in entries] == entries


def test_build_leaves_out_hot_keys_it_does_not_serve() -> None:
    """A hot list naming a key the entries lack loses that key (it is served by no one)."""
    data = parse(
        build([Entry("a", "A", 1)], version=1, hot={"": ["z", "a"]}, hot_threshold=0, depth=2)
    )
    assert data.hot_keys() == {"": ["a"]}


def test_parsed_trie_outlives_the_blob_and_the_snapshot() -> None:
    """The trie is read in place from its bytes and keeps them alive (marisa's ``map`` does
    not): a trie kept after everything else is dropped still reads right."""
    entries = entries_of({f"key {n}": n for n in range(500)})
    trie = parse(build(entries, version=1, hot={}, hot_threshold=9, depth=1)).trie
    gc.collect()
    junk = [bytes(range(256)) * 4 for _ in range(2000)]  # reuse any freed memory
    assert sorted(trie.keys("key 49")) == [
        "key 49",
        "key 490",
        "key 491",
        "key 492",
        "key 493",
        "key 494",
        "key 495",
        "key 496",
        "key 497",
        "key 498",
        "key 499",
    ]
    del junk


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


def test_a_format_1_snapshot_is_refused_for_its_fold() -> None:
    """Format 1 (the build before) had no ``fold``: its keys are version 1's, refused
    naming the core as the side to upgrade."""
    raw = {"format": 1, "version": 1, "trie": b"", "terms": "", "hot": {}, "depth": 1}
    with pytest.raises(ProtocolError, match="fold version 1, .* upgrade the core"):
        parse(pack(raw))


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


def test_terms_are_read_by_key_id_from_one_byte_string() -> None:
    """A snapshot's display forms stay one UTF-8 byte string and its offsets (no list of a
    million strings at the edge); any term reads back whole, first, last, empty and
    non-ASCII alike."""
    forms = ["São Paulo", "東京", "Xi'an", "", "N'Djamena", "a"]
    terms = Terms.of(forms)
    assert len(terms) == len(forms)
    assert [terms[i] for i in range(len(forms))] == forms == list(terms)
    assert len(Terms.of([])) == 0
    terms.check()


def test_terms_read_from_an_iterator_across_chunks_are_the_same() -> None:
    """Forms given one by one, over several of the chunks Terms.of holds at a time."""
    forms = [f"Town {n} é" if n % 3 else "" for n in range(2 * 4096 + 7)]
    terms = Terms.of(iter(forms))
    listed = Terms.of(forms)
    assert (terms.text, list(terms.ends)) == ("\n".join(forms).encode(), list(listed.ends))
    assert terms[4095] == forms[4095] and terms[4096] == forms[4096]
    terms.check()


@pytest.mark.parametrize("size", [(1 << 20) - 1, 1 << 20, 3 << 20])
def test_a_map_with_large_byte_strings_packs_as_msgpack_does(size: int) -> None:
    import msgpack  # type: ignore[import-untyped]

    fields = {"format": 2, "big": b"\x01" * size, "small": b"ab", "list": ["x", 1], "n": None}
    assert pack(fields) == msgpack.packb(fields, use_bin_type=True)
    assert unpack(pack(fields)) == fields
