"""Reads that must ask the core share its syncs: one in flight per link, one boarding. Pure.

A strict read must see everything the core had committed when the read *arrived*; the core
answers a ``sync`` with the head it has when it reads it, and with every feature's version
there, so one ``sync`` serves every read, of every feature, that arrived before it was
*sent*, and none that arrived after. Hence two flights at most:

* the one **in flight** (sent, not yet answered): a read that finds none starts one and
  sends it at once (no added latency on an idle link);
* the one **boarding**: every read that arrives while one is in flight joins it. It is sent
  as soon as the one in flight lands (answered, refused, failed or past its deadline), and
  carries everyone who arrived meanwhile. If all its readers leave before then, it is not
  sent.

So the core sees at most one ``sync`` per round trip of the link from an edge, whatever the
read rate; a read waits at most two round trips (the rest of the flight in flight, then its
own), and each read keeps its own deadline (:class:`~edge_node.link.Link` raises
``strict_timeout`` when it passes). A read that leaves (its deadline, or its client went
away) leaves the flight it is on, never ends it for the others: a flight in flight stays so
until it lands even with no readers left (that is what keeps the bound), and its deadline is
the latest of its readers' (nobody waits for it longer), at most the reads' timeout after it
was sent.

The async shell (:meth:`edge_node.link.Link.sync`) sends, waits and judges: the circuit breaker
is asked once per flight sent and told its verdict once (N reads waiting are one call to the
core, not N), and the link's :class:`~edge_node.freshness.RoundTrips` measure each flight once.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass


@dataclass(eq=False)
class Flight:
    """One ``sync``: its id on the link, its readers and their latest deadline."""

    id: int
    deadline: float
    """The latest deadline of the reads that joined it (monotonic seconds)."""
    readers: int = 0
    """Reads waiting for it now."""
    sent_at: float | None = None
    """When it was sent (None while boarding)."""


class SingleFlight:
    """The flight in flight and the one boarding, of one link (module doc)."""

    def __init__(self) -> None:
        self.in_flight: Flight | None = None
        self.boarding: Flight | None = None
        self._ids = itertools.count(1)

    def join(self, now: float, timeout_s: float) -> tuple[Flight, bool]:
        """A read arrives at ``now`` and will wait at most ``timeout_s``: the flight it takes,
        and whether the caller must send it now (none was in flight)."""
        deadline = now + timeout_s
        if self.in_flight is None:
            flight = self.in_flight = Flight(next(self._ids), deadline, 1, now)
            return flight, True
        if self.boarding is None:
            self.boarding = Flight(next(self._ids), deadline)
        flight = self.boarding
        flight.readers += 1
        flight.deadline = max(flight.deadline, deadline)
        return flight, False

    def leave(self, flight: Flight) -> None:
        """A reader of ``flight`` stops waiting (answered, timed out or cancelled). A boarding
        flight nobody waits for any more is dropped; one in flight flies on."""
        flight.readers -= 1
        if flight is self.boarding and flight.readers == 0:
            self.boarding = None

    def landed(self, flight: Flight, now: float) -> Flight | None:
        """``flight``, in flight, ended (answered, refused, failed or past its deadline): the
        boarding flight, now in flight, for the caller to send at once; None if none."""
        assert flight is self.in_flight, "only the flight in flight lands"
        following, self.boarding = self.boarding, None
        if following is not None:
            following.sent_at = now
        self.in_flight = following
        return following
