"""The edge's replica of the suggestion catalog: snapshots, deltas, gaps and write acks.

Pure and synchronous (no sockets, no clock, no asyncio): the link shell decodes what the core
sends, feeds it here, and does what the returned :class:`Step` or :class:`Outcome` says (wake
readers, mark itself ready, send ``resync``, resolve waiting writers).

The rules, in the order a frame meets them:

* A snapshot of another **epoch** (another database) is installed at once, whatever its
  version, and the core's head is counted afresh from it: versions only compare within one
  epoch.
* A snapshot of the same epoch **older** than the served index is a compaction with the deltas
  since right behind it. It is kept *pending*, deltas go to it, and it is installed only once
  it has caught up with the served version: answers never go back in time. A new link
  resumes from its version (:meth:`Replica.hello`), so it goes on catching up.
* A delta that does not follow the version it lands on is a **gap**: nothing is applied and
  the shell asks the core to resend from that version (``resync``).
* A delta before any snapshot is ignored: hello said the edge holds nothing, so a snapshot is
  on its way.
* Acknowledgements advance the core's known head and remove the searches from the
  :class:`~edge_node.suggest.outbox.Outbox` (bounded by ``outbox_max``).
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_node.suggest.index import GapError, SuggestIndex
from edge_node.suggest.outbox import Outbox
from shared.errors import BadRequest, Conflict, LightconeError
from shared.protocol import (
    ACK_ID_CONFLICT,
    ACK_STORE_UNAVAILABLE,
    Delta,
    SearchAcks,
    SearchItem,
)
from shared.snapshot import SnapshotData

UNSENDABLE = "unsendable"
""":attr:`Outcome.error` of a search the edge could not send (it cannot be encoded)."""


@dataclass(frozen=True, slots=True)
class Step:
    """What the shell does after a snapshot or a delta.

    Attributes:
        advanced: the served index moved forward or was replaced: wake the readers waiting
            for a version, and count the edge current with the core's stream.
        installed: a new index object is served (the shell marks itself ready).
        resync: a gap: ask the core for the stream from this version.
    """

    advanced: bool = False
    installed: bool = False
    resync: int | None = None

    @property
    def gap(self) -> bool:
        """A delta did not follow: count it (``lightcone_gaps_total``)."""
        return self.resync is not None


NOTHING = Step()
INSTALLED = Step(advanced=True, installed=True)
ADVANCED = Step(advanced=True)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one search sent to the core: committed at ``version``, or refused
    (``error``: an ack error of the core such as ``id_conflict``, or :data:`UNSENDABLE`)."""

    id: str
    version: int | None
    error: str | None = None

    @property
    def kept(self) -> bool:
        """Not committed yet (the core's store is down): still queued, to be sent again."""
        return self.error == ACK_STORE_UNAVAILABLE

    def failure(self) -> LightconeError | None:
        """What the writers waiting for this search raise; ``None`` if it was committed."""
        if self.error == ACK_ID_CONFLICT:
            return Conflict.reused_id(self.id)
        if self.error == UNSENDABLE:
            return BadRequest("the search cannot be sent", code="rejected")
        if self.version is None:
            return BadRequest(self.error or "refused", code="rejected")
        return None


class Replica:
    """The edge's copy of the suggestion catalog and the searches waiting for the core."""

    def __init__(self, outbox_max: int) -> None:
        self.index: SuggestIndex | None = None
        """What is served; ``None`` until the first snapshot."""
        self.epoch = ""
        """The database the served data came from (empty: none yet)."""
        self.core_head = -1
        """The newest version the core is known to have (heartbeats, acks, syncs, data)."""
        self.outbox = Outbox(outbox_max)
        self._pending: SuggestIndex | None = None  # a compaction snapshot catching up

    @property
    def version(self) -> int:
        """The served index's version; -1 without one."""
        return self.index.version if self.index is not None else -1

    def hello(self) -> tuple[int, str]:
        """The ``(version, epoch)`` a new link announces: the core resumes from there.

        That is the version the next delta must follow: the pending compaction snapshot's if
        there is one (its catch-up goes on), else the served index's.
        """
        target = self._pending if self._pending is not None else self.index
        return (target.version if target is not None else -1), self.epoch

    def base(self) -> int:
        """The version of the snapshot the data the next delta lands on grew from (-1: none).

        The core sends the current base snapshot again to an edge whose base is another one:
        the set of hot prefixes is the base's, and deltas only maintain the current base's.
        """
        target = self._pending if self._pending is not None else self.index
        return target.base_version if target is not None else -1

    # --- data from the core -------------------------------------------------------------

    def load(self, data: SnapshotData, epoch: str) -> Step:
        """A snapshot (parsed by the shell, off the event loop) of database ``epoch``."""
        fresh = SuggestIndex(data)
        if epoch != self.epoch:
            self.core_head = data.version  # another database: its versions start afresh
        self.heard(data.version)
        if self.index is not None and epoch == self.epoch and data.version < self.index.version:
            self._pending = fresh  # a compaction: catches up before it is served (module doc)
            return NOTHING
        self._install(fresh, epoch)
        return INSTALLED

    def apply(self, delta: Delta) -> Step:
        """The next delta, to the pending index if there is one, else to the served one."""
        self.heard(delta.to_version)
        target = self._pending if self._pending is not None else self.index
        if target is None:
            return NOTHING  # a snapshot is on its way
        try:
            target.apply(delta)
        except GapError:
            return Step(resync=target.version)
        if self._pending is None:
            return ADVANCED
        if self.index is not None and self._pending.version < self.index.version:
            return NOTHING
        self._install(self._pending, self.epoch)
        return INSTALLED

    def heard(self, version: int) -> bool:
        """The core has ``version`` (a heartbeat, a ``synced``): whether the served index
        holds it too (then the edge is current with the core's stream)."""
        self.core_head = max(self.core_head, version)
        return self.index is not None and self.index.version >= version

    def _install(self, index: SuggestIndex, epoch: str) -> None:
        self.index, self.epoch, self._pending = index, epoch, None

    # --- searches -----------------------------------------------------------------------

    def acked(self, acks: SearchAcks) -> list[Outcome]:
        """The core answered searches: forget them; one outcome per ack, in order.

        A search the core could not commit yet (``store_unavailable``) is kept instead,
        unsent again ahead of newer items (:attr:`Outcome.kept`).
        """
        outcomes = []
        for ack in acks.acks:
            if ack.version is not None:
                self.heard(ack.version)
            if ack.error != ACK_STORE_UNAVAILABLE:
                self.outbox.ack(ack.id)
            outcomes.append(Outcome(ack.id, ack.version, ack.error))
        for outcome in reversed(outcomes):  # back in front, in their order
            if outcome.kept:
                self.outbox.retry(outcome.id)
        return outcomes

    def refuse(self, item: SearchItem) -> Outcome:
        """A search that cannot be sent to the core (poison): dropped alone."""
        self.outbox.ack(item.id)
        return Outcome(item.id, None, UNSENDABLE)

    def link_down(self) -> None:
        """The link dropped: searches in flight are sent again (first)."""
        self.outbox.requeue()
