"""The link's own messages (edge ↔ core), whatever the feature: hello, flags, heartbeats,
sync for strict reads, resync after a gap; and the link's frame bounds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from shared.protocol.registry import LINK, Message, message

MAX_LINK_MESSAGE_BYTES = 1 << 20
"""Default of the core's ``LIGHTCONE_MAX_LINK_MESSAGE_BYTES``: larger frames from an edge are
refused (close 1009). The core refuses a setting below :data:`MAX_UP_FRAME_BYTES`."""

MAX_UP_FRAME_BYTES = 256 << 10
"""Largest frame an edge sends the core. Messages that can be long (``searches``,
``room_sync``, ``moves_batch``) are split into several frames below it, whatever the number
of items (see :mod:`edge_node.frames`); small frames also keep a strict read's ``sync`` from
waiting behind a long one."""


@message(LINK)
@dataclass(frozen=True, slots=True)
class Hello(Message):
    """First message of an edge on the link: who it is and which data it holds.

    ``epoch`` names the core database the edge's data came from; versions only compare
    within one epoch (a core on a fresh database starts counting again). ``protocol`` is the
    edge's :data:`PROTOCOL_VERSION`; the core closes the link if it does not talk it.
    """

    TYPE: ClassVar[str] = "hello"
    region: str
    edge_id: str
    version: int
    epoch: str = ""
    protocol: int = 1  # an edge from before versions sends none: it speaks version 1


@message(LINK)
@dataclass(frozen=True, slots=True)
class Flags(Message):
    """Every feature's ``stale_ok`` flag."""

    TYPE: ClassVar[str] = "flags"
    flags: dict[str, bool]


@message(LINK)
@dataclass(frozen=True, slots=True)
class Heartbeat(Message):
    """Sent both ways every heartbeat interval; ``version`` is the sender's published/held one."""

    TYPE: ClassVar[str] = "heartbeat"
    version: int


@message(LINK)
@dataclass(frozen=True, slots=True)
class Sync(Message):
    """Edge asks the core to publish what is pending and to say its head version."""

    TYPE: ClassVar[str] = "sync"
    id: int


@message(LINK)
@dataclass(frozen=True, slots=True)
class Synced(Message):
    """The core's head at the time it read :class:`Sync`; every delta up to it was sent first."""

    TYPE: ClassVar[str] = "synced"
    id: int
    version: int


@message(LINK)
@dataclass(frozen=True, slots=True)
class Resync(Message):
    """Edge found a gap in the delta stream and asks again from ``version``."""

    TYPE: ClassVar[str] = "resync"
    version: int
