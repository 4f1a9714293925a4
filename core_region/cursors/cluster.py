"""What a core node tells the others of its edges' rooms over the broker: a private envelope.

An event is the msgpack array ``[edge id, message]``: ``message`` is the wire map of what the
edge said on its link (``room_sync``, ``joined``, ``left``, ``moves``, ``moves_batch``,
``mesh_peers``), or
nil for "the edge's link dropped". Decoding is the link's (unknown fields dropped, every known
one checked, :func:`shared.protocol.from_wire`) and then refuses any other message type: a
payload from Redis is trusted no more than an edge's frame.
"""

from __future__ import annotations

from shared.errors import ProtocolError
from shared.protocol import (
    Joined,
    Left,
    MeshPeers,
    Message,
    Moves,
    MovesBatch,
    RoomSync,
    from_wire,
    pack,
    to_wire,
    unpack,
)
from shared.text import is_text

CHANNEL = "cursors"
"""The broker channel of the edges' room events and tolerant moves."""

ORDERED_CHANNEL = "cursors.strict"
"""The broker channel of strict moves, numbered per room (``seq``)."""

RELAYED: tuple[type[Message], ...] = (RoomSync, Joined, Left, Moves, MovesBatch, MeshPeers)
"""What an event may carry."""

MAX_EDGE_ID_CHARS = 256
"""Longest edge id accepted in an event."""

ANNOUNCE_PART_MEMBERS = 200
"""Members per ``room_sync`` part when a node re-announces an edge (a part stays far below
the broker's message bound)."""


def counter(room: str) -> str:
    """The broker counter that numbers ``room``'s strict moves."""
    return f"seq:{room}"


def encode_event(edge: str, message: Message | None) -> bytes:
    """``edge`` said ``message`` (None: its link dropped)."""
    return pack([edge, None if message is None else to_wire(message)])


def decode_event(data: bytes) -> tuple[str, Message | None]:
    """Inverse of :func:`encode_event`.

    Raises:
        ProtocolError: not an event, or a message that is not one of :data:`RELAYED`.
    """
    raw = unpack(data)
    if not isinstance(raw, list) or len(raw) != 2:
        raise ProtocolError("a cursor event is [edge, message]")
    edge, wire = raw
    if not isinstance(edge, str) or not 0 < len(edge) <= MAX_EDGE_ID_CHARS or not is_text(edge):
        raise ProtocolError("a cursor event's edge is an edge id")
    if wire is None:
        return edge, None
    message = from_wire(wire, strict=False)
    if not isinstance(message, RELAYED):
        raise ProtocolError(f"a cursor event does not carry {message.TYPE!r}")
    return edge, message
