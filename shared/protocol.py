"""Every message on the wire, and the one codec for them.

Two conversations use these messages:

* **client ↔ edge** on the edge's ``/ws`` (and, for the same shapes, its HTTP routes):
  ``suggest``/``suggestions``, ``search``/``search_ack``, ``error``; for cursors ``join``,
  ``move``, ``leave``, ``ping``/``pong``, ``presence``, ``moves``, ``joined``, ``left``,
  ``room_status``.
* **edge ↔ core** on the core's ``/link``: ``hello``, ``snapshot``, ``delta``, ``flags``,
  ``heartbeat``, ``sync``/``synced``, ``resync``, ``searches``/``search_acks``, ``error``; for
  cursors ``room_sync``, ``room_state``, ``joined``, ``left``, ``moves``,
  ``moves_batch``, ``reach``, ``evict``.

A message is a frozen dataclass; on the wire it is a map whose ``type`` field names the class
and whose other keys are the dataclass fields. Two codecs carry that map: msgpack (binary
frames, the default, and the only one on the link) and JSON (text frames, for browsers).
``msgpack`` is imported nowhere else, so the format changes here or nowhere.

Decoding checks every field against the dataclass annotations (ints are ints, not bools;
floats are finite; ``X | None`` may be absent only where the field has a default; every string,
map keys included, is text by :func:`shared.text.is_text`) and raises
:class:`~shared.errors.ProtocolError` otherwise, so handlers only ever see well-typed messages
and nothing decoded can fail to encode again.

Decoding is direction-aware (docs/protocol.md, "Versions and compatibility"): a client's
messages to the edge are *strict* (an unknown field is refused), while messages on the link
(both ways) and from server to client are decoded with ``strict=False``, which drops fields
this build does not know, so a newer peer can add optional fields without breaking an older
one. Known fields are checked the same either way; dropped fields never reach a handler and
cost no more memory than the frame that carried them (bounded by the frame limits).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

import msgpack  # type: ignore[import-untyped]

from shared.errors import ProtocolError
from shared.text import is_text, not_text_message

RequestId = str | int
"""A client's request id, echoed in the answer."""

PROTOCOL_VERSION = 1
"""The wire protocol this build speaks: sent in :class:`Hello` and in the client subprotocol.
Bumped by a change an older peer cannot ignore (docs/protocol.md, "Versions and
compatibility")."""

MIN_PROTOCOL_VERSION = 1
"""The oldest protocol version this build still talks (with edges and with clients)."""


def subprotocol(codec: str, version: int = PROTOCOL_VERSION) -> str:
    """The client websocket subprotocol of ``codec`` (``msgpack``/``json``) at ``version``."""
    return f"lightcone.{codec}.v{version}"


SUBPROTOCOL_MSGPACK = subprotocol("msgpack")
SUBPROTOCOL_JSON = subprotocol("json")
LEGACY_SUBPROTOCOLS = {"lightcone.msgpack": "msgpack", "lightcone.json": "json"}
"""The names from before versions; they mean version 1."""


def talks(version: int) -> bool:
    """Whether this build talks protocol ``version``."""
    return MIN_PROTOCOL_VERSION <= version <= PROTOCOL_VERSION


def check_protocol(version: int) -> None:
    """Refuse a peer's protocol ``version`` this build does not talk.

    Raises:
        ProtocolError: ``unsupported_protocol``, naming the range this build talks.
    """
    if not talks(version):
        raise ProtocolError(
            f"protocol version {version} is not supported: this build talks versions "
            f"{MIN_PROTOCOL_VERSION} to {PROTOCOL_VERSION}",
            code="unsupported_protocol",
        )


def choose_subprotocol(offered: Iterable[str]) -> tuple[str | None, bool]:
    """The subprotocol to accept among a client's ``offered`` ones, and whether it is JSON.

    JSON wins when offered (a browser), then the highest version this build talks; the
    legacy names count as version 1. ``(None, False)``, msgpack without a subprotocol, when
    nothing offered is ours.
    """
    best: tuple[bool, int, str] | None = None
    for name in offered:
        match = _SUBPROTOCOL.fullmatch(name)
        if match:
            codec, version = match[1], int(match[2])
        elif name in LEGACY_SUBPROTOCOLS:
            codec, version = LEGACY_SUBPROTOCOLS[name], 1
        else:
            continue
        if talks(version):
            candidate = (codec == "json", version, name)
            best = candidate if best is None else max(best, candidate)
    return (best[2], best[0]) if best else (None, False)


_SUBPROTOCOL = re.compile(r"lightcone\.(msgpack|json)\.v([1-9][0-9]{0,5})")


_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1

MAX_LINK_MESSAGE_BYTES = 1 << 20
"""Default of the core's ``LIGHTCONE_MAX_LINK_MESSAGE_BYTES``: larger frames from an edge are
refused (close 1009). The core refuses a setting below :data:`MAX_UP_FRAME_BYTES`."""

MAX_UP_FRAME_BYTES = 256 << 10
"""Largest frame an edge sends the core. Messages that can be long (``searches``,
``room_sync``, ``moves_batch``) are split into several frames below it, whatever the number
of items (see :mod:`edge_node.frames`); small frames also keep a strict read's ``sync`` from
waiting behind a long one."""


# --- client <-> edge ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Suggest:
    """Client asks for completions of ``q``."""

    TYPE: ClassVar[str] = "suggest"
    id: RequestId
    q: str
    limit: int = 10
    min_version: int | None = None


@dataclass(frozen=True, slots=True)
class Item:
    """One suggestion: the display form and its weight."""

    term: str
    weight: int


@dataclass(frozen=True, slots=True)
class Suggestions:
    """The answer to :class:`Suggest`; says how fresh it is and in which mode it was served."""

    TYPE: ClassVar[str] = "suggestions"
    id: RequestId | None
    items: list[Item]
    version: int
    age_ms: int
    mode: str
    stale: bool
    region: str


@dataclass(frozen=True, slots=True)
class Search:
    """Client logs a search; ``id`` is made by the client and makes the write idempotent."""

    TYPE: ClassVar[str] = "search"
    id: str
    q: str


@dataclass(frozen=True, slots=True)
class SearchAck:
    """``status`` is ``committed`` (with the version it produced) or ``queued``."""

    TYPE: ClassVar[str] = "search_ack"
    id: str
    status: str
    version: int | None


@dataclass(frozen=True, slots=True)
class Error:
    """Something in a request was refused; ``code`` is one of the names in docs/protocol.md.

    ``id`` is the request's own id when it had one; ``room`` names the room of the
    ``join`` or ``leave`` it answers (so an answer to a request without an id is still
    matched to it), and is ``None`` otherwise.
    """

    TYPE: ClassVar[str] = "error"
    id: RequestId | None
    code: str
    message: str
    room: str | None = None


# --- edge <-> core -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
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


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The whole serving structure at ``version`` of database ``epoch`` (see
    :mod:`shared.snapshot`)."""

    TYPE: ClassVar[str] = "snapshot"
    version: int
    data: bytes
    epoch: str = ""


@dataclass(frozen=True, slots=True)
class TermChange:
    """A term's new state; ``term`` is ``None`` when it is no longer served."""

    key: str
    term: str | None
    weight: int


@dataclass(frozen=True, slots=True)
class Delta:
    """What changed from ``from_version`` to ``to_version``.

    ``hot`` replaces the precomputed top keys of the hot prefixes the change touched.
    """

    TYPE: ClassVar[str] = "delta"
    from_version: int
    to_version: int
    terms: list[TermChange]
    hot: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Flags:
    """Every feature's ``stale_ok`` flag."""

    TYPE: ClassVar[str] = "flags"
    flags: dict[str, bool]


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Sent both ways every heartbeat interval; ``version`` is the sender's published/held one."""

    TYPE: ClassVar[str] = "heartbeat"
    version: int


@dataclass(frozen=True, slots=True)
class Sync:
    """Edge asks the core to publish what is pending and to say its head version."""

    TYPE: ClassVar[str] = "sync"
    id: int


@dataclass(frozen=True, slots=True)
class Synced:
    """The core's head at the time it read :class:`Sync`; every delta up to it was sent first."""

    TYPE: ClassVar[str] = "synced"
    id: int
    version: int


@dataclass(frozen=True, slots=True)
class Resync:
    """Edge found a gap in the delta stream and asks again from ``version``."""

    TYPE: ClassVar[str] = "resync"
    version: int


@dataclass(frozen=True, slots=True)
class SearchItem:
    """A logged search on the link. ``source`` is the salted hash of the client's address
    the edge saw (:mod:`edge_node.sources`); the core counts distinct sources per term.
    Empty when unknown: it then counts for no source."""

    id: str
    q: str
    source: str = ""


MAX_SOURCE_CHARS = 64
"""A longer ``SearchItem.source`` counts for no source (edges send 32 hex characters)."""


@dataclass(frozen=True, slots=True)
class Searches:
    """A batch of logged searches from one edge."""

    TYPE: ClassVar[str] = "searches"
    searches: list[SearchItem]


@dataclass(frozen=True, slots=True)
class AckItem:
    """``version`` the write produced (or produced the first time); if refused, ``version``
    is ``None`` and ``error`` is one of :data:`ACK_ERRORS`."""

    id: str
    version: int | None
    error: str | None = None


ACK_INVALID = "invalid_search"
"""Ack error: the search failed the core's own checks (the edge answers ``rejected``)."""
ACK_ID_CONFLICT = "id_conflict"
"""Ack error: the id was committed before with another ``q`` (the edge answers 409)."""
ACK_ERRORS = (ACK_INVALID, ACK_ID_CONFLICT)


@dataclass(frozen=True, slots=True)
class SearchAcks:
    TYPE: ClassVar[str] = "search_acks"
    acks: list[AckItem]


# --- cursors: client <-> edge, and relayed on the link ----------------------------------


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
    id: str
    x: int
    y: int


@dataclass(frozen=True, slots=True)
class Join:
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


@dataclass(frozen=True, slots=True)
class Move:
    """Client moves its cursor in ``room`` (may be omitted when it is in one room)."""

    TYPE: ClassVar[str] = "move"
    x: int
    y: int
    room: str | None = None


@dataclass(frozen=True, slots=True)
class Leave:
    """Client leaves ``room`` (may be omitted when it is in one room). An ``id``, if given,
    is echoed in an error answering it."""

    TYPE: ClassVar[str] = "leave"
    room: str | None = None
    id: RequestId | None = None


@dataclass(frozen=True, slots=True)
class Ping:
    """Keeps a quiet member present; answered with :class:`Pong`."""

    TYPE: ClassVar[str] = "ping"
    id: RequestId | None = None


@dataclass(frozen=True, slots=True)
class Pong:
    TYPE: ClassVar[str] = "pong"
    id: RequestId | None = None


@dataclass(frozen=True, slots=True)
class Presence:
    """Who is in ``room`` (sent on join, and again after missed frames or a heal)."""

    TYPE: ClassVar[str] = "presence"
    room: str
    you: str
    members: list[Member]
    mode: str
    reachable: bool = True


@dataclass(frozen=True, slots=True)
class Moves:
    """Positions that changed in ``room``; ``seq`` is the core's order in strict mode.

    On the link the same message carries an edge's batch up, and the core's relay down.
    """

    TYPE: ClassVar[str] = "moves"
    room: str
    moves: list[Position]
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class Joined:
    TYPE: ClassVar[str] = "joined"
    room: str
    member: Member


@dataclass(frozen=True, slots=True)
class Left:
    """``reason``: ``leave``, ``disconnect``, ``timeout`` or ``evicted``."""

    TYPE: ClassVar[str] = "left"
    room: str
    id: str
    reason: str


@dataclass(frozen=True, slots=True)
class RoomStatus:
    """The room's reach changed: remote members ``unreachable``, or moves ``paused``."""

    TYPE: ClassVar[str] = "room_status"
    room: str
    mode: str
    reachable: bool
    paused: bool
    unreachable: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MovesBatch:
    """Every room's :class:`Moves` of one tick, in one link frame (both ways).

    Up, an edge's tick; down, the core's relay of one incoming batch to one edge (the core
    forwards at once, with no timer of its own). Bounded by :data:`MAX_UP_FRAME_BYTES` up.
    """

    TYPE: ClassVar[str] = "moves_batch"
    batches: list[Moves]


@dataclass(frozen=True, slots=True)
class RoomSync:
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


@dataclass(frozen=True, slots=True)
class RoomState:
    """Core → edge: the members of ``room`` on *other* edges, replacing what the edge had."""

    TYPE: ClassVar[str] = "room_state"
    room: str
    members: list[Member]


@dataclass(frozen=True, slots=True)
class Reach:
    """Core → edge: members whose edge the core lost (or found again)."""

    TYPE: ClassVar[str] = "reach"
    room: str
    ids: list[str]
    reachable: bool


@dataclass(frozen=True, slots=True)
class Evict:
    """Core → edge: the member rejoined through another edge; drop it here silently."""

    TYPE: ClassVar[str] = "evict"
    room: str
    id: str


ClientMessage = (
    Suggest
    | Suggestions
    | Search
    | SearchAck
    | Error
    | Join
    | Move
    | Leave
    | Ping
    | Pong
    | Presence
    | Moves
    | Joined
    | Left
    | RoomStatus
)
"""Messages on an edge's ``/ws``."""

LinkMessage = (
    Hello
    | Snapshot
    | Delta
    | Flags
    | Heartbeat
    | Sync
    | Synced
    | Resync
    | Searches
    | SearchAcks
    | Error
    | RoomSync
    | RoomState
    | Reach
    | Evict
    | Joined
    | Left
    | Moves
    | MovesBatch
)
"""Messages on the edge ↔ core link."""

Message = ClientMessage | LinkMessage
"""Every message lightcone sends."""

_TYPES: dict[str, type[Any]] = {
    cls.TYPE: cls
    for cls in (
        Suggest,
        Suggestions,
        Search,
        SearchAck,
        Error,
        Hello,
        Snapshot,
        Delta,
        Flags,
        Heartbeat,
        Sync,
        Synced,
        Resync,
        Searches,
        SearchAcks,
        Join,
        Move,
        Leave,
        Ping,
        Pong,
        Presence,
        Moves,
        MovesBatch,
        Joined,
        Left,
        RoomStatus,
        RoomSync,
        RoomState,
        Reach,
        Evict,
    )
}


# --- codec -------------------------------------------------------------------------------


def encode(message: Message) -> bytes:
    """Serialize ``message`` as a msgpack map (a binary frame)."""
    return pack(to_wire(message))


def pack(value: Any) -> bytes:
    """msgpack of a plain value; for payloads carried inside messages (snapshot data)."""
    data: bytes = msgpack.packb(value, use_bin_type=True)
    return data


def unpack(data: bytes) -> Any:
    """Inverse of :func:`pack`.

    Raises:
        ProtocolError: if ``data`` is not msgpack.
    """
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (ValueError, TypeError, RecursionError, msgpack.UnpackException) as exc:
        raise ProtocolError(f"undecodable msgpack: {exc}") from None


def decode(data: bytes, *, strict: bool = True) -> Message:
    """Parse a msgpack binary frame; ``strict=False`` drops unknown fields (module doc).

    Raises:
        ProtocolError: if ``data`` isn't a valid message.
    """
    return from_wire(unpack(data), strict=strict)


def encode_json(message: Message) -> str:
    """Serialize ``message`` as a JSON object (a text frame)."""
    return json.dumps(to_wire(message), ensure_ascii=False, separators=(",", ":"))


def decode_json(text: str, *, strict: bool = True) -> Message:
    """Parse a JSON text frame; ``strict=False`` drops unknown fields (module doc).

    Raises:
        ProtocolError: if ``text`` isn't a valid message.
    """
    try:
        raw = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"undecodable JSON: {exc}") from None
    return from_wire(raw, strict=strict)


# --- prepared answers ----------------------------------------------------------------------
#
# A suggestion answer is mostly its items, and the same prefix is asked again and again.
# The edge encodes a prefix's items once per codec and splices them into each answer; the
# result is byte for byte what encode(Suggestions(...)) / encode_json(...) would give
# (tests/shared/test_prepared.py holds that).


@dataclass(frozen=True, slots=True)
class PreparedItems:
    """Suggestion items with their encodings, made once and reused for many answers."""

    items: list[Item]
    msgpack: bytes
    json: str

    @classmethod
    def of(cls, items: list[Item]) -> PreparedItems:
        plain = [{"term": i.term, "weight": i.weight} for i in items]
        return cls(items, pack(plain), _json(plain))


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@functools.lru_cache(maxsize=1024)
def _json_word(text: str) -> str:
    """JSON of a short string that recurs in every answer (a mode, a region)."""
    return _json(text)


@functools.lru_cache(maxsize=1024)
def _pack_word(text: str) -> bytes:
    """msgpack of a short string that recurs in every answer (a mode, a region)."""
    return pack(text)


# A fixmap of 8 entries, "type": "suggestions", then the "id" key.
_SUGGESTIONS_HEAD = b"\x88" + pack("type") + pack(Suggestions.TYPE) + pack("id")


def suggestions_msgpack(
    items: PreparedItems,
    request_id: RequestId | None,
    version: int,
    age_ms: int,
    mode: str,
    stale: bool,
    region: str,
) -> bytes:
    """``encode(Suggestions(...))`` with the items spliced in from ``items``."""
    return b"".join(
        (
            _SUGGESTIONS_HEAD,
            pack(request_id),
            _K_ITEMS,
            items.msgpack,
            _K_VERSION,
            pack(version),
            _K_AGE,
            pack(age_ms),
            _K_MODE,
            _pack_word(mode),
            _K_STALE,
            b"\xc3" if stale else b"\xc2",
            _K_REGION,
            _pack_word(region),
        )
    )


_K_ITEMS, _K_VERSION, _K_AGE, _K_MODE, _K_STALE, _K_REGION = (
    pack(k) for k in ("items", "version", "age_ms", "mode", "stale", "region")
)


def suggestions_json(
    items: PreparedItems,
    request_id: RequestId | None,
    version: int,
    age_ms: int,
    mode: str,
    stale: bool,
    region: str,
    *,
    message: bool = True,
) -> str:
    """``encode_json(Suggestions(...))`` with the items spliced in; with ``message=False``
    the HTTP body: the same object without ``type`` and ``id``."""
    head = f'{{"type":"{Suggestions.TYPE}","id":{_json(request_id)},' if message else "{"
    return (
        f'{head}"items":{items.json},"version":{version},"age_ms":{age_ms},'
        f'"mode":{_json_word(mode)},"stale":{"true" if stale else "false"},'
        f'"region":{_json_word(region)}}}'
    )


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def to_wire(message: Message) -> dict[str, Any]:
    """The map that represents ``message`` on the wire (before msgpack or JSON)."""
    wire: dict[str, Any] = {"type": message.TYPE}
    for name in _names(type(message)):
        wire[name] = _plain(getattr(message, name))
    return wire


_NAMES: dict[Any, tuple[str, ...]] = {}


def _names(cls: Any) -> tuple[str, ...]:
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def _plain(value: Any) -> Any:
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return {name: _plain(getattr(value, name)) for name in _names(type(value))}


_SCALARS = (str, int, float, bytes, type(None))


def from_wire(raw: Any, *, strict: bool = True) -> Message:
    """Build a message from its wire map, checking every field; with ``strict=False``, fields
    no class here declares (at any depth) are dropped instead of refused.

    Raises:
        ProtocolError: unknown ``type``, missing or (if ``strict``) unexpected fields, wrong
            field types.
    """
    if not isinstance(raw, dict):
        raise ProtocolError(f"a message must be a map, not {type(raw).__name__}")
    tag = raw.get("type")
    cls = _TYPES.get(tag) if isinstance(tag, str) else None
    if cls is None:
        unknown = ProtocolError(f"unknown message type {tag!r}", code="unknown_type")
        unknown.request_id = _echoable(raw.get("id"))
        raise unknown
    try:
        return typing.cast(Message, _build(cls, raw, str(tag), strict, top=True))
    except ProtocolError as exc:
        exc.request_id = _echoable(raw.get("id"))
        raise


def _echoable(request_id: Any) -> RequestId | None:
    """``request_id`` if it is a valid :data:`RequestId` (so the error that echoes it can be
    encoded in either codec), else ``None``."""
    if isinstance(request_id, str):
        return request_id if is_text(request_id) else None
    return request_id if _is_int64(request_id) else None


def _build(cls: type[Any], raw: dict[str, Any], path: str, strict: bool, top: bool = False) -> Any:
    """``cls`` from the map ``raw`` (a whole message's if ``top``: its ``type`` key is
    allowed), every known field checked; other keys are refused if ``strict``, else unread."""
    allowed, fields = _SCHEMAS[strict].get(cls) or _schema(cls, strict)
    if strict and not raw.keys() <= allowed[top]:
        extra = sorted(str(k) for k in raw if k not in allowed[top])
        raise ProtocolError(f"{path}: unexpected field {extra[0]!r}")
    kwargs: dict[str, Any] = {}
    for name, check, required in fields:
        if name in raw:
            kwargs[name] = check(raw[name], path)
        elif required:
            raise ProtocolError(f"{path}: missing field {name!r}", code="bad_field")
    return cls(**kwargs)


Field = tuple[str, Callable[[Any, str], Any], bool]
Schema = tuple[tuple[frozenset[str], frozenset[str]], tuple[Field, ...]]
_SCHEMAS: tuple[dict[Any, Schema], dict[Any, Schema]] = ({}, {})
"""Per strictness (``_SCHEMAS[strict]``), each class's schema, built once (a dict lookup,
not a key tuple, on the hot path)."""


def _schema(cls: Any, strict: bool) -> Schema:
    """The keys a map of ``cls`` may have (without and with ``type``), and for each field its
    checker and whether it is required; built once per class and strictness."""
    hints = _hints(cls)
    fields = tuple(
        (
            f.name,
            _field_checker(f.name, _checker(hints[f.name], strict)),
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
    )
    names = frozenset(f[0] for f in fields)
    schema = _SCHEMAS[strict][cls] = ((names, names | {"type"}), fields)
    return schema


def _field_checker(name: str, check: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    """``check`` with the field's name added to the path; the path is only built when the
    check fails (the check runs again to raise with it), so a valid field costs nothing."""

    def checked(value: Any, path: str) -> Any:
        try:
            return check(value, path)
        except ProtocolError:
            return check(value, f"{path}.{name}")

    return checked


_HINTS: dict[Any, dict[str, Any]] = {}


def _hints(cls: Any) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


Checker = Callable[[Any, str], Any]


@functools.cache
def _checker(tp: Any, strict: bool) -> Checker:
    """A function that checks (and returns) a value of type ``tp``; built once per type and
    strictness (which only matters to the dataclasses inside ``tp``)."""
    origin = typing.get_origin(tp)

    def wrong(value: Any, path: str) -> Any:
        raise _wrong(path, tp, value)

    if origin in (Union, types.UnionType):
        options = [(_quick(o), _checker(o, strict)) for o in typing.get_args(tp)]

        def union(value: Any, path: str) -> Any:
            for quick, check in options:
                if quick is None:
                    try:
                        return check(value, path)
                    except ProtocolError:
                        continue
                if quick(value):  # exact for scalars: its check decides (e.g. bad_text)
                    return check(value, path)
            return wrong(value, path)

        return union
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        item = _checker(item_tp, strict)

        def a_list(value: Any, path: str) -> Any:
            if not isinstance(value, list):
                return wrong(value, path)
            return [item(v, f"{path}[{i}]") for i, v in enumerate(value)]

        return a_list
    if origin is dict:
        value_check = _checker(typing.get_args(tp)[1], strict)

        def a_dict(value: Any, path: str) -> Any:
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                return wrong(value, path)
            for k in value:
                if not is_text(k):
                    raise _not_text(f"{path} key", k)
            return {k: value_check(v, f"{path}.{k}") for k, v in value.items()}

        return a_dict
    if dataclasses.is_dataclass(tp):
        cls = typing.cast(type[Any], tp)

        def a_dataclass(value: Any, path: str) -> Any:
            if isinstance(value, dict):
                return _build(cls, value, path, strict)
            return wrong(value, path)

        return a_dataclass
    if tp is str:

        def text(value: Any, path: str) -> Any:
            if not isinstance(value, str):
                return wrong(value, path)
            if value.isascii() and value.isprintable() or is_text(value):  # ASCII: no call
                return value
            raise _not_text(path, value)

        return text
    quick = _quick(tp)
    if quick is None:
        raise TypeError(f"no wire check for {tp!r}")  # a programming error in this module

    def scalar(value: Any, path: str) -> Any:
        return (float(value) if tp is float else value) if quick(value) else wrong(value, path)

    return scalar


def _quick(tp: Any) -> Callable[[Any], bool] | None:
    """An exact test for scalar types; ``None`` for containers (checked in full)."""
    if tp is type(None):
        return lambda v: v is None
    if tp is bool:
        return lambda v: isinstance(v, bool)
    if tp is int:
        return _is_int64
    if tp is float:
        return lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    if tp is str or tp is bytes:
        return lambda v: isinstance(v, tp)
    return None


def _is_int64(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and _INT_MIN <= value <= _INT_MAX


def _not_text(path: str, value: str) -> ProtocolError:
    return ProtocolError(not_text_message(path, value), code="bad_text")


def _wrong(path: str, tp: Any, value: Any) -> ProtocolError:
    expected = getattr(tp, "__name__", None) or str(tp)
    return ProtocolError(
        f"{path}: expected {expected}, got {type(value).__name__}", code="bad_field"
    )
