"""Circuit breaker and reconnect backoff for calls to the core. Pure: ``now`` is passed in."""

from __future__ import annotations

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class Breaker:
    """Opens after ``failures`` consecutive failures; after ``reset_s`` lets one trial through.

    While open, :meth:`allow` is ``False`` and callers fail at once instead of waiting.
    """

    def __init__(self, failures: int, reset_s: float) -> None:
        self.failures = failures
        self.reset_s = reset_s
        self._count = 0
        self._opened_at: float | None = None
        self._trial = False

    def state(self, now: float) -> str:
        if self._opened_at is None:
            return CLOSED
        return HALF_OPEN if now - self._opened_at >= self.reset_s else OPEN

    def allow(self, now: float) -> bool:
        """May a call go out now? In half-open state, only one trial at a time."""
        state = self.state(now)
        if state == CLOSED:
            return True
        if state == HALF_OPEN and not self._trial:
            self._trial = True
            return True
        return False

    def success(self) -> None:
        self._count = 0
        self._opened_at = None
        self._trial = False

    def failure(self, now: float) -> None:
        self._count += 1
        self._trial = False
        if self._count >= self.failures or self._opened_at is not None:
            self._opened_at = now


def backoff_s(attempt: int, *, min_s: float, max_s: float, jitter: float) -> float:
    """Delay before reconnect ``attempt`` (0-based): exponential, capped, with full jitter.

    Args:
        attempt: failures so far.
        min_s: the first delay's cap.
        max_s: the largest delay.
        jitter: a random number in [0, 1) (injected so tests are deterministic).
    """
    return float(jitter * min(max_s, min_s * 2.0 ** min(attempt, 32)))
