"""Typo matching on prefixes: the walk against a brute-force reference, and the index's
ranking classes (exact key, prefix, one typo, two typos)."""

from __future__ import annotations

import heapq
import math

import pytest
from hypothesis import given, settings, strategies as st

from edge_node.suggest import index as index_module
from edge_node.suggest.index import SuggestIndex
from edge_node.suggest.typos import LETTERS, TypoMatch, allowed, odds, swaps, within
from shared import snapshot
from shared.protocol import Delta, TermChange
from shared.snapshot import Entry


def osa(a: str, b: str) -> int:
    """Optimal string alignment distance, the textbook table."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(
                d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])
            )
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def reference(keys: set[str], query: str, typos: int, head: int = 0) -> dict[str, int]:
    """Each key's typos: the least distance of any of its prefixes, if within ``typos``."""
    found = {}
    for key in keys:
        if key[:head] != query[:head]:
            continue
        d = min(osa(key[head:i], query[head:]) for i in range(head, len(key) + 1))
        if d <= typos:
            found[key] = d
    return found


def walked(keys: set[str], query: str, typos: int, head: int = 0) -> dict[str, int]:
    """Each key's typos as :func:`within` finds them (the least over its kept prefixes)."""

    def children(prefix: str) -> str:
        n = len(prefix)
        return "".join(sorted({k[n] for k in keys if k.startswith(prefix) and len(k) > n}))

    def has_prefix(prefix: str) -> bool:
        return any(k.startswith(prefix) for k in keys)

    walk = within(query, typos, children, has_prefix, max_nodes=10**6, head=head)
    assert not walk.capped
    found = {}
    for key in keys:
        ds = [d for p, d in walk.prefixes.items() if key.startswith(p)]
        if ds:
            found[key] = min(ds)
    return found


def test_allowance_grows_with_the_folded_query() -> None:
    """No typo under 4 characters, one from 4, two from 8."""
    assert [allowed("x" * n) for n in (0, 3, 4, 7, 8, 20)] == [0, 0, 1, 1, 2, 2]


def test_each_kind_of_edit_is_one_typo() -> None:
    """Substitution, insertion, deletion and adjacent transposition each cost one."""
    keys = {"sydney", "paris", "london", "berlin"}
    assert walked(keys, "sydny", 1) == {"sydney": 1}  # deletion
    assert walked(keys, "parris", 1) == {"paris": 1}  # insertion
    assert walked(keys, "lindon", 1) == {"london": 1}  # substitution
    assert walked(keys, "berlni", 1) == {"berlin": 1}  # transposition
    assert walked(keys, "bewlni", 1) == {}
    assert walked(keys, "bewlni", 2) == {"berlin": 2}


def test_a_typo_match_is_on_some_prefix_of_the_key() -> None:
    """The query need not reach the end of the key: a prefix within the distance matches."""
    keys = {"amsterdam", "amstelveen"}
    assert walked(keys, "amsterd", 1) == {"amsterdam": 0}
    assert walked(keys, "amsteld", 1) == {"amsterdam": 1, "amstelveen": 1}
    assert walked(keys, "amstrda", 1) == {"amsterdam": 1}


def test_the_head_is_read_as_typed() -> None:
    """With ``head=1`` a typo in the first character does not match."""
    keys = {"sydney", "bydney"}
    assert walked(keys, "sydnex", 2) == {"sydney": 1, "bydney": 2}
    assert walked(keys, "sydnex", 2, head=1) == {"sydney": 1}


words = st.text(alphabet="abcd ", min_size=1, max_size=7)


@settings(max_examples=300, deadline=None, database=None)
@given(st.sets(words, min_size=1, max_size=12), words, st.integers(1, 2), st.integers(0, 1))
def test_walk_agrees_with_the_reference(keys: set[str], query: str, typos: int, head: int) -> None:
    """Every key within the allowance is found, with its least distance, and no other."""
    assert walked(keys, query, typos, head) == reference(keys, query, typos, head)


def test_the_node_cap_stops_the_walk_and_says_so() -> None:
    """A capped walk returns what it found so far and reports the cap."""
    keys = {c + d for c in "abcdefgh" for d in "abcdefgh"}

    def children(prefix: str) -> str:
        return "abcdefgh" if len(prefix) < 2 else ""

    walk = within("abab", 1, children, lambda p: len(p) <= 2, max_nodes=5)
    assert walk.capped
    assert len(keys) == 64


# --- the index: classes and ranking ------------------------------------------------------------

BASE = [
    Entry("sydney", "Sydney", 100),
    Entry("sydney mines", "Sydney Mines", 5),
    Entry("sydenham", "Sydenham", 30),
    Entry("syd", "Syd", 1),
    Entry("sidney", "Sidney", 50),
    Entry("paris", "Paris", 90),
    Entry("pairs", "Pairs", 2),
    Entry("parma", "Parma", 40),
    Entry("san francisco", "San Francisco", 80),
]


def index_of(entries: list[Entry], hot_threshold: int = 3) -> SuggestIndex:
    ordered = sorted(entries, key=lambda e: e.key)
    hot = snapshot.hot_lists(ordered, threshold=hot_threshold, depth=5)
    blob = snapshot.build(entries, version=1, hot=hot, hot_threshold=hot_threshold, depth=5)
    return SuggestIndex(snapshot.parse(blob))


def how(entries: list[Entry]) -> list[tuple[str, str, int]]:
    return [(e.key, e.match, e.typos) for e in entries]


def test_exact_key_comes_first_then_prefix_by_weight() -> None:
    """The key equal to the query outranks heavier completions of it."""
    index = index_of(BASE)
    assert [e.key for e in index.query("syd", 3)] == ["syd", "sydney", "sydenham"]
    assert [e.key for e in index.query("syd", 1)] == ["syd"]


def test_typo_matches_fill_what_prefix_matches_leave() -> None:
    """Prefix matches first by weight; then one-typo matches by weight; each entry once."""
    index = index_of(BASE)
    assert how(index.query("pairs", 3)) == [
        ("pairs", "prefix", 0),
        ("paris", "typo", 1),
    ]
    assert how(index.query("sydny", 10)) == [
        ("sydney", "typo", 1),
        ("sydney mines", "typo", 1),  # "sidney" is two typos away, and 5 characters allow one
    ]
    assert how(index.query("sydney", 2)) == [("sydney", "prefix", 0), ("sydney mines", "prefix", 0)]


def test_short_queries_get_no_typo_matches() -> None:
    """Under four folded characters only prefixes match."""
    assert index_of(BASE).query("sud", 5) == []


def test_two_typos_from_eight_characters_rank_after_one() -> None:
    """A two-typo match ranks after every one-typo match, whatever its weight."""
    entries = [
        Entry("san francisco", "San Francisco", 10),
        Entry("san franciscx", "Heavy", 1000),
    ]
    index = index_of(entries)
    found = index.query("san fransisco", 5)
    assert how(found) == [("san francisco", "typo", 1), ("san franciscx", "typo", 2)]
    assert isinstance(found[0], TypoMatch)
    assert (found[0].term, found[0].weight) == ("San Francisco", 10)


def test_typo_matches_see_the_overlay() -> None:
    """A term added by a delta matches with a typo; a removed one no longer does."""
    index = index_of(BASE)
    index.apply(
        Delta(
            1,
            2,
            [TermChange("brisbane", "Brisbane", 60), TermChange("sidney", None, 0)],
        )
    )
    assert how(index.query("brisbame", 3)) == [("brisbane", "typo", 1)]
    assert [e.key for e in index.query("sidney", 10)] == ["sydney", "sydney mines"]


def test_a_slip_that_guesses_a_letter_counts_25_times_less() -> None:
    """Five slips, each as likely at a keystroke; a wrong or extra key is one of 25 letters."""
    guess = 1 / LETTERS
    assert odds("sidney", "sydney") == pytest.approx(guess)  # a wrong key
    assert odds("sydfney", "sydney") == pytest.approx(guess)  # an extra key
    assert odds("syddney", "sydney") == pytest.approx(1 + guess)  # pressed twice, or an extra d
    assert odds("sdney", "sydney") == pytest.approx(1)  # a key left out
    assert odds("sdyney", "sydney") == pytest.approx(1)  # two neighbours swapped
    assert odds("sydnye", "sydney") == pytest.approx(1 + guess)  # swapped, or an extra y
    assert odds("sydnex", "sydney") == pytest.approx(2 * guess)  # a wrong last key, or an extra
    assert odds("sydn", "sydney") == 0  # a prefix: no typo
    assert odds("abcd", "sydney") == 0  # no one slip makes it


def slipped(typed: str, alphabet: str) -> dict[str, float]:
    """Every string one slip makes of ``typed``, with its odds, by listing the slips forward
    (the model of :func:`odds`, written the other way round)."""
    out: dict[str, float] = {}

    def add(made: str, weight: float) -> None:
        if not typed.startswith(made):
            out[made] = out.get(made, 0.0) + weight

    for i in range(len(typed)):
        for c in alphabet:
            if c != typed[i]:
                add(typed[:i] + c + typed[i + 1 :], 1 / LETTERS)  # a wrong key
        add(typed[:i] + typed[i + 1 :], 1.0)  # left out
        if i + 1 < len(typed) and typed[i] != typed[i + 1]:
            add(typed[:i] + typed[i + 1] + typed[i] + typed[i + 2 :], 1.0)  # swapped
    for i in range(len(typed) + 1):
        for c in alphabet:
            twice = i > 0 and typed[i - 1] == c
            add(typed[:i] + c + typed[i:], 1.0 if twice else 1 / LETTERS)  # extra / twice
    return out


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(alphabet="abc", min_size=1, max_size=6), st.text(alphabet="abc", max_size=7))
def test_odds_agree_with_the_slips_listed_forward(query: str, key: str) -> None:
    n = len(query)
    expected = sum(
        slipped(key[:m], "abc").get(query, 0.0) for m in (n - 1, n, n + 1) if 0 < m <= len(key)
    )
    assert odds(query, key) == pytest.approx(0.0 if key.startswith(query) else expected)
    assert odds(query, key) == odds(query, key[: n + 1])  # the index computes it once a head


def test_one_typo_ranks_by_weight_times_the_odds_of_the_slip() -> None:
    """A lighter key one swap away outranks a key one wrong key away unless that one is more
    than 25 times heavier; a wrong last key is a wrong key like any other."""
    swap_wins = index_of([Entry("london", "London", 10), Entry("lodron", "Lodron", 100)])
    assert how(swap_wins.query("lodnon", 2)) == [("london", "typo", 1), ("lodron", "typo", 1)]
    heavy = index_of([Entry("london", "London", 10), Entry("lodron", "Lodron", 1000)])
    assert how(heavy.query("lodnon", 2)) == [("lodron", "typo", 1), ("london", "typo", 1)]
    # parix: Paris by a wrong last key or an extra one (2/25), Panix by a wrong key (1/25).
    last = index_of([Entry("paris", "Paris", 10), Entry("panix", "Panix", 100)])
    assert [e.key for e in last.query("parix", 2)] == ["panix", "paris"]
    close = index_of([Entry("paris", "Paris", 10), Entry("panix", "Panix", 15)])
    assert [e.key for e in close.query("parix", 2)] == ["paris", "panix"]


def test_a_swap_below_a_shorter_match_counts() -> None:
    """``badn`` is one typo from ``ban`` (an extra d, a guess) and from ``band`` (a swap): the
    swap counts, though the walk keeps only the shorter prefix."""
    assert swaps("badn") == ["abdn", "bdan", "band"]
    assert swaps("aab") == ["aba"]
    index = index_of([Entry("bangkok", "Bangkok", 100), Entry("bandung", "Bandung", 50)])
    assert how(index.query("badn", 2)) == [("bandung", "typo", 1), ("bangkok", "typo", 1)]


def test_a_capped_walk_is_counted(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A walk stopped by the node cap still answers and counts on the index."""
    monkeypatch.setattr(index_module, "TYPO_MAX_NODES", 2)
    index = index_of(BASE)
    index.query("sydny", 5)
    assert index.typo_walks_capped >= 1


def test_a_query_with_prefix_matches_walks_on_the_smaller_budget(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Typo matches that only fill an answer share TYPO_PAD_NODES; a query that matches no
    prefix gets TYPO_MAX_NODES for its one-typo and two-typo walks together."""
    monkeypatch.setattr(index_module, "TYPO_PAD_NODES", 2)
    index = index_of(BASE)
    index.query("sydny", 5)  # no key starts with it: the full budget
    assert index.typo_walks_capped == 0
    index.query("sydne", 5)  # sydney matches as a prefix: typo matches only fill
    assert index.typo_walks_capped == 1


def test_a_character_outside_the_hot_lists_is_walked_when_the_query_has_it() -> None:
    """Hot prefixes are probed over the characters of the hot lists and of the query."""
    entries = [Entry(f"a{i:02}", f"A{i}", 100 + i) for i in range(10)]
    entries.append(Entry("жаба", "Жаба", 1))
    index = index_of(entries)
    assert "ж" not in index._alphabet
    assert how(index.query("жабо", 3)) == [("жаба", "typo", 1)]


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.text(alphabet="ab", min_size=2, max_size=5),
    st.lists(
        st.tuples(st.text(alphabet="abc", min_size=1, max_size=6), st.integers(0, 10**6)),
        max_size=30,
    ),
    st.integers(1, 6),
)
def test_scoring_heaviest_first_stops_without_changing_the_best(
    query: str, rows: list[tuple[str, int]], need: int
) -> None:
    """``_by_odds`` stops at the first key no odds can lift: its best ``need`` are those of
    scoring every key."""
    entries = [Entry(k, k, w) for k, w in dict(rows).items()]
    every = [
        (-math.log(o) - math.log1p(e.weight), e.key) for e in entries if (o := odds(query, e.key))
    ]
    scored = SuggestIndex._by_odds(query, entries, need)
    assert heapq.nsmallest(need, [(s, k) for s, k, _ in scored]) == heapq.nsmallest(need, every)
