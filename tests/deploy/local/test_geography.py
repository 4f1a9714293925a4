"""The demo's model of distance: the shipped tables, read as package data."""

from __future__ import annotations

import itertools
import tomllib
from pathlib import Path

import pytest

from deploy.local import geography

ROOT = Path(__file__).resolve().parents[3]


def test_the_tables_ship_as_package_data() -> None:
    """pyproject installs deploy/local/data with the package (geography reads it from there)."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        data = tomllib.load(f)["tool"]["setuptools"]["package-data"]["deploy.local"]
    for name in ("regions.csv", "rtt_ms.csv"):
        path = ROOT / "deploy" / "local" / "data" / name
        assert path.is_file() and any(path.match(f"local/{pattern}") for pattern in data)


def test_every_pair_of_regions_has_a_link_no_faster_than_light() -> None:
    """18 regions; each pair has a median RTT at or above the fiber floor when measured."""
    codes = sorted(geography.regions())
    assert len(codes) == 18
    for a, b in itertools.combinations(codes, 2):
        link = geography.link(a, b)
        assert 0 < link.p50_ms <= link.p95_ms
        if link.measured:
            assert link.p50_ms >= geography.fiber_floor_ms(a, b), (a, b)


def test_a_user_pays_the_access_term_plus_the_backbone() -> None:
    """Next to the target only the last mile; across an ocean the backbone too."""
    assert geography.user_rtt_ms("syd", "syd", 5.0) == 5.0
    far = geography.user_rtt_ms("syd", "iad", 5.0)
    assert far == 5.0 + geography.link("syd", "iad").p50_ms
    assert geography.link("iad", "iad").p50_ms == geography.INTRA_REGION_RTT_MS


def test_nearest_picks_the_lowest_rtt() -> None:
    assert geography.nearest("syd", ["iad", "lhr", "syd"]) == "syd"
    assert geography.nearest("sin", ["iad", "lhr", "syd"]) == "syd"


def test_an_unknown_region_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown region 'xyz'; known: .*iad"):
        geography.region("xyz")
