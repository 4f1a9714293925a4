"""How fresh one feature's data is at an edge: pure, with ``now`` passed in.

There is one global version sequence (every write to the core takes the next version,
whatever feature it changes); a feature's version is the last global version that changed
it. The core says, in each heartbeat and ``synced``, its published head and every feature's
version at that head. An edge holding a feature's version is then *current* with that feature
as of the head: its age restarts, and every global version up to the head is reflected in it
(read-your-writes of a version that changed another feature is then kept without waiting).

How old the data may be (``bounded``): the core says "current" when it *sends* a heartbeat,
a delta or ``synced``; the edge hears it one core→edge delay later, a delay it cannot see.
That delay is never longer than a round trip of the link, so the data's age is at most its
confirmed age plus the link's round trip (:meth:`Freshness.bound_left_ms`). The round trip is
the largest the edge measured lately (:class:`RoundTrips`: a websocket ping every heartbeat,
and every ``sync``), or longer while a ping is still unanswered; with no measure at all there
is no bound, and a bounded read asks the core.
"""

from __future__ import annotations

import math
from collections import deque

ROUND_TRIP_WINDOW_S = 10
"""How far back the round trips that bound the unseen delay go (1 s buckets, so at most this
many are kept): ten heartbeats, long enough that one fast ping does not hide a slow link."""

MAX_PINGS_OUT = 16
"""Unanswered round trips tracked at once; beyond it a new one is not tracked (the oldest,
which gives the bound, is)."""


class Freshness:
    """One feature's version at the edge, when it was last known current, and as of which
    global version."""

    def __init__(self) -> None:
        self.version = -1
        """The version held (-1: no data yet)."""
        self.current_at = -1
        """The newest global version the data is known to reflect (>= :attr:`version`)."""
        self.confirmed_at: float | None = None

    def advanced(self, version: int, now: float) -> None:
        """New data at ``version`` was applied: it is current as of its publication (``now``:
        when it arrived)."""
        self.version = version
        self.current_at = max(self.current_at, version)
        self._confirmed(now)

    def restarted(self) -> None:
        """Data of another database (epoch) comes: versions start afresh."""
        self.current_at = -1

    def heard(self, head: int, version: int, now: float) -> None:
        """The core's head is ``head`` and this feature's version there ``version``."""
        if self.version >= version:
            self.current_at = max(self.current_at, head)
            self._confirmed(now)

    def confirm(self, now: float) -> None:
        """A strict read caught up with the core's head: current as of ``now``."""
        self._confirmed(now)

    def _confirmed(self, now: float) -> None:
        """Known current as of ``now``; a confirmation dated earlier than one already had
        changes nothing."""
        if self.confirmed_at is None or now > self.confirmed_at:
            self.confirmed_at = now

    def reflects(self, version: int) -> bool:
        """Whether the data reflects every write up to global ``version``."""
        return max(self.version, self.current_at) >= version

    def age_ms(self, now: float) -> int:
        """Milliseconds since the data was last known current (0 before any data)."""
        if self.confirmed_at is None:
            return 0
        return int((now - self.confirmed_at) * 1000)

    def bound_left_ms(self, max_age_ms: int, round_trip_ms: int | None, now: float) -> int | None:
        """What is left of a bound of ``max_age_ms`` for this data: the bound minus its age at
        most (confirmed age plus ``round_trip_ms``, the delay the edge cannot see, module
        doc); ``None`` when the data is not provably younger than the bound (never confirmed,
        no round trip measured, or too old)."""
        if self.confirmed_at is None or round_trip_ms is None:
            return None
        left = max_age_ms - (now - self.confirmed_at) * 1000 - round_trip_ms
        return math.floor(left) if left > 0 else None


class RoundTrips:
    """The link's recent round trips, pure (``now`` in monotonic seconds): the largest of
    those measured in the last :data:`ROUND_TRIP_WINDOW_S`, or the age of the oldest still
    unanswered if that is longer. Kept per 1 s bucket: bounded whatever the rate of syncs."""

    def __init__(self) -> None:
        self._buckets: deque[tuple[int, float]] = deque(maxlen=ROUND_TRIP_WINDOW_S)
        self._out: dict[int, float] = {}
        self._ids = 0

    def started(self, now: float) -> int | None:
        """A round trip starts (a ping or a sync is sent): its id, or None if not tracked."""
        if len(self._out) >= MAX_PINGS_OUT:
            return None
        self._ids += 1
        self._out[self._ids] = now
        return self._ids

    def ended(self, trip: int | None, now: float) -> None:
        """Round trip ``trip`` is answered (or gave up: its time so far is still a lower
        bound of the link's round trip)."""
        sent = self._out.pop(trip, None) if trip is not None else None
        if sent is None:
            return
        seconds, bucket = now - sent, int(now)
        if self._buckets and self._buckets[-1][0] == bucket:
            seconds = max(seconds, self._buckets[-1][1])
            self._buckets.pop()
        self._buckets.append((bucket, seconds))

    def dropped(self, trip: int | None) -> None:
        """Round trip ``trip`` will not be answered (the link dropped): forget it."""
        if trip is not None:
            self._out.pop(trip, None)

    def reset(self) -> None:
        """The link dropped: the next one (maybe to another core node) measures afresh."""
        self._buckets.clear()
        self._out.clear()

    def bound_ms(self, now: float) -> int | None:
        """The round trip to assume, in whole milliseconds rounded up; None before any was
        measured (or after :data:`ROUND_TRIP_WINDOW_S` without one)."""
        since = int(now) - ROUND_TRIP_WINDOW_S
        measured = [s for b, s in self._buckets if b > since]
        if not measured:
            return None
        worst = max(measured)
        if self._out:
            worst = max(worst, now - min(self._out.values()))
        return math.ceil(worst * 1000)
