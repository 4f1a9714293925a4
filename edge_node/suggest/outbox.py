"""Searches the edge holds until the core has committed them.

Pure and synchronous. Bounded by ``capacity``; when full, :meth:`Outbox.add` refuses the new
search (the caller answers 503 ``outbox_full`` and the client keeps it): a search once
accepted as ``queued`` is never dropped. Items sent but not acknowledged go back to the front
of the queue when the link drops, and are sent again; the core acknowledges a repeated id
without applying it twice, so resending is always safe.

Batches grow under load (:meth:`Outbox.wait_s`, Nagle's rule): a batch smaller than the most
a frame takes goes only when nothing is in flight, or :data:`HOLD_S` after the last one went.
The core commits one transaction per batch, so while one is being committed the next fills
up: without the rule every search went alone, as soon as it came, and commits, not searches,
bounded the rate (docs/BENCHMARKS.md, "Several core nodes"). A full batch always goes at
once; a search waits at most ``HOLD_S`` for the batch before it.
"""

from __future__ import annotations

from collections import OrderedDict

from shared.errors import Conflict
from shared.protocol import SearchItem

HOLD_S = 0.05
"""Longest a small batch waits for the one in flight to be acknowledged (see the module doc):
a link with a long round trip still sends one at least this often."""


class Outbox:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._unsent: OrderedDict[str, SearchItem] = OrderedDict()
        self._in_flight: OrderedDict[str, SearchItem] = OrderedDict()
        self._last_taken = 0.0

    def __len__(self) -> int:
        return len(self._unsent) + len(self._in_flight)

    def __contains__(self, search_id: str) -> bool:
        return search_id in self._unsent or search_id in self._in_flight

    @property
    def has_unsent(self) -> bool:
        return bool(self._unsent)

    def add(self, item: SearchItem) -> bool:
        """Queue ``item``; ``False`` if the outbox is full. A queued id is not added twice.

        Raises:
            Conflict: the id is queued with another ``q`` (its first write stands).
        """
        queued = self._unsent.get(item.id) or self._in_flight.get(item.id)
        if queued is not None:
            if queued.q != item.q:
                raise Conflict.reused_id(item.id)
            return True
        if len(self) >= self.capacity:
            return False
        self._unsent[item.id] = item
        return True

    def wait_s(self, max_items: int, now: float) -> float:
        """Seconds before a batch may go (0: now): a batch of ``max_items`` goes at once, a
        smaller one when nothing is in flight or :data:`HOLD_S` after the last batch went."""
        if len(self._unsent) >= max_items or not self._in_flight:
            return 0.0
        return max(0.0, self._last_taken + HOLD_S - now)

    def take(self, max_items: int, now: float = 0.0) -> list[SearchItem]:
        """Up to ``max_items`` unsent items, oldest first, now counted as in flight (taken
        at ``now``, for :meth:`wait_s`)."""
        self._last_taken = now
        batch: list[SearchItem] = []
        while self._unsent and len(batch) < max_items:
            search_id, item = self._unsent.popitem(last=False)
            self._in_flight[search_id] = item
            batch.append(item)
        return batch

    def ack(self, search_id: str) -> None:
        """The core committed ``search_id`` (or had before): forget it."""
        self._in_flight.pop(search_id, None)
        self._unsent.pop(search_id, None)

    def retry(self, search_id: str) -> None:
        """The core could not commit ``search_id`` now: unsent again, ahead of newer items."""
        item = self._in_flight.pop(search_id, None)
        if item is not None:
            self._unsent[search_id] = item
            self._unsent.move_to_end(search_id, last=False)

    def requeue(self) -> None:
        """The link dropped: everything in flight is unsent again, ahead of newer items."""
        self._in_flight.update(self._unsent)
        self._unsent, self._in_flight = self._in_flight, OrderedDict()
