"""How the cursor feature's long link messages are split (see :mod:`edge_node.frames`):
``moves_batch`` by room batches, ``room_sync`` in numbered parts by member."""

from __future__ import annotations

from edge_node import frames
from edge_node.frames import Framed
from shared.protocol import Member, MovesBatch, RoomSync, encode

_PART_PLACEHOLDER = 2**31
"""Sizes of ``room_sync`` parts are measured with the widest ``part`` they could carry."""

Pair = tuple[str, Member]


def _rooms(pairs: list[Pair]) -> dict[str, list[Member]]:
    rooms: dict[str, list[Member]] = {}
    for room, member in pairs:
        rooms.setdefault(room, []).append(member)
    return rooms


def room_sync_parts(message: RoomSync, max_bytes: int) -> Framed:
    """``room_sync`` in numbered parts; always at least one (an empty sync says "none")."""
    pairs = [(room, m) for room, members in message.rooms.items() for m in members]

    def measured(chunk: list[Pair]) -> RoomSync:
        return RoomSync(_rooms(chunk), part=_PART_PLACEHOLDER, final=False)

    good, bad = frames.chunks(pairs, measured, max_bytes)
    parts = [chunk for chunk, _ in good if chunk] or [[]]
    out = [
        encode(RoomSync(_rooms(chunk), part=n, final=n == len(parts) - 1))
        for n, chunk in enumerate(parts)
    ]
    return out, list(bad)


frames.splits(MovesBatch, frames.by_items("batches", MovesBatch))
frames.splits(RoomSync, room_sync_parts)
