"""The edge's suggestion index: a snapshot from the core plus the deltas applied since.

Pure and synchronous. The snapshot is immutable (a marisa trie and arrays); deltas land in a
small overlay that shadows it, and replace the top lists of the hot prefixes they touched.
The core compacts the overlay away by publishing a new snapshot now and then.
"""

from __future__ import annotations

import heapq

from sortedcontainers import SortedList

from shared.protocol import Delta
from shared.snapshot import Entry, SnapshotData, rank

_END = "\U0010ffff"


class GapError(Exception):
    """A delta does not start at the index's version: the edge must resync."""

    def __init__(self, have: int, got: int) -> None:
        super().__init__(f"delta from version {got} does not follow version {have}")
        self.have = have
        self.got = got


class SuggestIndex:
    def __init__(self, snapshot: SnapshotData) -> None:
        self.version = snapshot.version
        self._base = snapshot
        self._hot = dict(snapshot.hot)
        self._overlay: dict[str, Entry | None] = {}
        self._added: SortedList = SortedList()  # overlay keys the base does not have

    @property
    def base_version(self) -> int:
        """The version of the snapshot this index grew from (its hot prefixes are that
        snapshot's)."""
        return self._base.version

    def __len__(self) -> int:
        """Terms in the base snapshot (the overlay is small by design)."""
        return len(self._base)

    @property
    def depth(self) -> int:
        """How many keys each hot list holds: the largest limit answered exactly."""
        return self._base.depth

    @property
    def overlay_size(self) -> int:
        return len(self._overlay)

    def get(self, key: str) -> Entry | None:
        """The served entry for a folded ``key``."""
        if key in self._overlay:
            return self._overlay[key]
        return self._base.get(key)

    def apply(self, delta: Delta) -> None:
        """Apply the next delta.

        Raises:
            GapError: if ``delta.from_version`` is not :attr:`version`; nothing is applied.
        """
        if delta.from_version != self.version:
            raise GapError(self.version, delta.from_version)
        for change in delta.terms:
            entry = Entry(change.key, change.term, change.weight) if change.term else None
            in_base = change.key in self._base.trie
            if not in_base:
                if entry is None:
                    self._added.discard(change.key)
                elif change.key not in self._added:
                    self._added.add(change.key)
            self._overlay[change.key] = entry
        self._hot.update(delta.hot)
        self.version = delta.to_version

    def query(self, prefix: str, limit: int) -> list[Entry]:
        """The top ``limit`` entries whose key starts with the folded ``prefix``."""
        top = self._hot.get(prefix)
        if top is not None:
            found = []
            for key in top:
                entry = self.get(key)
                if entry is not None:
                    found.append(entry)
                    if len(found) == limit:
                        break
            return found
        base, overlay = self._base, self._overlay
        if not overlay:
            # The common case between compactions of a quiet corpus: rank plain tuples and
            # build entries for the winners only.
            weights, terms = base.weights, base.terms
            best = heapq.nsmallest(
                limit, ((-weights[i], key, i) for key, i in base.trie.items(prefix))
            )
            return [Entry(key, terms[i], -w) for w, key, i in best]
        candidates = [self.get(k) for k in base.trie.keys(prefix)]
        candidates += (overlay[k] for k in self._added.irange(prefix, prefix + _END))
        return heapq.nsmallest(limit, (e for e in candidates if e is not None), key=rank)
