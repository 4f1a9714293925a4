"""Token bucket with an explicit clock."""

from __future__ import annotations

from shared.ratelimit import TokenBucket


def drain(bucket: TokenBucket, now: float) -> int:
    """How many events the bucket allows at ``now`` before refusing one."""
    allowed = 0
    while bucket.allow(now):
        allowed += 1
        assert allowed < 10_000
    return allowed


def test_a_full_bucket_allows_a_burst() -> None:
    """A new bucket allows ``burst`` events at once, then refuses."""
    bucket = TokenBucket(rate=10.0, burst=5, now=0.0)
    assert drain(bucket, 0.0) == 5
    assert not bucket.allow(0.0)


def test_tokens_refill_at_rate() -> None:
    """After 0.3 s at 10/s, three more events are allowed."""
    bucket = TokenBucket(rate=10.0, burst=5, now=0.0)
    drain(bucket, 0.0)
    assert drain(bucket, 0.3) == 3


def test_partial_tokens_accumulate() -> None:
    """Half a token plus half a token is one event."""
    bucket = TokenBucket(rate=2.0, burst=1, now=0.0)
    assert bucket.allow(0.0)
    assert not bucket.allow(0.25)
    assert bucket.allow(0.5)


def test_refill_is_capped_at_burst() -> None:
    """A long quiet period refills to ``burst``, not beyond."""
    bucket = TokenBucket(rate=10.0, burst=5, now=0.0)
    drain(bucket, 0.0)
    assert drain(bucket, 3600.0) == 5


def test_sustained_rate_is_allowed_forever() -> None:
    """Events spaced exactly 1/rate apart are all allowed, keeping a token to spare."""
    bucket = TokenBucket(rate=4.0, burst=2, now=0.0)
    for n in range(1, 100):
        assert bucket.allow(n * 0.25)
    assert drain(bucket, 99 * 0.25) == 1


def test_refused_events_take_no_token() -> None:
    """Refusals do not push the next allowed event further away."""
    bucket = TokenBucket(rate=1.0, burst=1, now=0.0)
    assert bucket.allow(0.0)
    for t in (0.1, 0.2, 0.5, 0.9):
        assert not bucket.allow(t)
    assert bucket.allow(1.0)
