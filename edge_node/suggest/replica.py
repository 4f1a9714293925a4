"""The edge's copy of the suggestion catalog: snapshots, deltas, gaps, write acks. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from edge_node.suggest.index import GapError, SuggestIndex
from edge_node.suggest.outbox import Outbox
from shared.protocol import ACK_ID_CONFLICT, Delta, SearchAcks, SearchItem
from shared.snapshot import SnapshotData


@dataclass(frozen=True, slots=True)
class Step:
    """What the shell must do after a snapshot or a delta."""

    advanced: bool = False
    """The served index moved forward (or a new one was installed)."""
    installed: bool = False
    """A new index object is served now."""
    restarted: bool = False
    """The data comes from another database (epoch): versions start afresh."""
    resync: int | None = None
    """A gap: ask the core again from this version."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """A write's fate: committed at ``version``, or refused with ``error``."""

    id: str
    version: int | None
    error: str | None = None


class Replica:
    def __init__(self, outbox_max: int) -> None:
        self.index: SuggestIndex | None = None
        self.epoch = ""
        self.core_head = -1
        self.outbox = Outbox(outbox_max)
        self._pending: SuggestIndex | None = None  # a compaction snapshot catching up

    @property
    def version(self) -> int:
        return self.index.version if self.index else -1

    def load(self, data: SnapshotData, epoch: str) -> Step:
        fresh = SuggestIndex(data)
        restarted = epoch != self.epoch
        if restarted:
            self.core_head = data.version  # another database: its versions start afresh
        self.heard(data.version)
        current = self.index
        if current is not None and not restarted and data.version < current.version:
            # A compaction snapshot older than what is served, with the deltas since right
            # behind it: keep serving the current index until the new one has caught up, so
            # answers never go back in time.
            self._pending = fresh
            return Step()
        self._install(fresh, epoch)
        return Step(advanced=True, installed=True, restarted=restarted)

    def _install(self, index: SuggestIndex, epoch: str) -> None:
        self.index, self.epoch, self._pending = index, epoch, None

    def apply(self, delta: Delta) -> Step:
        self.heard(delta.to_version)
        target = self._pending or self.index
        if target is None:
            return Step()  # a snapshot is on its way: hello said we hold nothing
        try:
            target.apply(delta)
        except GapError:
            return Step(resync=target.version)
        if self._pending is not None:
            if self.index is not None and self._pending.version < self.index.version:
                return Step()
            self._install(self._pending, self.epoch)
            return Step(advanced=True, installed=True)
        return Step(advanced=True)

    def heard(self, version: int) -> None:
        self.core_head = max(self.core_head, version)

    def acked(self, acks: SearchAcks) -> list[Outcome]:
        out = []
        for ack in acks.acks:
            if ack.version is not None:
                self.heard(ack.version)
            self.outbox.ack(ack.id)
            if ack.error == ACK_ID_CONFLICT or ack.version is None:
                out.append(Outcome(ack.id, None, ack.error or "refused"))
            else:
                out.append(Outcome(ack.id, ack.version))
        return out

    def refuse(self, item: SearchItem) -> None:
        self.outbox.ack(item.id)

    def link_down(self) -> None:
        self.outbox.requeue()
