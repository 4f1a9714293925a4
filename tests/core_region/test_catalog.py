"""The catalog: serving rules, versions, deltas, exact hot lists, and the core -> edge pipeline.

Every check compares with a brute-force ranking of the served entries, computed from the rows
the test applied (weight descending, then key ascending).
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import Phase, given, settings, strategies as st

from core_region.suggest.catalog import Catalog, Rules, TermRow
from core_region.suggest.stream import Stream
from edge_node.suggest.index import SuggestIndex
from shared import snapshot
from shared.folding import fold
from shared.protocol import Delta, Snapshot, TermChange, decode, encode
from shared.snapshot import Entry
from shared.text import MAX_KEY_CHARS

RULES = Rules(search_boost=3, min_searches=2)


def row(key: str, base: int = 0, searches: int = 0, blocked: bool = False) -> TermRow:
    return TermRow(key, key.upper(), base, searches, blocked)


def served(rows: dict[str, TermRow], rules: Rules = RULES) -> list[Entry]:
    """The entries ``rows`` serve, computed independently of the catalog, sorted by key."""
    result = []
    for r in rows.values():
        if r.blocked or (r.base_weight <= 0 and r.searches < rules.min_searches):
            continue
        result.append(Entry(r.key, r.term, r.base_weight + r.searches * rules.search_boost))
    return sorted(result, key=lambda e: e.key)


def brute_top(entries: Iterable[Entry], prefix: str, n: int) -> list[Entry]:
    matching = [e for e in entries if e.key.startswith(prefix)]
    return sorted(matching, key=lambda e: (-e.weight, e.key))[:n]


def brute_keys(entries: Iterable[Entry], prefix: str, n: int) -> list[str]:
    return [e.key for e in brute_top(entries, prefix, n)]


def installed(rows: Iterable[TermRow], *, threshold: int, depth: int) -> Catalog:
    """A catalog at version 1 with its hot lists installed, as the core starts."""
    catalog = Catalog(rows, version=1, rules=RULES, hot_threshold=threshold, depth=depth)
    catalog.install_hot(catalog.compute_hot(catalog.entries()), 1)
    return catalog


def snapshot_of(catalog: Catalog) -> tuple[dict[str, list[str]], bytes]:
    """The deep hot lists and the snapshot blob the core builds at the catalog's version."""
    hot = catalog.compute_hot(catalog.entries())
    blob = snapshot.build(
        catalog.entries(),
        version=catalog.version,
        hot=hot,
        hot_threshold=catalog.hot_threshold,
        depth=catalog.depth,
    )
    return hot, blob


# --- rules -----------------------------------------------------------------------------------


def test_row_with_base_weight_is_served_with_it() -> None:
    """A corpus term (base weight, no searches) is served at its base weight."""
    assert Rules().serve(TermRow("paris", "Paris", 50, 0, False)) == Entry("paris", "Paris", 50)


def test_blocked_row_is_never_served() -> None:
    """Blocking wins over any weight or search count."""
    assert Rules().serve(TermRow("paris", "Paris", 50, 9, True)) is None


def test_new_term_needs_min_searches() -> None:
    """A term with no base weight is served only once it reached ``min_searches``."""
    rules = Rules(search_boost=10, min_searches=3)
    assert rules.serve(TermRow("x", "X", 0, 2, False)) is None
    assert rules.serve(TermRow("x", "X", 0, 3, False)) == Entry("x", "X", 30)


def test_zero_min_searches_serves_unsearched_new_terms() -> None:
    """With ``min_searches=0`` a row with no weight and no search is served at weight 0."""
    assert Rules(min_searches=0).serve(TermRow("x", "X", 0, 0, False)) == Entry("x", "X", 0)


def test_each_search_adds_the_boost() -> None:
    """Served weight = base weight + searches x search_boost."""
    rules = Rules(search_boost=1000, min_searches=1)
    assert rules.serve(TermRow("x", "X", 7, 2, False)) == Entry("x", "X", 2007)


def test_non_positive_base_weight_counts_as_none() -> None:
    """A zero or negative base weight needs the searches a new term needs."""
    rules = Rules(search_boost=5, min_searches=1)
    assert rules.serve(TermRow("x", "X", -3, 0, False)) is None
    assert rules.serve(TermRow("x", "X", -3, 1, False)) == Entry("x", "X", 2)


# --- versions and deltas ------------------------------------------------------------------


def test_catalog_serves_only_what_rules_allow() -> None:
    """Construction keeps the served rows, sorted by key in entries()."""
    rows = [row("b", 5), row("a", 0, 1), row("c", 0, 2), row("d", 9, blocked=True)]
    catalog = Catalog(rows, version=4, rules=RULES)
    assert catalog.entries() == [Entry("b", "B", 5), Entry("c", "C", 6)]
    assert len(catalog) == 2
    assert catalog.get("a") is None
    assert catalog.get("c") == Entry("c", "C", 6)


@pytest.mark.parametrize("version", [3, 2, -1])
def test_apply_refuses_a_version_that_is_not_newer(version: int) -> None:
    """apply raises ValueError and changes nothing when the version does not advance."""
    catalog = installed([row("a", 1)], threshold=1, depth=1)
    catalog.apply([row("a", 2)], 3)
    with pytest.raises(ValueError, match="not newer"):
        catalog.apply([row("a", 9), row("z", 9)], version)
    assert catalog.version == 3
    assert catalog.entries() == [Entry("a", "A", 2)]


def test_take_delta_is_none_when_nothing_was_applied() -> None:
    """A fresh catalog, and one whose delta was just taken, have nothing to publish."""
    catalog = installed([row("a", 1)], threshold=1, depth=1)
    assert not catalog.has_pending
    assert catalog.take_delta() is None
    catalog.apply([row("a", 2)], 2)
    assert catalog.take_delta() is not None
    assert catalog.take_delta() is None


def test_take_delta_spans_every_version_applied_since_the_last_one() -> None:
    """One delta carries all changes from the last published version to the head."""
    catalog = installed([row("a", 1), row("b", 2)], threshold=5, depth=2)
    catalog.apply([row("a", 5)], 2)
    catalog.apply([row("c", 0, 2)], 3)
    catalog.apply([row("b", 2, blocked=True)], 7)
    delta = catalog.take_delta()
    assert delta == Delta(
        from_version=1,
        to_version=7,
        terms=[
            TermChange("a", "A", 5),
            TermChange("b", None, 0),
            TermChange("c", "C", 6),
        ],
        hot={},
    )
    assert catalog.published == 7


def test_take_delta_keeps_the_last_state_of_a_key() -> None:
    """A key changed twice before publishing appears once, in its final state."""
    catalog = installed([row("a", 1)], threshold=5, depth=2)
    catalog.apply([row("a", 5)], 2)
    catalog.apply([row("a", 8)], 3)
    delta = catalog.take_delta()
    assert delta is not None
    assert delta.terms == [TermChange("a", "A", 8)]


def test_unserved_row_changes_produce_an_empty_delta() -> None:
    """A row that stays unserved changes no term, but the version still moves on."""
    catalog = installed([row("a", 1)], threshold=5, depth=2)
    catalog.apply([row("new", 0, 1)], 2)  # one search, two needed
    assert catalog.take_delta() == Delta(1, 2, [], {})


def test_delta_carries_changed_hot_lists_only() -> None:
    """Only hot lists whose top ``depth`` keys changed are sent."""
    catalog = installed(
        [row("aa", 5), row("ab", 4), row("ac", 3), row("b", 1)], threshold=2, depth=1
    )
    catalog.apply([row("ac", 3, 1)], 2)  # 3 + 3 = 6: new top of "" and "a"
    delta = catalog.take_delta()
    assert delta is not None
    assert delta.hot == {"": ["ac"], "a": ["ac"]}
    catalog.apply([row("ab", 5)], 3)  # still below "ac": lists unchanged
    delta = catalog.take_delta()
    assert delta is not None
    assert delta.hot == {}
    assert delta.terms == [TermChange("ab", "AB", 5)]


def test_removing_the_top_key_promotes_the_next() -> None:
    """Blocking a hot list's first key sends the list without it."""
    catalog = installed(
        [row("aa", 5), row("ab", 4), row("ac", 3), row("b", 1)], threshold=2, depth=2
    )
    catalog.apply([row("aa", 5, blocked=True)], 2)
    delta = catalog.take_delta()
    assert delta is not None
    assert delta.hot == {"": ["ab", "ac"], "a": ["ab", "ac"]}


def test_changes_since_rebase_counts_term_changes() -> None:
    """Every applied row counts until hot lists are installed again."""
    catalog = installed([row("a", 1)], threshold=5, depth=2)
    catalog.apply([row("a", 2), row("b", 1)], 2)
    catalog.apply([row("a", 3)], 3)
    assert catalog.changes_since_rebase == 3
    catalog.install_hot(catalog.compute_hot(catalog.entries()), 3)
    assert catalog.changes_since_rebase == 0


# --- hypothesis: hot lists stay exact -------------------------------------------------------

keys = st.text(alphabet="abc", min_size=1, max_size=4)
rows = st.builds(
    row,
    keys,
    base=st.integers(min_value=0, max_value=6),
    searches=st.integers(min_value=0, max_value=3),
    blocked=st.sampled_from([False, False, False, True]),
)
batches = st.lists(rows, min_size=1, max_size=3)
thresholds = st.integers(min_value=1, max_value=3)
depths = st.integers(min_value=1, max_value=3)


def test_served_helper_agrees_with_rules() -> None:
    """The brute-force model of the rules matches Rules.serve on a few rows."""
    sample = [row("a", 1), row("b", 0, 1), row("c", 0, 2), row("d", 4, 3, True), row("e", 0, 5)]
    model = served({r.key: r for r in sample})
    assert model == [e for r in sample if (e := RULES.serve(r)) is not None]


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(rows, max_size=25), st.lists(batches, max_size=15), thresholds, depths)
def test_hot_lists_stay_exact_through_every_change(
    initial: list[TermRow], steps: list[list[TermRow]], threshold: int, depth: int
) -> None:
    """After each applied batch, every hot list an edge holds is the brute-force top."""
    model = {r.key: r for r in initial}
    catalog = installed(model.values(), threshold=threshold, depth=depth)
    edge_lists = {p: top[:depth] for p, top in catalog.compute_hot(catalog.entries()).items()}
    for version, batch in enumerate(steps, start=2):
        catalog.apply(batch, version)
        model.update((r.key, r) for r in batch)
        delta = catalog.take_delta()
        assert delta is not None
        assert (delta.from_version, delta.to_version) == (version - 1, version)
        edge_lists.update(delta.hot)
        entries = served(model)
        assert catalog.entries() == entries
        for prefix, top in edge_lists.items():
            assert top == brute_keys(entries, prefix, depth), prefix


def check_index(index: SuggestIndex, entries: list[Entry], depth: int) -> None:
    """index.query equals the brute-force ranking for many prefixes and every limit."""
    prefixes = {"", "d", "ab", "abcd", "ca", "cc", "aaaaa", "b a"}
    prefixes |= {e.key[:n] for e in entries for n in range(len(e.key) + 1)}
    for prefix in sorted(prefixes):
        own = [e for e in entries if e.key == prefix]
        for limit in range(1, depth + 1):
            ranked = brute_top([e for e in entries if e.key != prefix], prefix, limit)
            expected = (own + ranked)[:limit]  # the exact key first, then by weight
            found = [e for e in index.query(prefix, limit) if e.match == "prefix"]
            assert found == expected, (prefix, limit)
    for e in entries:
        assert index.get(e.key) == e


@settings(max_examples=150, deadline=None, database=None)
@given(
    st.lists(rows, max_size=25),
    st.lists(st.tuples(batches, st.booleans()), max_size=15),
    thresholds,
    depths,
)
def test_edge_index_answers_like_brute_force_through_the_pipeline(
    initial: list[TermRow], steps: list[tuple[list[TermRow], bool]], threshold: int, depth: int
) -> None:
    """Snapshot -> edge index -> deltas over the wire: every query equals brute force."""
    model = {r.key: r for r in initial}
    catalog = installed(model.values(), threshold=threshold, depth=depth)
    _, blob = snapshot_of(catalog)
    index = SuggestIndex(snapshot.parse(blob))
    check_index(index, served(model), depth)
    for version, (batch, publish) in enumerate(steps, start=2):
        catalog.apply(batch, version)
        model.update((r.key, r) for r in batch)
        if publish:
            delta = catalog.take_delta()
            assert delta is not None
            received = decode(encode(delta))  # over the wire, as the edge gets it
            assert isinstance(received, Delta)
            index.apply(received)
            assert index.version == version
            check_index(index, served(model), depth)
    delta = catalog.take_delta()
    if delta is not None:
        index.apply(delta)
    assert index.version == catalog.version
    check_index(index, served(model), depth)


def test_new_key_in_a_non_hot_prefix_is_found_through_the_overlay() -> None:
    """A key the snapshot lacks, under a prefix that is not hot, is ranked from the overlay."""
    catalog = installed(
        [row("aa", 5), row("ab", 4), row("ac", 3), row("ba", 1)], threshold=2, depth=2
    )
    index = SuggestIndex(snapshot.parse(snapshot_of(catalog)[1]))
    catalog.apply([row("bb", 0, 2), row("ab", 0)], 2)  # "ab" loses its base weight: removed
    delta = catalog.take_delta()
    assert delta is not None
    index.apply(delta)
    assert index.query("b", 2) == [Entry("bb", "BB", 6), Entry("ba", "BA", 1)]
    assert index.query("bb", 2) == [Entry("bb", "BB", 6)]
    assert index.query("a", 2) == [Entry("aa", "AA", 5), Entry("ac", "AC", 3)]
    assert index.query("ab", 2) == []


# --- compaction: install_hot with changes after its version -------------------------------------


def test_install_hot_replays_a_later_change() -> None:
    """Lists computed at v and installed after one more change are exact for the head."""
    catalog = installed([row("a", 10), row("b", 9), row("c", 8), row("d", 7)], threshold=2, depth=1)
    hot, _ = snapshot_of(catalog)  # built at version 1 ...
    catalog.apply([row("d", 100)], 2)  # ... while this change lands
    catalog.install_hot(hot, 1)
    delta = catalog.take_delta()
    assert delta is not None
    assert delta.hot == {"": ["d"]}


def test_install_hot_at_head_changes_nothing_pending() -> None:
    """Installing lists computed at the head leaves nothing to publish."""
    catalog = installed([row("a", 10), row("b", 9), row("c", 8)], threshold=1, depth=1)
    catalog.apply([row("c", 20)], 2)
    assert catalog.take_delta() is not None
    catalog.install_hot(snapshot_of(catalog)[0], 2)
    assert catalog.take_delta() is None


def test_install_hot_replays_several_later_changes_exactly() -> None:
    """Two keys changed after v (a new key, then a list member) still give the exact top."""
    rows = [row("a", 10), row("b", 9), row("c", 8), row("d", 7), row("e", 6)]
    catalog = installed(rows, threshold=2, depth=2)
    hot, _ = snapshot_of(catalog)  # "" -> [a, b, c, d] at version 1
    catalog.apply([row("x", 50)], 2)  # compared with the stale last key "d" (7)...
    catalog.apply([row("d", 100)], 3)  # ...which is now the heaviest
    catalog.install_hot(hot, 1)
    delta = catalog.take_delta()
    assert delta is not None
    assert delta.hot[""] == ["d", "x"]


def test_take_delta_after_install_hot_skips_prefixes_no_longer_hot() -> None:
    """A pending change under a prefix that stopped being hot publishes without error."""
    catalog = installed(
        [row("pa", 3), row("pb", 2), row("pc", 1), row("q", 1)], threshold=2, depth=1
    )
    catalog.apply([row("pc", 1, blocked=True)], 2)  # "p" now has 2 completions: not hot
    assert catalog.take_delta() is not None
    hot, _ = snapshot_of(catalog)  # the rebase starts at version 2 ...
    catalog.apply([row("pa", 5)], 3)  # ... a change under "p" lands (old lists: "p" dirty)
    catalog.install_hot(hot, 2)
    delta = catalog.take_delta()
    assert delta is not None
    assert delta.terms == [TermChange("pa", "PA", 5)]


def published_edge(
    catalog: Catalog, stream: Stream, steps: list[tuple[int, list[TermRow], bool]]
) -> None:
    """Apply ``steps`` (version, rows, publish?) to ``catalog``, appending deltas to ``stream``."""
    for version, batch, publish in steps:
        catalog.apply(batch, version)
        if publish:
            publish_into(catalog, stream)


def publish_into(catalog: Catalog, stream: Stream) -> None:
    delta = catalog.take_delta()
    if delta is not None:
        stream.append(delta.from_version, delta.to_version, encode(delta))


def edge_from(stream: Stream) -> SuggestIndex:
    """A new edge: the stream's snapshot and every delta after it, as the hub sends them."""
    frames = [decode(f) for f in stream.catch_up(-1)]
    first = frames[0]
    assert isinstance(first, Snapshot)
    index = SuggestIndex(snapshot.parse(first.data))
    for frame in frames[1:]:
        assert isinstance(frame, Delta)
        index.apply(frame)
    return index


def rebase(catalog: Catalog, stream: Stream, during: list[tuple[int, list[TermRow], bool]]) -> None:
    """The hub's rebase: publish, build at the head, let ``during`` land, install, re-base."""
    publish_into(catalog, stream)
    version = catalog.version
    hot, blob = snapshot_of(catalog)
    published_edge(catalog, stream, during)
    catalog.install_hot(hot, version)
    stream.rebase(version, encode(Snapshot(version, blob)))


def test_edges_get_exact_lists_after_a_rebase_with_published_changes() -> None:
    """A change published during the rebase and reverted afterwards leaves edges exact."""
    catalog = installed([row("a", 10), row("b", 9), row("c", 8)], threshold=2, depth=1)
    stream = Stream()
    rebase(catalog, stream, [])
    model = {r.key: r for r in [row("a", 10), row("b", 9), row("c", 8)]}
    rebase(catalog, stream, [(2, [row("b", 20)], True), (3, [row("b", 9)], False)])
    publish_into(catalog, stream)
    assert edge_from(stream).query("", 1) == brute_top(served(model), "", 1)


def test_edges_drop_lists_of_prefixes_that_stopped_being_hot() -> None:
    """A prefix that stops being hot at a rebase is still answered exactly afterwards."""
    initial = [row("pa", 3), row("pb", 2), row("pc", 1), row("q", 1)]
    catalog = installed(initial, threshold=2, depth=1)
    stream = Stream()
    rebase(catalog, stream, [])
    published_edge(catalog, stream, [(2, [row("pc", 1, blocked=True)], True)])
    rebase(catalog, stream, [(3, [row("pb", 10)], True)])
    published_edge(catalog, stream, [(4, [row("pa", 20)], True)])
    model = {r.key: r for r in [*initial, row("pc", 1, True), row("pb", 10), row("pa", 20)]}
    assert edge_from(stream).query("p", 1) == brute_top(served(model), "p", 1)


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.generate],  # no shrinking: fail fast while the bug is there
)
@given(
    st.lists(rows, max_size=20),
    st.lists(st.tuples(batches, st.booleans()), max_size=6),
    st.lists(st.tuples(batches, st.booleans()), max_size=6),
    st.lists(batches, max_size=4),
    thresholds,
    depths,
)
def test_edges_stay_exact_across_rebases_with_concurrent_changes(
    initial: list[TermRow],
    before: list[tuple[list[TermRow], bool]],
    during: list[tuple[list[TermRow], bool]],
    after: list[list[TermRow]],
    threshold: int,
    depth: int,
) -> None:
    """Changes before, during and after a rebase: a new edge and an old edge answer exactly."""
    model = {r.key: r for r in initial}
    catalog = installed(model.values(), threshold=threshold, depth=depth)
    stream = Stream()
    rebase(catalog, stream, [])
    old_edge = edge_from(stream)
    version = 1

    def numbered(steps: list[tuple[list[TermRow], bool]]) -> list[tuple[int, list[TermRow], bool]]:
        nonlocal version
        out = []
        for batch, publish in steps:
            version += 1
            model.update((r.key, r) for r in batch)
            out.append((version, batch, publish))
        return out

    published_edge(catalog, stream, numbered(before))
    rebase(catalog, stream, numbered(during))
    published_edge(catalog, stream, numbered([(b, True) for b in after]))
    publish_into(catalog, stream)
    for frame in stream.catch_up(old_edge.version):
        message = decode(frame)
        if isinstance(message, Snapshot):
            old_edge = SuggestIndex(snapshot.parse(message.data))
        else:
            assert isinstance(message, Delta)
            old_edge.apply(message)
    entries = served(model)
    check_index(edge_from(stream), entries, depth)
    check_index(old_edge, entries, depth)


# --- long keys sharing long prefixes (issue 9, finding 1) --------------------------------------


def long_rows(count: int, stem: str, weight: int = 1) -> list[TermRow]:
    return [row(f"{stem} {n:02d}", weight + n) for n in range(count)]


def test_stored_rows_the_door_refuses_are_not_served(caplog: pytest.LogCaptureFixture) -> None:
    """A database written before the key limit (80 keys of 1,767 characters) still loads: those
    rows are not served, the rest is, and the start-up logs how many were left out."""
    too_long = long_rows(80, fold("\ufdfa" * 98))
    not_text = [row("bad\x00key", 5), TermRow("fine", "Fi\u202ene", 5, 0, False)]
    catalog = installed([*too_long, *not_text, row("ok", 3)], threshold=64, depth=20)
    assert [e.key for e in catalog.entries()] == ["ok"]
    assert "82 stored terms are not served" in caplog.text
    catalog.apply([row(too_long[0].key, 99)], 2)  # a change to such a row serves nothing
    assert catalog.get(too_long[0].key) is None


def test_keys_at_the_limit_sharing_a_long_prefix_stay_exact_through_500_changes() -> None:
    """80 keys of MAX_KEY_CHARS characters share all but 3: every prefix of the shared part is hot.
    500 changes walk only those prefixes (bounded by the key limit) and stay exact."""
    stem = fold("\ufdfa" * 11)[: MAX_KEY_CHARS - 3]
    rows = long_rows(80, stem)
    model = {r.key: r for r in rows}
    catalog = installed(rows, threshold=64, depth=20)
    edge = {p: top[:20] for p, top in catalog.compute_hot(catalog.entries()).items()}
    assert len(edge) == MAX_KEY_CHARS - 1  # "" .. stem + " "
    for version in range(2, 502):
        changed = rows[version % 80]
        model[changed.key] = row(changed.key, version * 7 % 1000)
        catalog.apply([model[changed.key]], version)
        if version % 50 == 0:
            delta = catalog.take_delta()
            assert delta is not None
            edge.update(delta.hot)
    entries = served(model)
    assert all(top == brute_keys(entries, prefix, 20) for prefix, top in edge.items())


def test_install_hot_after_100_changes_to_long_keys_touches_only_hot_prefixes() -> None:
    """A rebase with 100 later changes to such keys rebuilds each hot prefix once (it used to
    materialise every prefix of every change: 340 MB for 100 changes of 1,800 characters)."""
    stem = fold("\ufdfa" * 11)[: MAX_KEY_CHARS - 3]
    rows = long_rows(80, stem)
    catalog = installed(rows, threshold=64, depth=20)
    hot, _ = snapshot_of(catalog)
    for version in range(2, 102):
        catalog.apply([row(rows[version % 80].key, 5000 + version)], version)
    catalog.install_hot(hot, 1)
    delta = catalog.take_delta()
    assert delta is not None
    model = {r.key: r for r in rows}
    model.update({rows[v % 80].key: row(rows[v % 80].key, 5000 + v) for v in range(2, 102)})
    entries = served(model)
    assert set(delta.hot) == set(hot)
    assert all(top == brute_keys(entries, p, 20) for p, top in delta.hot.items())


# --- other names -------------------------------------------------------------------------------


def test_a_changed_term_carries_all_its_names_and_a_names_change_is_a_change() -> None:
    catalog = Catalog([row("mumbai", 9)], version=1, rules=RULES)
    catalog.apply([TermRow("mumbai", "Mumbai", 9, 0, False, 0, ("Bombay",))], 2)
    delta = catalog.take_delta()
    assert delta is not None
    assert delta.terms == [TermChange("mumbai", "Mumbai", 9, ["Bombay"])]
    catalog.apply([TermRow("mumbai", "Mumbai", 9, 0, False, 0, ("Bombay",))], 3)
    assert catalog.take_delta() == Delta(2, 3, [], {})  # nothing changed
    catalog.apply([TermRow("mumbai", "Mumbai", 9, 0, True, 0, ("Bombay",))], 4)
    delta = catalog.take_delta()
    assert delta is not None and delta.terms == [TermChange("mumbai", None, 0)]
    assert catalog.names() == {}


def test_names_go_from_rows_through_a_snapshot_to_an_edge_and_back_to_a_core() -> None:
    """A catalog made from the snapshot (as every core node loads it) holds the names of the
    one that built it; an edge serves them; a delta that changes no names sends none."""
    rows = [
        TermRow("mumbai", "Mumbai", 9, 0, False, 0, ("Bombay",)),
        TermRow("munich", "Munich", 5, 0, False, 0, ("München", "Bombay")),
        row("pune", 3),
    ]
    catalog = Catalog(rows, version=1, rules=RULES)
    entries = catalog.entries()
    blob = snapshot.build(
        entries, version=1, hot={}, hot_threshold=64, depth=5, names=catalog.names()
    )
    data = snapshot.parse(blob)
    assert data.names is not None
    names = {data.trie.restore_key(k): ns for k, ns in data.names.by_term().items()}
    loaded = Catalog.of_entries(entries, version=1, rules=RULES, names=names)
    assert loaded.names() == catalog.names()
    edge = SuggestIndex(data)
    assert [(e.term, e.match) for e in edge.query("bombay", 3)] == [("Mumbai", "alias")]
    loaded.apply([row("pune", 4)], 2)
    delta = loaded.take_delta()
    assert delta is not None
    wire = decode(encode(delta))
    assert isinstance(wire, Delta) and wire.terms == [TermChange("pune", "PUNE", 4)]
    assert b"names" not in encode(delta)
