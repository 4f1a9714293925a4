"""The core's pieces for a million terms, checked on small inputs against the plain ones:
columns of entries (``Lines``, ``Entries``), a catalog on a base snapshot and its overlay,
the corpus read once, the bulk seed on both engines, and the first base made from the seed."""

from __future__ import annotations

import gzip
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from core_region.memory import LARGE, release_memory, tune_malloc
from core_region.store import Store
from core_region.suggest import corpus
from core_region.suggest.catalog import JOINED, Catalog, Entries, Lines, Rules, TermRow
from shared import snapshot
from shared.snapshot import Entry

RULES = Rules(search_boost=3, min_searches=2)


# --- Lines and Entries ------------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, JOINED - 1, JOINED, JOINED + 1, 2 * JOINED + 5])
def test_lines_give_back_every_string_across_texts(count: int) -> None:
    """Strings (some empty) come back by index, negative index and iteration, at every
    boundary between the texts they are kept in."""
    strings = [f"s{i}" if i % 7 else "" for i in range(count)]
    lines = Lines.of(strings)
    assert len(lines) == count
    assert list(lines) == strings
    assert [lines[i] for i in range(count)] == strings
    if count:
        assert lines[-1] == strings[-1]
    with pytest.raises(IndexError):
        lines[count]
    assert list(lines[1:4]) == strings[1:4]
    assert list(Lines.of_list(strings)) == strings
    assert [Lines.of_list(strings)[i] for i in range(count)] == strings


@pytest.mark.parametrize("count", [0, 1, JOINED, JOINED + 1, 2 * JOINED + 5])
def test_lines_made_in_parts_are_the_lines_of_the_whole(count: int) -> None:
    """Parts cut at multiples of JOINED, joined, give every string back by index."""
    strings = [f"s{i}" for i in range(count)]
    cuts = list(range(0, count, JOINED)) + [count]
    lines = Lines.concat(Lines.of_list(strings[a:b]) for a, b in itertools.pairwise(cuts))
    assert list(lines) == strings
    assert [lines[i] for i in range(count)] == strings


def test_lines_in_parts_refuse_a_part_not_whole_texts() -> None:
    """A part before the last that ends inside a text would shift every later string."""
    with pytest.raises(ValueError, match="whole number"):
        Lines.concat([Lines.of_list(["a"]), Lines.of_list(["b"])])


def test_lines_refuse_a_new_line() -> None:
    """A string holding a new line would shift every later one: refused."""
    with pytest.raises(ValueError, match="new line"):
        Lines.of(["a", "b\nc"])


def test_entries_are_columns_of_entries() -> None:
    """Entries read back as the entries they were made of; sorted() orders them by key."""
    entries = [Entry("b", "B", 2), Entry("a", "A", 2**60), Entry("é", "É", 1)]
    columns = Entries.of(entries)
    assert list(columns) == entries
    assert columns[1] == entries[1]
    assert list(columns.sorted()) == sorted(entries, key=lambda e: e.key)
    assert list(columns[1:]) == entries[1:]


# --- a catalog on a base snapshot -------------------------------------------------------------

keys = st.text(alphabet="abc", min_size=1, max_size=4)
rows = st.builds(
    lambda key, base, searches, blocked: TermRow(key, key.upper(), base, searches, blocked),
    keys,
    st.integers(min_value=0, max_value=6),
    st.integers(min_value=0, max_value=3),
    st.sampled_from([False, False, True]),
)


def based(catalog: Catalog) -> Catalog:
    """``catalog`` made the base of a new one, as a node that loads its snapshot holds it."""
    hot = catalog.compute_hot(catalog.columns())
    blob = snapshot.build(
        catalog.columns(),
        version=catalog.version,
        hot=hot,
        hot_threshold=catalog.hot_threshold,
        depth=catalog.depth,
    )
    return Catalog.of_snapshot(snapshot.parse(blob), rules=RULES)


@settings(max_examples=100, deadline=None, database=None)
@given(
    st.lists(rows, max_size=20),
    st.lists(st.lists(rows, min_size=1, max_size=3), max_size=10),
    st.integers(min_value=1, max_value=3),
    st.integers(min_value=1, max_value=3),
)
def test_a_catalog_on_a_snapshot_publishes_what_one_of_its_entries_does(
    initial: list[TermRow], steps: list[list[TermRow]], threshold: int, depth: int
) -> None:
    """The same changes make the same deltas and entries whether the catalog holds its
    entries itself or on a base snapshot and an overlay (compacted half-way)."""
    plain = Catalog(initial, version=1, rules=RULES, hot_threshold=threshold, depth=depth)
    plain.install_hot(plain.compute_hot(plain.entries()), 1)
    compact = based(plain)
    for version, batch in enumerate(steps, start=2):
        plain.apply(batch, version)
        compact.apply(batch, version)
        assert plain.take_delta() == compact.take_delta()
        assert compact.entries() == plain.entries()
        assert len(compact) == len(plain)
        for row in batch:
            assert compact.get(row.key) == plain.get(row.key)
        if version == 5:  # a compaction: both adopt the snapshot at this version
            blob = snapshot.parse(
                snapshot.build(
                    plain.columns(), version=version, hot={}, hot_threshold=threshold, depth=depth
                )
            )
            hot = plain.compute_hot(plain.columns())
            plain.install_hot(hot, version)
            compact.adopt(blob, hot)
            assert plain.take_delta() == compact.take_delta()


def test_adopt_keeps_changes_after_the_snapshot_in_the_overlay() -> None:
    """A change applied after the snapshot's version stays served over the new base."""
    catalog = Catalog(
        [TermRow("a", "A", 5, 0, False), TermRow("b", "B", 4, 0, False)],
        version=1,
        rules=RULES,
        hot_threshold=1,
        depth=1,
    )
    blob = snapshot.build(catalog.columns(), version=1, hot={}, hot_threshold=1, depth=1)
    catalog.apply([TermRow("b", "B", 0, 0, True), TermRow("c", "C", 9, 0, False)], 2)
    catalog.adopt(snapshot.parse(blob))
    assert catalog.entries() == [Entry("a", "A", 5), Entry("c", "C", 9)]
    assert catalog.get("b") is None and len(catalog) == 2
    assert catalog.changes_since_rebase == 2


def test_adopt_refuses_a_snapshot_newer_than_the_catalog() -> None:
    catalog = Catalog([], version=1, rules=RULES)
    blob = snapshot.build([], version=2, hot={}, hot_threshold=1, depth=1)
    with pytest.raises(ValueError, match="newer"):
        catalog.adopt(snapshot.parse(blob))


def test_columns_leave_out_the_keys_asked() -> None:
    """Changed entries a snapshot cannot carry are left out of its columns."""
    catalog = based(Catalog([TermRow("a", "A", 5, 0, False)], version=1, rules=RULES))
    catalog.apply([TermRow("b", "B", 2**70, 0, False), TermRow("c", "C", 1, 0, False)], 2)
    assert [e.key for e in catalog.changed()] == ["b", "c"]
    assert [e.key for e in catalog.columns(without={"b"})] == ["a", "c"]


def test_columns_build_the_snapshot_and_hot_lists_entries_do() -> None:
    """shared.snapshot reads Entries a column at a time: the same lists and bytes."""
    entries = [Entry(f"k{n % 97:02d}{n}", f"Form {n} ü", (n * 7919) % 50 + 1) for n in range(3000)]
    entries.sort(key=lambda e: e.key)
    columns = Entries.of(entries, {"k000": ("Other",)})
    hot = snapshot.hot_lists(entries, threshold=8, depth=4)
    assert snapshot.hot_lists(columns, threshold=8, depth=4) == hot
    made = {
        "version": 3,
        "hot": hot,
        "hot_threshold": 8,
        "depth": 2,
        "names": {"k000": ("Other",)},
    }
    assert snapshot.build(columns, **made) == snapshot.build(entries, **made)  # type: ignore[arg-type]


# --- the corpus, read once --------------------------------------------------------------------


def test_columns_take_the_corpus_check_kept(tmp_path: Path) -> None:
    """check() keeps the parsed corpus for the next columns() of the same file, once."""
    path = tmp_path / "c.tsv.gz"
    path.write_bytes(gzip.compress("Zurich\t5\nLyon\t9\nZürich\t7\n".encode()))
    corpus.check(path)
    kept = corpus._checked
    assert kept is not None
    columns, corpus_id = corpus.columns(path)
    assert columns is kept[1] and corpus._checked is None
    assert list(columns) == [Entry("lyon", "Lyon", 9), Entry("zurich", "Zürich", 7)]
    assert corpus_id == corpus.load(path).corpus_id
    again, _ = corpus.columns(path)  # read anew
    assert again is not columns and list(again) == list(columns)


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "c.tsv"
    path.write_text("Lyon\t9\n")
    corpus.check(path)
    path.write_text("Lyon\t9\nParis\t10\n")
    columns, _ = corpus.columns(path)
    assert [e.key for e in columns] == ["lyon", "paris"]


def test_releasing_memory_is_harmless() -> None:
    """Below LARGE nothing happens; above it glibc is called (or nothing, without glibc)."""
    for terms in (0, LARGE):
        tune_malloc(terms)
        release_memory(terms)


# --- the bulk seed and the first base --------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "postgres":
        store = await Store.open(request.getfixturevalue("postgres_url"))
    else:
        store = await Store.open(tmp_path / "lightcone.db")
    try:
        yield store
    finally:
        await store.close()


async def test_seed_loads_many_rows_and_says_whether_they_are_all(store: Store) -> None:
    """Rows in several chunks land; a second seed conflicts and updates, and is not alone."""
    rows = [(f"k{i:05d}", f"K{i}", i + 1) for i in range(25_000)]
    first = await store.seed(iter(rows), "corpus-1")
    assert first.only
    second = await store.seed([("k00001", "K one", 7)], "corpus-1")
    assert not second.only and second.version == first.version + 1
    terms = {r.key: r for r in await store.terms()}
    assert len(terms) == 25_000
    assert (terms["k00001"].term, terms["k00001"].base_weight) == ("K one", 7)
    assert terms["k24999"].base_weight == 25_000


async def test_first_base_reads_rows_only_when_asked(store: Store) -> None:
    """The builder gets the head and a reader; one that does not read still stores its base."""
    done = await store.seed([("a", "A", 1)], "c")
    calls: list[int] = []

    async def build(version: int, read: object) -> bytes:
        calls.append(version)
        return b"made"

    assert await store.first_base("k", build) == (done.version, b"made")
    assert await store.first_base("k", build) == (done.version, b"made")  # found, not made
    assert calls == [done.version]

    async def reading(version: int, read: object) -> bytes:
        assert callable(read)
        found = await read()
        return ",".join(sorted(r.key for r in found)).encode()

    assert await store.first_base("other", reading) == (done.version, b"a")
