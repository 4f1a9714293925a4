"""The wire codec: golden bytes, round trips, and refusal of every malformed frame."""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from shared.errors import ProtocolError
from shared.protocol import (
    MIN_PROTOCOL_VERSION,
    PROTOCOL_VERSION,
    SUBPROTOCOL_JSON,
    SUBPROTOCOL_MSGPACK,
    AckItem,
    Delta,
    Error,
    Evict,
    Flags,
    Heartbeat,
    Hello,
    Item,
    Join,
    Joined,
    Leave,
    Left,
    Level,
    Member,
    MeshBeat,
    MeshHello,
    MeshMoves,
    MeshPeers,
    Message,
    Move,
    Moves,
    MovesBatch,
    Ping,
    Pong,
    Position,
    Presence,
    Reach,
    Resync,
    RoomState,
    RoomStatus,
    RoomSync,
    Search,
    SearchAck,
    SearchAcks,
    Searches,
    SearchItem,
    Snapshot,
    Suggest,
    Suggestions,
    Sync,
    Synced,
    TermChange,
    check_protocol,
    choose_subprotocol,
    decode,
    decode_json,
    encode,
    encode_json,
    messages,
    pack,
    unpack,
)

# --- golden frames -------------------------------------------------------------------------

SUGGEST = Suggest(id="r1", q="São", limit=5, min_version=7)
GOLDEN_SUGGEST_MSGPACK = (
    b"\x85"  # map of 5: the type, then the fields in declaration order
    b"\xa4type\xa7suggest"
    b"\xa2id\xa2r1"
    b"\xa1q\xa4S\xc3\xa3o"
    b"\xa5limit\x05"
    b"\xabmin_version\x07"
)
GOLDEN_SUGGEST_JSON = '{"type":"suggest","id":"r1","q":"São","limit":5,"min_version":7}'

DELTA = Delta(
    from_version=3,
    to_version=5,
    terms=[TermChange("sao paulo", "São Paulo", 12000), TermChange("sapporo", None, 0)],
    hot={"s": ["sao paulo", "santiago"]},
)
GOLDEN_DELTA_MSGPACK = (
    b"\x85"
    b"\xa4type\xa5delta"
    b"\xacfrom_version\x03"
    b"\xaato_version\x05"
    b"\xa5terms\x92"
    b"\x83\xa3key\xa9sao paulo\xa4term\xaaS\xc3\xa3o Paulo\xa6weight\xcd\x2e\xe0"
    b"\x83\xa3key\xa7sapporo\xa4term\xc0\xa6weight\x00"
    b"\xa3hot\x81\xa1s\x92\xa9sao paulo\xa8santiago"
)


def test_suggest_encodes_to_golden_msgpack() -> None:
    """A suggest is a msgpack map: type first, then every field in declaration order."""
    assert encode(SUGGEST) == GOLDEN_SUGGEST_MSGPACK


def test_golden_suggest_msgpack_decodes() -> None:
    """The golden msgpack suggest decodes to the same message."""
    assert decode(GOLDEN_SUGGEST_MSGPACK) == SUGGEST


def test_suggest_encodes_to_golden_json() -> None:
    """JSON is compact and keeps non-ASCII characters as they are."""
    assert encode_json(SUGGEST) == GOLDEN_SUGGEST_JSON


def test_golden_suggest_json_decodes() -> None:
    """The golden JSON suggest decodes to the same message."""
    assert decode_json(GOLDEN_SUGGEST_JSON) == SUGGEST


def test_delta_encodes_to_golden_msgpack() -> None:
    """Nested term changes are maps, a removed term is nil, hot lists are a map of arrays."""
    assert encode(DELTA) == GOLDEN_DELTA_MSGPACK


def test_golden_delta_msgpack_decodes() -> None:
    """The golden delta decodes to the same message, nested dataclasses included."""
    assert decode(GOLDEN_DELTA_MSGPACK) == DELTA


def test_suggest_defaults_apply_when_fields_are_absent() -> None:
    """Fields with defaults may be left out on the wire."""
    assert decode_json('{"type":"suggest","id":1,"q":"a"}') == Suggest(1, "a", 10, None)


def test_delta_hot_defaults_to_empty() -> None:
    """A delta without ``hot`` replaces no hot list."""
    raw = {"type": "delta", "from_version": 1, "to_version": 2, "terms": []}
    assert decode(pack(raw)) == Delta(1, 2, [])


# --- round trips ---------------------------------------------------------------------------

MEMBER = Member("m1", "Ada", "#ff0000", "ams", x=10, y=9999, reachable=False)

EXAMPLES: list[Any] = [
    Suggest(id=42, q="par", limit=3),
    Suggest(id="x", q="", min_version=0),
    Suggest("b", "par", consistency="bounded", max_age_ms=5000, bookmark="db-1.7"),
    Suggestions(
        id="r1",
        items=[Item("Paris", 2_000_000), Item("Parma", 5)],
        version=9,
        age_ms=12,
        mode="tolerant",
        stale=False,
        region="ams",
    ),
    Suggestions(id=None, items=[], version=0, age_ms=0, mode="strict", stale=True, region=""),
    Suggestions(1, [], 7, 0, "session", False, "syd", bookmark="db-1.7", core_trip=True),
    Search(id="s-1", q="lyon"),
    SearchAck(id="s-1", status="committed", version=12),
    SearchAck("s-3", "committed", 12, bookmark="db-1.12"),
    SearchAck(id="s-2", status="queued", version=None),
    Error(id=None, code="bad_message", message="nope"),
    Error(id=7, code="rate_limited", message="slow down"),
    Hello(region="ams", edge_id="e1", version=-1),
    Hello("ams", "e1", 3, "db-1", 1, {"suggest": 3, "notices": -1}, {"suggest": 1}),
    Snapshot(version=3, data=b"\x00\xff binary"),
    DELTA,
    Delta(0, 1, [], {}),
    Flags({"suggest": True, "cursors": False}),
    Flags.of({"suggest": Level.bounded(3000)}, 3000),
    Flags(
        {"suggest": True}, {"suggest": Level("tolerant"), "x": Level("bounded", {"max_age_ms": 9})}
    ),
    Heartbeat(version=2**63 - 1),
    Heartbeat(7, {"suggest": 5}),
    Sync(id=1),
    Synced(id=1, version=-(2**63)),
    Synced(2, 7, {"suggest": 5}),
    Resync(version=5),
    Resync(5, {"suggest": 5}),
    Searches([SearchItem("a", "q1"), SearchItem("b", "q2")]),
    SearchAcks([AckItem("a", 3), AckItem("b", None, "too long")]),
    Join(room="lobby", name="Ada", color="#fff"),
    Join(room="lobby", name="Ada", color="#fff", session="secret"),
    Move(x=1, y=2),
    Move(x=0, y=10000, room="lobby"),
    Leave(),
    Leave(room="lobby"),
    Ping(),
    Ping(id="p"),
    Pong(id=3),
    Presence(room="lobby", you="m1", members=[MEMBER], mode="tolerant", reachable=False),
    Moves(room="lobby", moves=[Position("m1", 1, 2)], seq=4),
    Moves(room="lobby", moves=[]),
    Joined(room="lobby", member=MEMBER),
    Left(room="lobby", id="m1", reason="timeout"),
    RoomStatus(room="lobby", mode="strict", reachable=True, paused=True, unreachable=["m2"]),
    RoomSync(rooms={"lobby": [MEMBER], "empty": []}),
    RoomSync(rooms={"lobby": [MEMBER]}, part=2, final=False),
    MovesBatch([Moves("lobby", [Position("m1", 1, 2)]), Moves("hall", [], seq=3)]),
    RoomState(room="lobby", members=[MEMBER]),
    Reach(room="lobby", ids=["m1", "m2"], reachable=False),
    Evict(room="lobby", id="m1"),
    Moves("lobby", [Position("m1", 1, 2, n=7)], meshed=["syd"]),
    RoomStatus("lobby", "tolerant", reachable=False, paused=False, direct=["sin"]),
    MeshHello(region="syd", edge_id="syd-1a2b3c4d", protocol=2),
    MeshMoves([Moves("lobby", [Position("m1", 1, 2, n=7)])]),
    MeshBeat(heard_ms=120),
    MeshPeers(["sin", "syd"]),
]

JSON_EXAMPLES = [m for m in EXAMPLES if not isinstance(m, Snapshot)]


def test_examples_cover_every_message_type() -> None:
    """Every message class of ``shared.protocol`` has at least one round-trip example here
    (a feature from elsewhere, such as tests/extending's, registers its own beside them)."""
    own = {cls for cls in messages() if cls.__module__.startswith("shared.protocol.")}
    assert {type(m) for m in EXAMPLES} == own


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips_through_msgpack(message: Message) -> None:
    """decode(encode(m)) == m for every message type."""
    assert decode(encode(message)) == message


@pytest.mark.parametrize("message", JSON_EXAMPLES, ids=lambda m: type(m).__name__)
def test_every_message_without_bytes_round_trips_through_json(message: Message) -> None:
    """decode_json(encode_json(m)) == m for every message without a bytes field."""
    assert decode_json(encode_json(message)) == message


def test_request_ids_keep_their_type() -> None:
    """A str id stays a str and an int id an int, in both codecs."""
    for request_id in ("1", 1):
        message = Suggest(id=request_id, q="a")
        for decoded in (decode(encode(message)), decode_json(encode_json(message))):
            assert isinstance(decoded, Suggest)
            assert type(decoded.id) is type(request_id)


# --- refusals ------------------------------------------------------------------------------


def _refused_msgpack(raw: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode(pack(raw))
    return info.value


def _refused_json(raw: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode_json(json.dumps(raw))
    return info.value


@pytest.mark.parametrize("raw", [[1, 2], "suggest", 5, None, b"\x80"])
def test_non_map_frames_are_refused(raw: Any) -> None:
    """A frame that is not a map is ``bad_message`` in both codecs."""
    error = _refused_msgpack(raw)
    assert (error.code, "must be a map" in str(error)) == ("bad_message", True)
    if not isinstance(raw, bytes):
        error = _refused_json(raw)
        assert (error.code, "must be a map" in str(error)) == ("bad_message", True)


@pytest.mark.parametrize(
    "raw",
    [{}, {"type": "nope"}, {"type": 1}, {"type": None}, {"type": "Suggest"}, {"id": 1, "q": "a"}],
)
def test_unknown_or_missing_type_is_refused_as_unknown_type(raw: dict[str, Any]) -> None:
    """A map without a known ``type`` gets the code ``unknown_type``."""
    assert _refused_msgpack(raw).code == "unknown_type"
    assert _refused_json(raw).code == "unknown_type"


def test_an_unknown_type_echoes_a_valid_id() -> None:
    """Like every decode error, ``unknown_type`` carries the frame's id when it is valid."""
    assert _refused_msgpack({"type": "nope", "id": 5}).request_id == 5
    assert _refused_json({"type": "nope", "id": "r-1"}).request_id == "r-1"
    assert _refused_json({"type": "nope", "id": True}).request_id is None


def test_missing_field_is_refused_and_named() -> None:
    """A required field that is absent is ``bad_field`` and the message names it."""
    for error in (
        _refused_msgpack({"type": "suggest", "id": 1}),
        _refused_json({"type": "suggest", "id": 1}),
    ):
        assert error.code == "bad_field"
        assert "'q'" in str(error)


def test_missing_nested_field_is_refused() -> None:
    """A nested dataclass is checked like a message: a missing field is refused."""
    raw = {"type": "searches", "searches": [{"id": "a"}]}
    assert _refused_msgpack(raw).code == "bad_field"
    assert _refused_json(raw).code == "bad_field"


def test_optional_field_without_default_is_still_required() -> None:
    """``X | None`` without a default may be null but not absent."""
    assert _refused_json({"type": "search_ack", "id": "a", "status": "queued"}).code == "bad_field"
    ack = decode_json('{"type":"search_ack","id":"a","status":"queued","version":null}')
    assert ack == SearchAck("a", "queued", None)


def test_unexpected_field_is_refused_and_named() -> None:
    """A key that is not a field of the message is ``bad_message``, naming the key."""
    raw = {"type": "suggest", "id": 1, "q": "a", "extra": 1}
    for error in (_refused_msgpack(raw), _refused_json(raw)):
        assert error.code == "bad_message"
        assert "'extra'" in str(error)


def test_unexpected_nested_field_is_refused() -> None:
    """Nested maps get the same unexpected-field check."""
    raw = {"type": "searches", "searches": [{"id": "a", "q": "b", "x": 0}]}
    assert "'x'" in str(_refused_msgpack(raw))


BAD_FIELDS: list[dict[str, Any]] = [
    {"type": "suggest", "id": 1, "q": "a", "limit": True},  # bool where int
    {"type": "suggest", "id": 1, "q": "a", "limit": "5"},  # str where int
    {"type": "suggest", "id": 1, "q": "a", "limit": 5.0},  # float where int
    {"type": "suggest", "id": 1, "q": "a", "limit": None},  # null where int
    {"type": "suggest", "id": True, "q": "a"},  # bool where str | int
    {"type": "suggest", "id": 1.5, "q": "a"},  # float where str | int
    {"type": "suggest", "id": [1], "q": "a"},  # list where str | int
    {"type": "suggest", "id": 1, "q": 3},  # int where str
    {"type": "suggest", "id": 1, "q": None},  # null where str
    {"type": "suggest", "id": 1, "q": "a", "min_version": "1"},  # str where int | None
    {"type": "suggestions", "id": 1, "items": [1], "version": 1, "age_ms": 0, "mode": "m"},
    {"type": "suggestions", "id": 1, "items": {}, "version": 1, "age_ms": 0, "mode": "m"},
    {"type": "flags", "flags": {"suggest": 1}},  # int where bool
    {"type": "flags", "flags": ["suggest"]},  # list where dict
    {"type": "delta", "from_version": 1, "to_version": 2, "terms": [], "hot": {"a": "b"}},
    {"type": "delta", "from_version": 1, "to_version": 2, "terms": [], "hot": {"a": [1]}},
    {"type": "searches", "searches": [["a", "b"]]},  # list where a nested map
    {"type": "heartbeat", "version": 2**63},  # beyond int64 (msgpack packs it as uint64)
]


@pytest.mark.parametrize("raw", BAD_FIELDS)
def test_ill_typed_fields_are_refused_as_bad_field(raw: dict[str, Any]) -> None:
    """A field of the wrong type is ``bad_field`` in both codecs."""
    if raw["type"] == "suggestions":
        raw = {**raw, "stale": False, "region": "r"}
    assert _refused_msgpack(raw).code == "bad_field"
    assert _refused_json(raw).code == "bad_field"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_refused_in_msgpack(value: float) -> None:
    """NaN and infinities never pass as a number field."""
    assert _refused_msgpack({"type": "heartbeat", "version": value}).code == "bad_field"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_json_non_finite_literals_are_refused(literal: str) -> None:
    """JSON's non-standard NaN/Infinity literals make the frame undecodable."""
    with pytest.raises(ProtocolError, match="undecodable JSON") as info:
        decode_json(f'{{"type":"heartbeat","version":{literal}}}')
    assert info.value.code == "bad_message"


def test_json_overflowing_float_is_refused() -> None:
    """``1e999`` parses to infinity in Python and is then refused as ``bad_field``."""
    with pytest.raises(ProtocolError) as info:
        decode_json('{"type":"heartbeat","version":1e999}')
    assert info.value.code == "bad_field"


@pytest.mark.parametrize("number", [str(2**64), str(2**63), str(-(2**63) - 1), "1" + "0" * 40])
def test_json_ints_beyond_64_bits_are_refused(number: str) -> None:
    """Integers outside int64 are ``bad_field`` even though JSON can spell them."""
    with pytest.raises(ProtocolError) as info:
        decode_json(f'{{"type":"heartbeat","version":{number}}}')
    assert info.value.code == "bad_field"


def test_msgpack_uint64_above_int64_is_refused() -> None:
    """msgpack can carry 2**64 - 1 as uint64; it is still out of range."""
    assert _refused_msgpack({"type": "heartbeat", "version": 2**64 - 1}).code == "bad_field"


def test_bytes_field_needs_bytes() -> None:
    """A snapshot's data must be binary: a string is refused (so JSON cannot carry it)."""
    assert _refused_msgpack({"type": "snapshot", "version": 1, "data": "abc"}).code == "bad_field"
    assert _refused_json({"type": "snapshot", "version": 1, "data": "abc"}).code == "bad_field"


def test_msgpack_bytes_are_not_strings() -> None:
    """A binary value where a str is expected is refused."""
    assert _refused_msgpack({"type": "search", "id": b"a", "q": "b"}).code == "bad_field"


def test_non_string_map_keys_in_fields_are_refused() -> None:
    """Map keys inside a field must be str; msgpack binary keys are ``bad_field``."""
    assert _refused_msgpack({"type": "flags", "flags": {b"suggest": True}}).code == "bad_field"


@pytest.mark.parametrize(
    "data",
    [
        b"",  # nothing
        b"\xc1",  # never-used byte
        b"\x85\xa4ty",  # truncated
        b"\x80\x80",  # two objects
        b"\x81\x01\xa1a",  # int map key
        b"\x81\xa4type\xa2\xc3\x28",  # invalid UTF-8 in a str value
        b"\x81\xa2\xff\xfe\xa1a",  # invalid UTF-8 in a str key
    ],
)
def test_invalid_msgpack_is_refused(data: bytes) -> None:
    """Bytes that are not one well-formed msgpack value are ``bad_message``."""
    with pytest.raises(ProtocolError, match="undecodable msgpack") as info:
        decode(data)
    assert info.value.code == "bad_message"


@pytest.mark.parametrize("text", ["", "{", "{'type': 'ping'}", '{"type":"ping"} x', "nul"])
def test_invalid_json_is_refused(text: str) -> None:
    """Text that is not one JSON value is ``bad_message``."""
    with pytest.raises(ProtocolError, match="undecodable JSON") as info:
        decode_json(text)
    assert info.value.code == "bad_message"


def test_deeply_nested_msgpack_is_refused() -> None:
    """Nesting past msgpack's stack limit is a ProtocolError, not a crash."""
    with pytest.raises(ProtocolError):
        decode(b"\x91" * 100_000)


def test_deeply_nested_json_is_refused() -> None:
    """A small but deeply nested JSON frame is a ProtocolError like any other bad frame."""
    with pytest.raises(ProtocolError):
        decode_json("[" * 2000)


# --- never anything but ProtocolError --------------------------------------------------------


@settings(max_examples=200, deadline=None, database=None)
@given(st.binary(max_size=64))
def test_decode_of_arbitrary_bytes_only_raises_protocol_error(data: bytes) -> None:
    """Any bytes either decode to a message or raise ProtocolError."""
    try:
        message = decode(data)
    except ProtocolError:
        return
    assert type(message) in messages()


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=64))
def test_decode_json_of_arbitrary_text_only_raises_protocol_error(text: str) -> None:
    """Any text either decodes to a message or raises ProtocolError."""
    try:
        message = decode_json(text)
    except ProtocolError:
        return
    assert type(message) in messages()


_TYPES = {cls.TYPE: cls for cls in messages()}
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=5)
    | st.binary(max_size=5)
)
_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5)
)


def _values(scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.text(max_size=5) | st.sampled_from(["id", "x", "q", "key", "term", "weight"])
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
        max_leaves=8,
    )


@st.composite
def _wire_maps(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> dict[str, Any]:
    tag = draw(st.sampled_from(sorted(_TYPES)))
    names = [f.name for f in dataclasses.fields(typing.cast(Any, _TYPES[tag]))]
    chosen = draw(st.lists(st.sampled_from(names), unique=True))
    raw: dict[str, Any] = {"type": tag}
    for name in chosen:
        raw[name] = draw(values)
    return raw


@settings(max_examples=200, deadline=None, database=None)
@given(_wire_maps(_values(_SCALARS)))
def test_decode_of_near_miss_maps_only_raises_protocol_error(raw: dict[str, Any]) -> None:
    """Maps with a real type and real field names but random values never crash the codec."""
    try:
        message = decode(pack(raw))
    except ProtocolError:
        return
    assert decode(encode(message)) == message


@settings(max_examples=200, deadline=None, database=None)
@given(_wire_maps(_values(_JSON_SCALARS)))
def test_decode_json_of_near_miss_maps_only_raises_protocol_error(raw: dict[str, Any]) -> None:
    """The same holds for JSON objects, big integers included."""
    try:
        message = decode_json(json.dumps(raw))
    except ProtocolError:
        return
    assert decode_json(encode_json(message)) == message


# --- pack / unpack -------------------------------------------------------------------------


def test_pack_unpack_round_trips_plain_values() -> None:
    """Plain values (maps, lists, str, bytes, ints, floats, None) survive pack/unpack."""
    value = {"a": [1, -2, 2**64 - 1, 1.5, None, True], "b": b"\x00\x01", "c": {"d": "é"}}
    assert unpack(pack(value)) == value


def test_pack_keeps_bytes_and_str_apart() -> None:
    """bytes unpack as bytes and str as str (bin type on)."""
    assert unpack(pack([b"x", "x"])) == [b"x", "x"]


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x92\x01", b"\x81\x01\x02"])
def test_unpack_of_garbage_raises_protocol_error(data: bytes) -> None:
    """Truncated, invalid or non-str-keyed msgpack is a ProtocolError."""
    with pytest.raises(ProtocolError):
        unpack(data)


# --- versions and compatibility ----------------------------------------------------------


def test_a_link_message_with_an_unknown_field_decodes_when_tolerant() -> None:
    """A newer core's delta, with a field and a nested field this build does not know."""
    raw = {
        "type": "delta",
        "from_version": 1,
        "to_version": 2,
        "terms": [{"key": "syd", "term": "Sydney", "weight": 3, "lang": "en"}],
        "shard": 7,
    }
    expected = Delta(1, 2, [TermChange("syd", "Sydney", 3)])
    assert decode(pack(raw), strict=False) == expected
    assert decode_json(json.dumps(raw), strict=False) == expected


def test_a_server_to_client_message_with_an_unknown_field_decodes_when_tolerant() -> None:
    raw = {**json.loads(encode_json(Suggestions(1, [Item("a", 1)], 3, 0, "x", False, "r")))}
    raw["items"][0]["rank"] = 1
    raw["consistency"] = {"level": "bounded", "max_ms": 500}
    assert decode_json(json.dumps(raw), strict=False) == Suggestions(
        1, [Item("a", 1)], 3, 0, "x", False, "r"
    )


def test_a_client_message_with_an_unknown_field_is_still_refused() -> None:
    with pytest.raises(ProtocolError, match="unexpected field 'shard'") as refused:
        decode(pack({"type": "suggest", "id": 1, "q": "syd", "shard": 7}))
    assert refused.value.code == "bad_message"
    with pytest.raises(ProtocolError, match="unexpected field"):
        decode_json('{"type":"join","room":"r","name":"n","color":"#fff","admin":true}')


def test_known_fields_keep_their_checks_when_tolerant() -> None:
    """Tolerance is for unknown fields only: the text door and types still hold."""
    with pytest.raises(ProtocolError) as refused:
        decode_json(
            '{"type":"hello","region":"\\ud800","edge_id":"e","version":1,"x":1}', strict=False
        )
    assert refused.value.code == "bad_text"
    with pytest.raises(ProtocolError, match="missing field"):
        decode(pack({"type": "heartbeat", "beat": 1}), strict=False)
    with pytest.raises(ProtocolError) as unknown:
        decode(pack({"type": "gossip"}), strict=False)
    assert unknown.value.code == "unknown_type"


def test_a_hello_without_protocol_is_version_1() -> None:
    old = decode(pack({"type": "hello", "region": "ams", "edge_id": "e1", "version": -1}))
    assert isinstance(old, Hello) and old == Hello("ams", "e1", -1, "", 1)
    check_protocol(old.protocol)


def test_versions_negotiate() -> None:
    """This build talks its own range; anything outside is refused by name."""
    for version in range(MIN_PROTOCOL_VERSION, PROTOCOL_VERSION + 1):
        check_protocol(version)
    for version in (MIN_PROTOCOL_VERSION - 1, PROTOCOL_VERSION + 1):
        with pytest.raises(ProtocolError, match="not supported") as refused:
            check_protocol(version)
        assert refused.value.code == "unsupported_protocol"


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        ([], (None, False)),
        (["lightcone.msgpack"], ("lightcone.msgpack", False)),
        (["lightcone.json"], ("lightcone.json", True)),
        ([SUBPROTOCOL_MSGPACK], (SUBPROTOCOL_MSGPACK, False)),
        ([SUBPROTOCOL_MSGPACK, SUBPROTOCOL_JSON], (SUBPROTOCOL_JSON, True)),
        (["lightcone.json", SUBPROTOCOL_JSON], (SUBPROTOCOL_JSON, True)),
        ([f"lightcone.json.v{PROTOCOL_VERSION + 1}"], (None, False)),
        ([f"lightcone.json.v{PROTOCOL_VERSION + 1}", "lightcone.json"], ("lightcone.json", True)),
        (["lightcone.xml.v1", "chat", "lightcone.json.v99999"], (None, False)),
    ],
)
def test_the_subprotocol_is_chosen_by_codec_then_version(
    offered: list[str], chosen: tuple[str | None, bool]
) -> None:
    assert choose_subprotocol(offered) == chosen
    assert SUBPROTOCOL_JSON == f"lightcone.json.v{PROTOCOL_VERSION}"
