"""Re-keying a store whose keys an older fold made (core_region/db/rekey.py), on both engines:
once, as one version with a new epoch, merging rows whose keys collide, refusing a store of a
newer fold."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core_region.db import rekey
from core_region.settings import CoreSettings
from core_region.store import MAX_SOURCES_COUNTED, LoggedSearch, Store
from core_region.suggest.catalog import TermRow
from core_region.suggest.feature import stream_key
from shared.cli import main
from shared.config import ConfigError, from_environ
from shared.folding import FOLD_VERSION, fold
from tests.helpers.folds import make_newer, make_old_store


def row(key: str, term: str, base: int = 0, searches: int = 0, **kw: int) -> TermRow:
    return TermRow(key, term, base, searches, bool(kw.get("blocked")), kw.get("sources", 0))


# --- the plan (pure) -----------------------------------------------------------------------


def test_rows_whose_keys_collide_merge_by_the_documented_rule() -> None:
    done = rekey.plan(
        [
            row("st. petersburg", "St. Petersburg", 257_083, 3, sources=2),
            row("saint petersburg", "Saint Petersburg", 5_351_935, 1, blocked=1),
            row("paris", "Paris", 10),
        ],
        [("st. petersburg", "s1"), ("st. petersburg", "s2"), ("saint petersburg", "s2")],
        max_sources=MAX_SOURCES_COUNTED,
    )
    assert done.rows == [row("saintpetersburg", "Saint Petersburg", 5_351_935, 4, blocked=1,
                             sources=2)]  # fmt: skip
    assert sorted(done.gone) == ["saint petersburg", "saintpetersburg", "st. petersburg"]
    assert done.moved == {
        "st. petersburg": "saintpetersburg",
        "saint petersburg": "saintpetersburg",
    }
    assert sorted(done.sources) == [("saintpetersburg", "s1"), ("saintpetersburg", "s2")]
    assert done.merged == 1 and done.dropped == 0


def test_a_row_merges_into_one_already_at_its_new_key() -> None:
    done = rekey.plan(
        [row("xian", "Xian", 3_000, 2), row("xi’an", "Xi’an", 9_600_000, 1)],
        [],
        max_sources=MAX_SOURCES_COUNTED,
    )
    assert done.rows == [row("xian", "Xi’an", 9_600_000, 3)]
    assert sorted(done.gone) == ["xian", "xi’an"] and done.moved == {"xi’an": "xian"}


def test_equal_weights_keep_the_more_searched_then_the_smaller_key() -> None:
    rows = [row("a-b", "A-B", 5, 1), row("a b", "A B", 5, 2), row("a.b", "A.B", 5, 2)]
    assert rekey.plan(rows, [], max_sources=16).rows[0].term == "A B"


def test_merged_rows_keep_every_other_name_once() -> None:
    """Other names of every merged row are kept, the kept row's first; a name that now folds
    like the key or like an earlier name is left out."""
    rows = [
        TermRow("xian", "Xian", 3_000, 0, False, 0, ("Sian", "Hsi-an")),
        TermRow("xi’an", "Xi’an", 9_600_000, 0, False, 0, ("Chang'an", "Xi an", "Si-an")),
    ]
    done = rekey.plan(rows, [], max_sources=MAX_SOURCES_COUNTED)
    assert [r.names for r in done.rows] == [("Chang'an", "Si-an", "Hsi-an")]


def test_a_key_of_punctuation_alone_is_dropped() -> None:
    done = rekey.plan([row("'", "'", 5)], [("'", "s1")], max_sources=MAX_SOURCES_COUNTED)
    assert done.rows == [] and done.moved == {"'": ""} and done.dropped == 1
    assert done.gone == ["'"] and done.sources == []


def test_merged_sources_are_their_union_within_the_bound() -> None:
    sources = [("a b", f"s{n:02d}") for n in range(10)] + [
        ("a-b", f"s{n:02d}") for n in range(5, 20)
    ]
    done = rekey.plan(
        [row("a b", "A B", sources=10), row("a-b", "A-B", sources=15)], sources, max_sources=16
    )
    assert done.rows[0].sources == 16 and len(done.sources) == 16


def test_keys_already_folded_by_this_version_are_left_alone() -> None:
    done = rekey.plan([row("paris", "Paris", 1)], [("paris", "s1")], max_sources=16)
    assert done == rekey.Plan([], [], {}, [])


# --- on a store ----------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return tmp_path / "core.db"


async def test_a_fresh_store_records_this_fold_version_and_writes_nothing(
    location: Path | str,
) -> None:
    store = await Store.open(location)
    try:
        assert await store.fold_version() == FOLD_VERSION
        assert await store.version() == 0
    finally:
        await store.close()


async def test_an_old_store_is_re_keyed_at_open_as_one_version_with_a_new_epoch(
    location: Path | str,
) -> None:
    epoch, head = await make_old_store(location)
    store = await Store.open(location)
    try:
        assert await store.fold_version() == FOLD_VERSION
        assert await store.version() == head + 1
        assert await store.epoch() != epoch
        rows = {r.key: r for r in await store.terms()}
        assert set(rows) == {
            "xian", "newyorkcity", "saintpetersburg", "stockholm", "paris", "foobar"
        }  # fmt: skip
        assert rows["xian"] == row("xian", "Xi’an", 9_600_000, blocked=1)  # Xian was blocked
        assert rows["saintpetersburg"] == row("saintpetersburg", "Saint Petersburg", 5_351_935, 3)
        assert rows["foobar"] == row("foobar", "foo bar", 0, 3, sources=3)  # the more searched
        assert rows["paris"] == row("paris", "Paris", 2_138_551)  # untouched
        # The term log of the re-key's version holds every row it wrote; the old stream is gone.
        logged = await store.logged(head, head + 1)
        assert {r.key for _, r in logged} == set(rows) - {"paris", "stockholm"}
        assert await store.newest_base_key() is None and await store.last_mark() == -1
        async with store._engine.reading() as db:
            keys = {str(k) for (k,) in await db.fetch("SELECT key FROM searches")}
            pairs = await db.fetch("SELECT key, source FROM term_sources ORDER BY source")
        assert keys == {"saintpetersburg", "foobar"}  # the search of "'" went with its row
        assert [tuple(p) for p in pairs] == [("foobar", "s1"), ("foobar", "s2"), ("foobar", "s3")]
        # A later search of the merged term counts on the merged row.
        await store.log_searches([LoggedSearch("b1", fold("FOO BAR"), "FOO BAR", "x", "syd", "s4")])
        assert {r.key: r for r in await store.terms()}["foobar"].sources == 4
    finally:
        await store.close()
    again = await Store.open(location)  # once: a restart finds it done
    try:
        assert await again.version() == head + 2
    finally:
        await again.close()


async def test_nodes_opening_an_old_store_together_re_key_it_once(location: Path | str) -> None:
    _, head = await make_old_store(location)
    stores = await asyncio.gather(*(Store.open(location) for _ in range(3)))
    try:
        assert [await s.version() for s in stores] == [head + 1] * 3
        assert len({await s.epoch() for s in stores}) == 1
        assert len(await stores[0].terms()) == 6
    finally:
        for store in stores:
            await store.close()


async def test_a_store_of_a_newer_fold_is_refused_in_one_line(location: Path | str) -> None:
    await make_newer(location)
    with pytest.raises(ConfigError) as caught:
        await Store.open(location)
    message = str(caught.value)
    assert f"fold version {FOLD_VERSION + 1}" in message and "upgrade this node" in message
    assert "\n" not in message


def test_lightcone_core_refuses_a_store_of_a_newer_fold_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(make_newer(tmp_path / "lightcone.db"))
    with pytest.raises(SystemExit) as exit:
        main(["core", "--data-dir", str(tmp_path), "--port", "0"])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "upgrade this node" in err and "Traceback" not in err


def test_the_stream_key_names_the_fold_version() -> None:
    """A base snapshot built with other keys is never loaded: the stream key differs."""
    settings = from_environ(CoreSettings, {})
    assert stream_key(settings).endswith(f" fold={FOLD_VERSION}")
