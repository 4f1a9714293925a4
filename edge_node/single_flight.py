"""Reads that must ask the core share its syncs: a few in flight per link, one boarding.
Pure.

A strict read must see everything the core had committed when the read *arrived*; the core
answers a ``sync`` with the head it has when it reads it, and with every feature's version
there, so one ``sync`` serves every read, of every feature, that arrived before it was
*sent*, and none that arrived after. Hence, with a ``capacity`` of flights in flight:

* the flights **in flight** (sent, not yet answered): a read that finds fewer than
  ``capacity`` starts one and sends it at once (no added latency while reads do not pile up);
* the one **boarding**: every read that arrives while ``capacity`` are in flight joins it. It
  is sent as soon as one in flight lands (answered, refused, failed or past its deadline),
  and carries everyone who arrived meanwhile. If all its readers leave before then, it is
  not sent.

So the core sees at most ``capacity`` ``sync``s per round trip of the link from an edge,
whatever the read rate; a read waits at most two round trips (the rest of a flight in
flight, then its own), and each read keeps its own deadline (:class:`~edge_node.link.Link` raises
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
    """The flights in flight and the one boarding, of one link (module doc). ``capacity`` is
    passed in with each call (the shell lowers it to 1 while its circuit breaker is not
    closed, so that reads wait for a trial's verdict instead of failing beside it)."""

    def __init__(self) -> None:
        self.in_flight: list[Flight] = []
        self.boarding: Flight | None = None
        self._ids = itertools.count(1)

    def join(self, now: float, timeout_s: float, capacity: int = 1) -> tuple[Flight, bool]:
        """A read arrives at ``now`` and will wait at most ``timeout_s``: the flight it takes,
        and whether the caller must send it now (fewer than ``capacity`` were in flight)."""
        deadline = now + timeout_s
        if len(self.in_flight) < capacity:
            # Room to send: a flight boarding since the room was taken goes now, with this read.
            flight, self.boarding = self.boarding or Flight(next(self._ids), deadline), None
            flight.readers += 1
            flight.deadline = max(flight.deadline, deadline)
            flight.sent_at = now
            self.in_flight.append(flight)
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

    def landed(self, flight: Flight, now: float, capacity: int = 1) -> Flight | None:
        """``flight``, in flight, ended (answered, refused, failed or past its deadline): the
        boarding flight, now in flight, for the caller to send at once; None if none, or if
        ``capacity`` are still in flight."""
        assert flight in self.in_flight, "only a flight in flight lands"
        self.in_flight.remove(flight)
        following = self.boarding
        if following is None or len(self.in_flight) >= capacity:
            return None
        self.boarding = None
        following.sent_at = now
        self.in_flight.append(following)
        return following
