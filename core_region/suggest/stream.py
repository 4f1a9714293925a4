"""The published stream: one base snapshot and the deltas after it, as ready-to-send frames.

Pure and synchronous. Frames are encoded once by the caller and the same bytes go to every
edge. An edge that reconnects (or finds a gap) says which version it holds; :meth:`catch_up`
answers with the deltas it lacks, or with the snapshot and every delta after it when its
version is not a point in the stream (too old, or from another database).

A stream grows one delta per publication until the next compaction (under steady writes, 50
a second). An edge that comes back after a while would get thousands of frames, more than a
core queues for one edge (``MAX_QUEUED_FRAMES``: it would be closed as too slow); so past
``merge_above`` deltas, catch-up sends them merged into one (:func:`merged`): the same state
at the head, one frame. The merged frame is kept until the stream changes, for the next edge
that holds the same version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.protocol import Delta, TermChange, decode, encode

MERGE_ABOVE = 64
"""Catch-up sends at most this many deltas as they are; more go merged into one."""


@dataclass(frozen=True, slots=True)
class _Published:
    from_version: int
    to_version: int
    frame: bytes


class Stream:
    def __init__(self, merge_above: int = MERGE_ABOVE) -> None:
        self.base_version: int | None = None
        self.merge_above = merge_above
        self._snapshot: bytes | None = None
        self._deltas: list[_Published] = []
        self._merged: tuple[int, bytes] | None = None  # (first delta's index, merged frame)

    @property
    def head(self) -> int | None:
        """The version an edge holds once it has every frame."""
        return self._deltas[-1].to_version if self._deltas else self.base_version

    def __len__(self) -> int:
        return len(self._deltas)

    def rebase(self, version: int, snapshot_frame: bytes) -> None:
        """Make ``snapshot_frame`` (at ``version``) the base; keep the deltas after it.

        A delta that ends at ``version`` is dropped even if it also starts there (one that
        only resends hot lists, see :meth:`core_region.suggest.catalog.Catalog.install_hot`): the
        snapshot holds that state, and its lists may be for prefixes the snapshot no longer
        has, which nothing would maintain after it.
        """
        self.base_version = version
        self._snapshot = snapshot_frame
        self._deltas = [d for d in self._deltas if d.to_version > version]
        self._merged = None

    def append(self, from_version: int, to_version: int, frame: bytes) -> None:
        """Add a published delta.

        Raises:
            ValueError: if it does not start where the stream ends.
        """
        if from_version != self.head:
            raise ValueError(f"delta from {from_version} does not follow head {self.head}")
        self._deltas.append(_Published(from_version, to_version, frame))
        self._merged = None

    def catch_up(self, have: int, base: int | None = None) -> list[bytes]:
        """Frames that bring an edge holding version ``have`` to :attr:`head`.

        ``base`` is the version of the snapshot the edge's data grew from, if it says: when it
        is not this stream's base, the edge gets the base snapshot whatever ``have`` is. Its
        hot prefixes are its own base's, and the deltas here only maintain this base's (a
        prefix that stopped being hot would keep a list nothing updates).

        Raises:
            RuntimeError: if no snapshot was published yet.
        """
        if self._snapshot is None or self.base_version is None:
            raise RuntimeError("Stream has no snapshot yet. Call 'rebase' first.")
        if base is not None and base != self.base_version:
            return [self._snapshot, *self._since(0)]
        if have == self.head:
            return []
        if have >= self.base_version:
            for i, d in enumerate(self._deltas):
                if d.from_version == have:
                    return self._since(i)
        return [self._snapshot, *self._since(0)]

    def _since(self, first: int) -> list[bytes]:
        """The frames of the deltas from index ``first`` on: as they are, or merged."""
        deltas = self._deltas[first:]
        if len(deltas) <= self.merge_above:
            return [d.frame for d in deltas]
        if self._merged is None or self._merged[0] != first:
            self._merged = (first, merged([d.frame for d in deltas]))
        return [self._merged[1]]


def merged(frames: Sequence[bytes]) -> bytes:
    """One delta frame for consecutive delta ``frames``: each term's last change and each
    hot prefix's last list (a delta carries whole lists), from the first's ``from_version``
    to the last's ``to_version``. Applied, it leaves an edge where the frames would.
    """
    terms: dict[str, TermChange] = {}
    hot: dict[str, list[str]] = {}
    first = last = None
    for frame in frames:
        delta = decode(frame)
        assert isinstance(delta, Delta)
        first = first or delta
        last = delta
        terms.update((t.key, t) for t in delta.terms)
        hot.update(delta.hot)
    assert first is not None and last is not None
    return encode(
        Delta(
            first.from_version,
            last.to_version,
            [terms[k] for k in sorted(terms)],
            {p: hot[p] for p in sorted(hot)},
        )
    )
