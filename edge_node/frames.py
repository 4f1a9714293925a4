"""Frames an edge sends up the link: each within a byte budget, poison dropped alone.

Pure. :func:`frames` turns one message into the frames that carry it. The messages whose size
grows with their content (``searches``, ``moves_batch``, ``room_sync``) are split into several
frames of the same type, each within ``max_bytes`` (by default
:data:`~shared.protocol.MAX_UP_FRAME_BYTES`, below the core's 1 MiB limit), whatever the
number of items. An item that cannot be encoded at all (a string that is not Unicode scalar
values, a number out of range) or that alone exceeds the budget is returned apart, so the
caller drops that item alone and the rest still flows.

Splitting halves a chunk until it fits (one encode in the common case that the whole message
fits; O(n log n) encodes at worst), so frames are at least a quarter of the budget full
except the last ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from shared.protocol import (
    MAX_UP_FRAME_BYTES,
    Member,
    Message,
    MovesBatch,
    RoomSync,
    Searches,
    encode,
)

T = TypeVar("T")

_PART_PLACEHOLDER = 2**31
"""Sizes of ``room_sync`` parts are measured with the widest ``part`` they could carry."""

Framed = tuple[list[bytes], list[Any]]
"""The frames to send, and the items (or the whole message) dropped."""


def frames(message: Message, max_bytes: int = MAX_UP_FRAME_BYTES) -> Framed:
    """The frames that carry ``message`` (several for a long one), and what was dropped."""
    if isinstance(message, Searches):
        return _framed(_chunks(message.searches, Searches, max_bytes))
    if isinstance(message, MovesBatch):
        return _framed(_chunks(message.batches, MovesBatch, max_bytes))
    if isinstance(message, RoomSync):
        return _room_sync(message, max_bytes)
    frame = _encoded(message)
    if frame is None or len(frame) > max_bytes:
        return [], [message]
    return [frame], []


def _encoded(message: Message) -> bytes | None:
    try:
        return encode(message)
    except Exception:  # an unencodable value, whatever the codec raises for it
        return None


def _chunks(
    items: Sequence[T], make: Callable[[list[T]], Message], max_bytes: int
) -> tuple[list[tuple[list[T], bytes]], list[T]]:
    """Consecutive chunks of ``items`` whose ``make(chunk)`` encodes within ``max_bytes``, with
    those frames, in order; and the items that do not encode (or fit) even alone."""
    good: list[tuple[list[T], bytes]] = []
    bad: list[T] = []

    def visit(chunk: list[T]) -> None:
        frame = _encoded(make(chunk))
        if frame is not None and len(frame) <= max_bytes:
            good.append((chunk, frame))
        elif len(chunk) <= 1:
            bad.extend(chunk)
        else:
            middle = len(chunk) // 2
            visit(chunk[:middle])
            visit(chunk[middle:])

    visit(list(items))
    return good, bad


def _framed(chunked: tuple[list[tuple[list[T], bytes]], list[T]]) -> Framed:
    good, bad = chunked
    return [frame for chunk, frame in good if chunk], list(bad)


Pair = tuple[str, Member]


def _rooms(pairs: list[Pair]) -> dict[str, list[Member]]:
    rooms: dict[str, list[Member]] = {}
    for room, member in pairs:
        rooms.setdefault(room, []).append(member)
    return rooms


def _room_sync(message: RoomSync, max_bytes: int) -> Framed:
    """``room_sync`` in numbered parts; always at least one (an empty sync says "none")."""
    pairs = [(room, m) for room, members in message.rooms.items() for m in members]

    def measured(chunk: list[Pair]) -> RoomSync:
        return RoomSync(_rooms(chunk), part=_PART_PLACEHOLDER, final=False)

    good, bad = _chunks(pairs, measured, max_bytes)
    chunks = [chunk for chunk, _ in good if chunk] or [[]]
    out = [
        encode(RoomSync(_rooms(chunk), part=n, final=n == len(chunks) - 1))
        for n, chunk in enumerate(chunks)
    ]
    return out, list(bad)
