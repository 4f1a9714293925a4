"""Circuit breaker (closed / open / half-open, with ``now`` passed in) and the backoff of
reconnects and task restarts (:func:`shared.tasks.backoff_s`)."""

from __future__ import annotations

import pytest

from edge_node.breaker import CLOSED, HALF_OPEN, OPEN, Breaker
from shared.tasks import backoff_s


def opened(at: float = 100.0) -> Breaker:
    """A breaker (3 failures, 5 s reset) that just opened at ``at``."""
    breaker = Breaker(failures=3, reset_s=5.0)
    for _ in range(3):
        breaker.failure(at)
    return breaker


def test_new_breaker_is_closed_and_allows() -> None:
    """Calls go out while nothing failed."""
    breaker = Breaker(failures=3, reset_s=5.0)
    assert breaker.state(0.0) == CLOSED
    assert breaker.allow(0.0)
    assert breaker.allow(0.0)


def test_breaker_stays_closed_below_the_failure_count() -> None:
    """Fewer consecutive failures than ``failures`` keep it closed."""
    breaker = Breaker(failures=3, reset_s=5.0)
    breaker.failure(1.0)
    breaker.failure(2.0)
    assert breaker.state(2.0) == CLOSED
    assert breaker.allow(2.0)


def test_success_resets_the_failure_count() -> None:
    """Failures must be consecutive: a success in between starts the count again."""
    breaker = Breaker(failures=3, reset_s=5.0)
    breaker.failure(1.0)
    breaker.failure(2.0)
    breaker.success()
    breaker.failure(3.0)
    breaker.failure(4.0)
    assert breaker.state(4.0) == CLOSED


def test_breaker_opens_at_the_failure_count() -> None:
    """The ``failures``-th consecutive failure opens it; calls fail at once."""
    breaker = opened(100.0)
    assert breaker.state(100.0) == OPEN
    assert not breaker.allow(100.0)
    assert not breaker.allow(104.9)
    assert breaker.state(104.9) == OPEN


def test_breaker_is_half_open_after_reset_s() -> None:
    """Once ``reset_s`` passed, the state is half-open."""
    breaker = opened(100.0)
    assert breaker.state(105.0) == HALF_OPEN
    assert breaker.state(1000.0) == HALF_OPEN


def test_half_open_lets_a_single_trial_through() -> None:
    """Only one call goes out while the trial is pending."""
    breaker = opened(100.0)
    assert breaker.allow(105.0)
    assert not breaker.allow(105.0)
    assert not breaker.allow(200.0)


def test_successful_trial_closes_the_breaker() -> None:
    """A trial that succeeds closes it: every call goes out again."""
    breaker = opened(100.0)
    assert breaker.allow(105.0)
    breaker.success()
    assert breaker.state(105.0) == CLOSED
    assert breaker.allow(105.0)
    assert breaker.allow(105.0)


def test_failed_trial_reopens_the_breaker_for_another_reset_s() -> None:
    """A failed trial opens it again from the failure's time, with a single failure."""
    breaker = opened(100.0)
    assert breaker.allow(105.0)
    breaker.failure(106.0)
    assert breaker.state(106.0) == OPEN
    assert not breaker.allow(110.9)
    assert breaker.state(111.0) == HALF_OPEN
    assert breaker.allow(111.0)
    assert not breaker.allow(111.0)


def test_failures_while_open_push_the_reset_back() -> None:
    """A late failure of a call sent before opening restarts the open period."""
    breaker = opened(100.0)
    breaker.failure(103.0)
    assert breaker.state(105.0) == OPEN
    assert breaker.state(108.0) == HALF_OPEN


def test_single_failure_threshold_opens_at_once() -> None:
    """With ``failures=1`` the first failure opens the breaker."""
    breaker = Breaker(failures=1, reset_s=1.0)
    breaker.failure(0.0)
    assert breaker.state(0.5) == OPEN
    assert breaker.state(1.0) == HALF_OPEN


# --- backoff -------------------------------------------------------------------------------


def test_backoff_is_zero_with_zero_jitter() -> None:
    """Full jitter: the delay is jitter x cap, so jitter 0 means retry at once."""
    for attempt in range(40):
        assert backoff_s(attempt, min_s=0.1, max_s=5.0, jitter=0.0) == 0.0


def test_backoff_doubles_from_min_s() -> None:
    """The cap starts at ``min_s`` and doubles per attempt."""
    caps = [backoff_s(n, min_s=0.1, max_s=100.0, jitter=0.5) for n in range(5)]
    assert caps == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8])


def test_backoff_is_capped_at_max_s() -> None:
    """The cap never exceeds ``max_s``, even for huge attempt counts."""
    assert backoff_s(6, min_s=0.1, max_s=5.0, jitter=0.5) == pytest.approx(2.5)
    assert backoff_s(10**6, min_s=0.1, max_s=5.0, jitter=0.5) == pytest.approx(2.5)


@pytest.mark.parametrize("jitter", [0.0, 0.5, 0.999])
def test_backoff_stays_in_bounds_and_never_shrinks(jitter: float) -> None:
    """For any jitter in [0, 1) the delay is in [0, max_s) and grows with the attempt."""
    delays = [backoff_s(n, min_s=0.1, max_s=5.0, jitter=jitter) for n in range(50)]
    assert all(0.0 <= d < 5.0 for d in delays)
    assert delays == sorted(delays)
    assert delays[0] == pytest.approx(0.1 * jitter)
    assert delays[-1] == pytest.approx(5.0 * jitter)


def test_backoff_returns_a_float() -> None:
    """Integer inputs still give a float."""
    assert isinstance(backoff_s(1, min_s=1, max_s=8, jitter=0), float)


# --- every trial ends (finding 3) ----------------------------------------------------------


def test_a_released_trial_lets_the_next_call_be_the_trial() -> None:
    """A trial whose caller went away gives no verdict: still half-open, next call goes."""
    breaker = opened(100.0)
    assert breaker.allow(105.0)
    assert not breaker.allow(105.0)
    breaker.release()
    assert breaker.state(105.0) == HALF_OPEN
    assert breaker.allow(105.1)
    assert not breaker.allow(105.1)


def test_release_while_closed_changes_nothing() -> None:
    """Releasing an ordinary call (closed breaker) keeps it closed, failures still counted."""
    breaker = Breaker(failures=2, reset_s=5.0)
    breaker.failure(1.0)
    breaker.release()
    assert breaker.state(1.0) == CLOSED
    breaker.failure(2.0)
    assert breaker.state(2.0) == OPEN
