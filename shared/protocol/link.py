"""The link's own messages (edge ↔ core), whatever the feature: hello, flags, heartbeats,
sync for strict reads, resync after a gap; and the link's frame bounds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from shared.errors import BadRequest
from shared.protocol.codec import OMIT_NONE
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
BOUNDED = "bounded"
"""Reads answer from the edge's data while it is provably younger than the level's
``max_age_ms``, else as strict."""
SESSION = "session"
"""Reads answer from the edge's data once it has reached the bookmark the client presents
(read-your-writes and monotonic reads across edges), else after one round trip."""
TOLERANT = "tolerant"
"""Reads answer at once from the edge's data, saying how old it is."""
LEVELS = (STRICT, BOUNDED, SESSION, TOLERANT)
"""The consistency levels this build knows, strongest first."""

DEFAULT_MAX_AGE_MS = 3000
"""Default bound of ``bounded`` (the core's ``LIGHTCONE_BOUNDED_MAX_AGE_MS``): three
heartbeats of 1 s. A healthy edge is confirmed current every heartbeat, so its data's age
(confirmed age plus the link's round trip) stays under 1 s plus the round trip: three
heartbeats leave room for one late or lost heartbeat and a 500 ms round trip before a read
pays a round trip to the core. It is also the default ``LIGHTCONE_STALE_AFTER_MS``: a bounded
read answers locally about as long as a tolerant answer is not marked stale."""
MAX_MAX_AGE_MS = 60_000
"""Largest ``max_age_ms`` (flag, setting or request): beyond a minute a bound promises little
more than tolerant, and a cache in front of the edge may keep a bounded answer that long."""


def check_max_age_ms(value: object) -> int:
    """``value`` as a bound of ``bounded``: an integer in 1..:data:`MAX_MAX_AGE_MS`.

    Raises:
        BadRequest: ``bad_max_age_ms`` otherwise.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_MAX_AGE_MS:
        raise BadRequest(
            f"max_age_ms must be a whole number of milliseconds in 1..{MAX_MAX_AGE_MS}, "
            f"got {value!r}",
            code="bad_max_age_ms",
        )
    return value


def stronger(level: str, than: str) -> bool:
    """Whether ``level`` is stronger than ``than`` (both in :data:`LEVELS`)."""
    return LEVELS.index(level) < LEVELS.index(than)


@dataclass(frozen=True, slots=True)
class Level:
    """A feature's flag: its consistency level, and the level's parameters.

    ``params`` holds ``max_age_ms`` for ``bounded`` (on the link and in the store), nothing
    for the other levels. ``stale_ok`` is the older, two-valued view of the same flag: false
    only for strict (an edge from before levels serves every other level as tolerant).
    """

    level: str = TOLERANT
    params: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, stale_ok: bool) -> Level:
        return cls(TOLERANT if stale_ok else STRICT)

    @classmethod
    def bounded(cls, max_age_ms: int) -> Level:
        return cls(BOUNDED, {"max_age_ms": max_age_ms})

    @property
    def stale_ok(self) -> bool:
        return self.level != STRICT

    @property
    def max_age_ms(self) -> int | None:
        """The bound of ``bounded`` (None for the other levels, or if it names none)."""
        return self.params.get("max_age_ms") if self.level == BOUNDED else None

    def as_json(self) -> dict[str, object]:
        """The flag as the HTTP APIs show it (``mode``: the level, under its older name)."""
        return {
            "level": self.level,
            "params": dict(self.params),
            "max_age_ms": self.max_age_ms,
            "stale_ok": self.stale_ok,
            "mode": self.level,
        }

    def known(self, default_max_age_ms: int = DEFAULT_MAX_AGE_MS) -> Level:
        """This level if this build knows it, else strict: a level from a newer core is
        never read as weaker than it is. A ``bounded`` without a valid bound gets
        ``default_max_age_ms``."""
        if self.level not in LEVELS:
            return Level(STRICT)
        bound = self.max_age_ms
        if self.level == BOUNDED and (bound is None or not 1 <= bound <= MAX_MAX_AGE_MS):
            return Level.bounded(default_max_age_ms)
        return self

    def serve(
        self, consistency: str | None, max_age_ms: int | None, default_max_age_ms: int
    ) -> Level:
        """The level a read is served at: this flag's, or the weaker one it asks for.

        ``consistency`` may name this level or a weaker one (:data:`LEVELS`); ``max_age_ms``
        goes with ``consistency=bounded`` only, and the bound is then the larger of it and
        this flag's own (``default_max_age_ms`` when this flag is not bounded): a request
        only ever weakens. Pure.

        Raises:
            BadRequest: ``bad_consistency`` (no such level), ``consistency_too_strong``
                (stronger than the flag), ``bad_max_age_ms``.
        """
        if consistency is None:
            if max_age_ms is None:
                return self
            raise BadRequest("max_age_ms goes with consistency=bounded", code="bad_max_age_ms")
        if consistency not in LEVELS:
            raise BadRequest(
                f"consistency must be one of {', '.join(LEVELS)}, got {consistency!r}",
                code="bad_consistency",
            )
        if stronger(consistency, self.level):
            raise BadRequest(
                f"consistency {consistency!r} is stronger than the feature's level "
                f"{self.level!r}: a read may only ask for a weaker one",
                code="consistency_too_strong",
            )
        if consistency != BOUNDED:
            if max_age_ms is not None:
                raise BadRequest("max_age_ms goes with consistency=bounded", code="bad_max_age_ms")
            return self if consistency == self.level else Level(consistency)
        own = self.max_age_ms or default_max_age_ms
        wanted = own if max_age_ms is None else max(own, check_max_age_ms(max_age_ms))
        return self if wanted == self.max_age_ms else Level.bounded(wanted)


@message(LINK)
@dataclass(frozen=True, slots=True)
class Flags(Message):
    """Every feature's flag: ``levels`` (level and parameters), and ``flags`` (``stale_ok``,
    for edges from before levels). An edge reads ``levels`` when present.

    ``max_age_ms`` is the core's default bound (``LIGHTCONE_BOUNDED_MAX_AGE_MS``): the bound
    of a read that asks for ``bounded`` when its feature's level is strict. Left off the wire
    while None; an edge that lacks it uses :data:`DEFAULT_MAX_AGE_MS`.
    """

    TYPE: ClassVar[str] = "flags"
    flags: dict[str, bool]
    levels: dict[str, Level] = field(default_factory=dict)
    max_age_ms: int | None = field(default=None, metadata=OMIT_NONE)

    @classmethod
    def of(cls, levels: dict[str, Level], max_age_ms: int | None = None) -> Flags:
        return cls({f: lv.stale_ok for f, lv in levels.items()}, dict(levels), max_age_ms)

    def default_max_age_ms(self) -> int:
        """The core's default bound, or :data:`DEFAULT_MAX_AGE_MS` if it sent none valid."""
        bound = self.max_age_ms
        return bound if bound is not None and 1 <= bound <= MAX_MAX_AGE_MS else DEFAULT_MAX_AGE_MS

    def read(self) -> dict[str, Level]:
        """Each feature's level, from ``levels`` or else from ``flags``."""
        if self.levels:
            default = self.default_max_age_ms()
            return {f: lv.known(default) for f, lv in self.levels.items()}
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
