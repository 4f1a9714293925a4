"""One feature's freshness at an edge, pure: its version, when it was last known current,
and as of which global version."""

from __future__ import annotations

from edge_node.freshness import MAX_PINGS_OUT, ROUND_TRIP_WINDOW_S, Freshness, RoundTrips


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


# --- bounded: how old the data may be ----------------------------------------------------


def test_bounded_data_is_young_enough_while_confirmed_age_plus_round_trip_is_under() -> None:
    """Confirmed at 10 s; 250 ms later with a 200 ms round trip it is at most 450 ms old."""
    fresh = Freshness()
    fresh.advanced(5, now=10.0)
    assert fresh.bound_left_ms(2000, 200, now=10.25) == 1550
    assert fresh.bound_left_ms(2000, 0, now=10.25) == 1750


def test_bounded_data_too_old_or_unmeasured_is_not_within_the_bound() -> None:
    fresh = Freshness()
    assert fresh.bound_left_ms(2000, 10, now=1.0) is None  # never confirmed
    fresh.advanced(5, now=10.0)
    assert fresh.bound_left_ms(2000, None, now=10.0) is None  # no round trip measured
    assert fresh.bound_left_ms(2000, 250, now=11.75) is None  # exactly at the bound: not under
    assert fresh.bound_left_ms(2000, 1900, now=10.25) is None  # a slow link uses it all up
    fresh.heard(head=9, version=5, now=11.75)
    assert fresh.bound_left_ms(2000, 200, now=11.75) == 1800  # a heartbeat confirms again


def test_a_confirmation_dated_earlier_changes_nothing() -> None:
    """A frame that waited behind a snapshot's load is dated when that came: older."""
    fresh = Freshness()
    fresh.advanced(5, now=10.0)
    fresh.heard(head=6, version=5, now=9.0)
    assert fresh.confirmed_at == 10.0 and fresh.reflects(6)


def test_the_round_trip_is_the_largest_measured_lately() -> None:
    trips = RoundTrips()
    assert trips.bound_ms(0.0) is None
    fast = trips.started(100.0)
    trips.ended(fast, 100.02)
    slow = trips.started(101.0)
    trips.ended(slow, 101.25)
    assert trips.bound_ms(101.5) == 250
    later = trips.started(105.0)
    trips.ended(later, 105.01)
    assert trips.bound_ms(105.5) == 250  # the slow one is still within the window
    assert trips.bound_ms(105.5 + ROUND_TRIP_WINDOW_S) is None  # all too old


def test_an_unanswered_round_trip_counts_for_as_long_as_it_is_out() -> None:
    trips = RoundTrips()
    trips.ended(trips.started(10.0), 10.125)
    out = trips.started(10.5)
    assert trips.bound_ms(12.5) == 2000  # a ping out for 2 s: the link is at least that slow
    trips.dropped(out)
    assert trips.bound_ms(12.5) == 125
    trips.reset()
    assert trips.bound_ms(12.5) is None


def test_round_trips_are_bounded_in_memory_whatever_their_rate() -> None:
    trips = RoundTrips()
    for n in range(100_000):
        trips.ended(trips.started(n / 1000), n / 1000 + 0.001)
    assert len(trips._buckets) <= ROUND_TRIP_WINDOW_S
    held = [trips.started(200.0) for _ in range(MAX_PINGS_OUT + 5)]
    assert held[-1] is None and len(trips._out) == MAX_PINGS_OUT
