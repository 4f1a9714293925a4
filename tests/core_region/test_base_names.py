"""Other names survive every base a core makes or loads: the catalog a core rebuilds from a
stored base (its first, or a compaction's) holds exactly the names of the catalog that built
it, on both engines."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core_region.node import CoreNode
from core_region.settings import CoreSettings
from core_region.suggest import corpus
from core_region.suggest.catalog import Catalog, Rules, TermRow
from shared import snapshot
from shared.protocol import Snapshot, decode
from tests.helpers.core import running_core, suggest_of

COMPACT_AFTER = 3
CORPUS = "Mumbai\t9\tBombay\nMunich\t5\tMünchen\tMonaco di Baviera\nPune\t3\nLyon\t4\n"
NAMES = {"mumbai": ("Bombay",), "munich": ("München", "Monaco di Baviera")}


def test_a_catalog_made_from_its_compaction_holds_its_names() -> None:
    """Names changed, added and dropped after a base go into the next one (adopt), and a
    catalog made from that snapshot (as a node that loads it) has the same names."""
    rows = [
        TermRow("mumbai", "Mumbai", 9, 0, False, 0, ("Bombay",)),
        TermRow("pune", "Pune", 3, 0, False),
    ]
    catalog = Catalog(rows, version=1, rules=Rules())
    first = snapshot.build(
        catalog.columns(), version=1, hot={}, hot_threshold=1, depth=2, names=catalog.names()
    )
    catalog.adopt(snapshot.parse(first))
    assert catalog.names() == {"mumbai": ("Bombay",)}
    assert Catalog.of_snapshot(snapshot.parse(first), rules=Rules()).names() == catalog.names()
    catalog.apply(
        [
            TermRow("pune", "Pune", 3, 0, False, 0, ("Poona",)),
            TermRow("mumbai", "Mumbai", 9, 0, True, 0, ("Bombay",)),  # taken down
        ],
        2,
    )
    assert catalog.names() == {"pune": ("Poona",)}
    columns = catalog.columns()
    second = snapshot.build(
        columns, version=2, hot={}, hot_threshold=1, depth=2, names=columns.names
    )
    catalog.adopt(snapshot.parse(second))
    assert catalog.names() == {"pune": ("Poona",)}
    loaded = Catalog.of_snapshot(snapshot.parse(second), rules=Rules())
    assert loaded.names() == catalog.names()
    assert loaded.entries() == catalog.entries()


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest) -> str:
    """The store: empty for SQLite in the node's data folder."""
    return str(request.getfixturevalue("postgres_url")) if request.param == "postgres" else ""


@contextlib.asynccontextmanager
async def core(location: str, data_dir: Path, path: Path) -> AsyncIterator[CoreNode]:
    settings = CoreSettings(
        data_dir=data_dir,
        store=location,
        corpus=path,
        publish_delay_ms=0,
        compact_after=COMPACT_AFTER,
        min_sources=0,
    )
    async with running_core(settings) as node:
        yield node


def served_names(node: CoreNode) -> dict[str, tuple[str, ...]]:
    """The names in the node's catalog, and in the base snapshot it serves (the same)."""
    feature = suggest_of(node)
    base = decode(feature.stream.catch_up(-1)[0])
    assert isinstance(base, Snapshot)
    data = snapshot.parse(base.data)
    in_base = {} if data.names is None else data.names.by_term()
    assert {data.trie.restore_key(i): ns for i, ns in in_base.items()} == feature.catalog.names()
    return feature.catalog.names()


async def test_a_core_that_loads_a_stored_base_keeps_the_other_names(
    location: str, tmp_path: Path
) -> None:
    path, data = tmp_path / "corpus.tsv", tmp_path / "data"
    path.write_text(CORPUS)
    data.mkdir()
    async with core(location, data, path) as first:
        assert served_names(first) == NAMES  # the first base, made beside the seed
    async with core(location, data, path) as again:
        assert served_names(again) == NAMES  # loaded from the store
        feature = suggest_of(again)
        await feature.upsert_term("pune", "Pune", 3, ("Poona",))
        await feature.upsert_term("lyon", "Lyon", 4, ("Lugdunum",))
        await feature.upsert_term("mumbai", "Mumbai", 9, ())
        base = feature.stream.base_version
        await again.publish()
        assert feature.stream.base_version != base  # compacted
        changed = {
            "munich": NAMES["munich"],
            "pune": ("Poona",),
            "lyon": ("Lugdunum",),
        }
        assert served_names(again) == changed
    async with core(location, data, path) as last:
        assert served_names(last) == changed  # the compaction's base, loaded


def test_the_corpus_columns_carry_the_names_of_the_winning_lines(tmp_path: Path) -> None:
    """Names go with the heaviest line of a key, kept by the check and sorted with it."""
    path = tmp_path / "c.tsv"
    path.write_text(CORPUS + "MUMBAI\t2\tBom\nMunich\t8\n")
    corpus.check(path)
    columns, _ = corpus.columns(path)
    assert [e.key for e in columns] == ["lyon", "mumbai", "munich", "pune"]
    assert dict(columns.names) == {"mumbai": ("Bombay",)}
    assert list(columns[1:3].names.items()) == list(columns.names.items())
