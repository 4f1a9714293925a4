"""How fresh one feature's data is at an edge: pure, with ``now`` passed in.

There is one global version sequence (every write to the core takes the next version,
whatever feature it changes); a feature's version is the last global version that changed
it. The core says, in each heartbeat and ``synced``, its published head and every feature's
version at that head. An edge holding a feature's version is then *current* with that feature
as of the head: its age restarts, and every global version up to the head is reflected in it
(read-your-writes of a version that changed another feature is then kept without waiting).
"""

from __future__ import annotations


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
        """New data at ``version`` was applied: it is current as of its publication."""
        self.version = version
        self.current_at = max(self.current_at, version)
        self.confirmed_at = now

    def restarted(self) -> None:
        """Data of another database (epoch) comes: versions start afresh."""
        self.current_at = -1

    def heard(self, head: int, version: int, now: float) -> None:
        """The core's head is ``head`` and this feature's version there ``version``."""
        if self.version >= version:
            self.current_at = max(self.current_at, head)
            self.confirmed_at = now

    def confirm(self, now: float) -> None:
        """A strict read caught up with the core's head: current now."""
        self.confirmed_at = now

    def reflects(self, version: int) -> bool:
        """Whether the data reflects every write up to global ``version``."""
        return max(self.version, self.current_at) >= version

    def age_ms(self, now: float) -> int:
        """Milliseconds since the data was last known current (0 before any data)."""
        if self.confirmed_at is None:
            return 0
        return int((now - self.confirmed_at) * 1000)
