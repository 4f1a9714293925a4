"""Folding that forgives, through real core and edge processes: the issue's examples on the
default corpus, and a store an older fold made, re-keyed at the core's first start."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import Cluster
from tests.helpers.folds import make_old_store
from tests.helpers.nodes import start_core, start_edge, suggest_items

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("q", "first"),
    [
        ("xian", "Xi’an"),
        ("Xi'an", "Xi’an"),
        ("newyork", "New York City"),
        ("new york", "New York City"),
        ("st petersburg", "Saint Petersburg"),
        ("St. Petersburg", "Saint Petersburg"),
        ("st.", "Saint Petersburg"),  # a finished abbreviation: the saints
        ("winstonsalem", "Winston-Salem"),
    ],
)
async def test_spacing_punctuation_and_st_do_not_matter(
    cluster: Cluster, q: str, first: str
) -> None:
    _, syd, _ = cluster
    found = await suggest_items(syd, q)
    assert found[0] == {"term": first, "weight": found[0]["weight"]}  # a prefix match


async def test_st_being_typed_still_reaches_stockholm(cluster: Cluster) -> None:
    _, syd, _ = cluster
    assert "Stockholm" in [i["term"] for i in await suggest_items(syd, "st", 20)]


async def test_los_angelos_is_one_typo_from_los_angeles(cluster: Cluster) -> None:
    _, syd, _ = cluster
    assert (await suggest_items(syd, "los angelos"))[0] == {
        "term": "Los Angeles",
        "weight": (await suggest_items(syd, "los angeles"))[0]["weight"],
        "match": "typo",
        "typos": 1,
    }


async def test_a_core_re_keys_a_store_of_the_old_fold_and_its_edges_serve_the_new_keys(
    tmp_path: Path,
) -> None:
    """The upgrade: a store a build of fold version 1 left (its keys "xi’an", "st.
    petersburg"), a core of this build started on it, an edge: the new keys are served."""
    (tmp_path / "core-data").mkdir()
    await make_old_store(tmp_path / "core-data" / "lightcone.db", block=False)
    core = start_core(tmp_path)
    edge = start_edge(tmp_path, core.url, "syd")
    try:
        assert [i["term"] for i in await suggest_items(edge, "xian")] == ["Xi’an"]
        assert [i["term"] for i in await suggest_items(edge, "st petersburg")] == [
            "Saint Petersburg"
        ]
        assert [i["term"] for i in await suggest_items(edge, "st. pet")] == ["Saint Petersburg"]
        assert any("re-keyed the store from fold version 1 to 2" in line for line in core.lines)
    finally:
        edge.stop()
        core.stop()
    assert not core.errors() and not edge.errors()
