"""Circuit breaker for calls to the core. Pure: ``now`` is passed in.

Every call that :meth:`Breaker.allow` lets through must end in exactly one of
:meth:`~Breaker.success`, :meth:`~Breaker.failure` or :meth:`~Breaker.release` (the caller was
cancelled: no verdict on the core), called from a ``finally``: a half-open trial that is never
ended would keep the breaker open for good. (Reconnect backoff: :func:`shared.tasks.backoff_s`.)
"""

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

    def release(self) -> None:
        """The call ended without a verdict (cancelled): the next call may be the trial."""
        self._trial = False

    def success(self) -> None:
        self._count = 0
        self._opened_at = None
        self._trial = False

    def failure(self, now: float) -> None:
        self._count += 1
        self._trial = False
        if self._count >= self.failures or self._opened_at is not None:
            self._opened_at = now
