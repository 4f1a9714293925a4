"""The link's own messages (edge ↔ core), whatever the feature: hello, flags, heartbeats,
sync for strict reads, resync after a gap; and the link's frame bounds."""

from __future__ import annotations

from dataclasses import dataclass, field
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
    versions: dict[str, int] = field(default_factory=dict)
    """The version each feature with data holds (-1: none). ``version`` is the
    suggestion catalog's, for cores from before per-feature versions. The keys are the
    features the edge has: a core sends none of another feature's frames."""
    bases: dict[str, int] = field(default_factory=dict)
    """For features whose data grows from a snapshot: the version of that snapshot. A core
    sends the current one again to an edge whose base is another (docs/protocol.md §9.4)."""


STRICT = "strict"
"""Every read waits for the core's head first: one round trip, fails fast in a partition."""
TOLERANT = "tolerant"
"""Reads answer at once from the edge's data, saying how old it is."""
LEVELS = (STRICT, TOLERANT)
"""The consistency levels this build knows, strongest first."""


@dataclass(frozen=True, slots=True)
class Level:
    """A feature's flag: its consistency level, and the level's parameters (none yet).

    ``stale_ok`` is the older, two-valued view of the same flag: false only for strict.
    """

    level: str = TOLERANT
    params: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, stale_ok: bool) -> Level:
        return cls(TOLERANT if stale_ok else STRICT)

    @property
    def stale_ok(self) -> bool:
        return self.level != STRICT

    def as_json(self) -> dict[str, object]:
        """The flag as the HTTP APIs show it (``mode``: the level, under its older name)."""
        return {
            "level": self.level,
            "params": dict(self.params),
            "stale_ok": self.stale_ok,
            "mode": self.level,
        }

    def known(self) -> Level:
        """This level if this build knows it, else strict: a level from a newer core is
        never read as weaker than it is."""
        return self if self.level in LEVELS else Level(STRICT)


@message(LINK)
@dataclass(frozen=True, slots=True)
class Flags(Message):
    """Every feature's flag: ``levels`` (level and parameters), and ``flags`` (``stale_ok``,
    for edges from before levels). An edge reads ``levels`` when present."""

    TYPE: ClassVar[str] = "flags"
    flags: dict[str, bool]
    levels: dict[str, Level] = field(default_factory=dict)

    @classmethod
    def of(cls, levels: dict[str, Level]) -> Flags:
        return cls({f: lv.stale_ok for f, lv in levels.items()}, dict(levels))

    def read(self) -> dict[str, Level]:
        """Each feature's level, from ``levels`` or else from ``flags``."""
        if self.levels:
            return {f: lv.known() for f, lv in self.levels.items()}
        return {f: Level.of(ok) for f, ok in self.flags.items()}


@message(LINK)
@dataclass(frozen=True, slots=True)
class Heartbeat(Message):
    """Sent both ways every heartbeat interval.

    From the core: ``version`` is the published head (every version up to it has been sent)
    and ``versions`` the last global version that changed each feature with data. From an
    edge: what it holds (``version`` as in :class:`Hello`).
    """

    TYPE: ClassVar[str] = "heartbeat"
    version: int
    versions: dict[str, int] = field(default_factory=dict)


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
    versions: dict[str, int] = field(default_factory=dict)
    """Each feature's version at that head (as in :class:`Heartbeat`)."""


@message(LINK)
@dataclass(frozen=True, slots=True)
class Resync(Message):
    """Edge found a gap in a feature's stream and asks again from the version it holds.

    ``versions`` names the features to catch up, each with the version it holds; without it
    (an edge from before per-feature versions) the feature whose version ``version`` carried
    catches up from ``version``.
    """

    TYPE: ClassVar[str] = "resync"
    version: int
    versions: dict[str, int] = field(default_factory=dict)
