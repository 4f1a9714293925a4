"""The cursor feature's messages: client ↔ edge, and relayed on the link."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from shared.protocol.codec import OMIT_NONE
from shared.protocol.common import RequestId
from shared.protocol.registry import CLIENT, LINK, Message, message


@dataclass(frozen=True, slots=True)
class Member:
    """A room member as others see it. ``x``/``y`` are integers in 0..10000."""

    id: str
    name: str
    color: str
    region: str
    x: int = 0
    y: int = 0
    reachable: bool = True


@dataclass(frozen=True, slots=True)
class Position:
    """A member's position. ``n``: the member's move counter, set by its edge on the link
    and the mesh (tolerant rooms), so a position that reaches an edge by both paths is shown
    once and never after a newer one; clients never see it."""

    id: str
    x: int
    y: int
    n: int | None = field(default=None, metadata=OMIT_NONE)


@message(CLIENT)
@dataclass(frozen=True, slots=True)
class Join(Message):
    """Client joins ``room``; a ``session`` (client-made, secret) makes a reconnect the same
    member instead of a second one. ``token``: a room token (:mod:`shared.roomtoken`), needed
    where the edge runs with ``LIGHTCONE_ROOM_AUTH=token``. An ``id``, if given, is echoed in
    an error answering it."""

    TYPE: ClassVar[str] = "join"
    room: str
    name: str
    color: str
    session: str | None = None
    token: str | None = None
    id: RequestId | None = None


@message(CLIENT)
@dataclass(frozen=True, slots=True)
class Move(Message):
    """Client moves its cursor in ``room`` (may be omitted when it is in one room)."""

    TYPE: ClassVar[str] = "move"
    x: int
    y: int
    room: str | None = None


@message(CLIENT)
@dataclass(frozen=True, slots=True)
class Leave(Message):
    """Client leaves ``room`` (may be omitted when it is in one room). An ``id``, if given,
    is echoed in an error answering it."""

    TYPE: ClassVar[str] = "leave"
    room: str | None = None
    id: RequestId | None = None


@message(CLIENT)
@dataclass(frozen=True, slots=True)
class Presence(Message):
    """Who is in ``room`` (sent on join, and again after missed frames or a heal)."""

    TYPE: ClassVar[str] = "presence"
    room: str
    you: str
    members: list[Member]
    mode: str
    reachable: bool = True


@message(CLIENT)
@dataclass(frozen=True, slots=True)
class RoomStatus(Message):
    """The room's reach changed: remote members ``unreachable``, or moves ``paused``."""

    TYPE: ClassVar[str] = "room_status"
    room: str
    mode: str
    reachable: bool
    paused: bool
    unreachable: list[str] = field(default_factory=list)
    direct: list[str] | None = field(default=None, metadata=OMIT_NONE)
    """While the edge is cut off from the core: the regions of the room's members whose
    moves still flow directly over the edge mesh (absent otherwise)."""


@message(CLIENT, LINK)
@dataclass(frozen=True, slots=True)
class Moves(Message):
    """Positions that changed in ``room``; ``seq`` is the core's order in strict mode.

    On the link the same message carries an edge's batch up, and the core's relay down.
    ``meshed`` (up only): the regions that already got this batch over the edge mesh, which
    the core does not relay it to.
    """

    TYPE: ClassVar[str] = "moves"
    room: str
    moves: list[Position]
    seq: int | None = None
    meshed: list[str] | None = field(default=None, metadata=OMIT_NONE)


@message(CLIENT, LINK)
@dataclass(frozen=True, slots=True)
class Joined(Message):
    TYPE: ClassVar[str] = "joined"
    room: str
    member: Member


@message(CLIENT, LINK)
@dataclass(frozen=True, slots=True)
class Left(Message):
    """``reason``: ``leave``, ``disconnect``, ``timeout`` or ``evicted``."""

    TYPE: ClassVar[str] = "left"
    room: str
    id: str
    reason: str


@message(LINK)
@dataclass(frozen=True, slots=True)
class MovesBatch(Message):
    """Every room's :class:`Moves` of one tick, in one link frame (both ways).

    Up, an edge's tick; down, the core's relay of one incoming batch to one edge (the core
    forwards at once, with no timer of its own). Bounded by :data:`MAX_UP_FRAME_BYTES` up.
    """

    TYPE: ClassVar[str] = "moves_batch"
    batches: list[Moves]


@message(LINK)
@dataclass(frozen=True, slots=True)
class RoomSync(Message):
    """Edge → core on every (re)connect: every local member of every room it serves.

    Sent in parts, each frame within :data:`MAX_UP_FRAME_BYTES`: ``part`` counts from 0 (part
    0 starts a sync) and the part with ``final`` ends it. The sync as a whole replaces what
    the core had for the edge: members no part listed are dropped when the final part
    arrives. A room's members may be spread over several parts.
    """

    TYPE: ClassVar[str] = "room_sync"
    rooms: dict[str, list[Member]]
    part: int = 0
    final: bool = True


@message(LINK)
@dataclass(frozen=True, slots=True)
class RoomState(Message):
    """Core → edge: the members of ``room`` on *other* edges, replacing what the edge had."""

    TYPE: ClassVar[str] = "room_state"
    room: str
    members: list[Member]


@message(LINK)
@dataclass(frozen=True, slots=True)
class Reach(Message):
    """Core → edge: members whose edge the core lost (or found again)."""

    TYPE: ClassVar[str] = "reach"
    room: str
    ids: list[str]
    reachable: bool


@message(LINK)
@dataclass(frozen=True, slots=True)
class Evict(Message):
    """Core → edge: the member rejoined through another edge; drop it here silently."""

    TYPE: ClassVar[str] = "evict"
    room: str
    id: str
