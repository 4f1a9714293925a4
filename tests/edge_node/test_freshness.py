"""One feature's freshness at an edge, pure: its version, when it was last known current,
and as of which global version."""

from __future__ import annotations

from edge_node.freshness import Freshness


def test_no_data_yet_has_age_zero_and_reflects_nothing() -> None:
    fresh = Freshness()
    assert fresh.version == -1 and fresh.age_ms(100.0) == 0
    assert not fresh.reflects(0)


def test_data_applied_is_current_as_of_its_version() -> None:
    fresh = Freshness()
    fresh.advanced(5, now=10.0)
    assert fresh.reflects(5) and not fresh.reflects(6)
    assert fresh.age_ms(10.25) == 250


def test_a_heartbeat_that_says_the_feature_did_not_change_keeps_it_current() -> None:
    """Another feature's write moved the global head to 9; this feature is still at 5, and
    the core says so: it is current as of 9, and its age restarts."""
    fresh = Freshness()
    fresh.advanced(5, now=10.0)
    fresh.heard(head=9, version=5, now=12.0)
    assert fresh.reflects(9) and fresh.age_ms(12.0) == 0


def test_a_heartbeat_for_a_version_not_held_leaves_it_as_it_was() -> None:
    """The core published 7 for this feature; the delta is still on its way."""
    fresh = Freshness()
    fresh.advanced(5, now=10.0)
    fresh.heard(head=9, version=7, now=12.0)
    assert not fresh.reflects(6) and fresh.age_ms(12.0) == 2000
    fresh.advanced(7, now=12.5)
    assert fresh.reflects(7) and not fresh.reflects(9)


def test_another_database_starts_the_global_versions_afresh() -> None:
    fresh = Freshness()
    fresh.advanced(5, now=1.0)
    fresh.heard(head=90, version=5, now=2.0)
    fresh.restarted()
    fresh.advanced(3, now=3.0)
    assert fresh.reflects(3) and not fresh.reflects(4)


def test_a_strict_sync_confirms_without_changing_versions() -> None:
    fresh = Freshness()
    fresh.advanced(5, now=1.0)
    fresh.confirm(now=4.0)
    assert fresh.age_ms(4.0) == 0 and fresh.version == 5
