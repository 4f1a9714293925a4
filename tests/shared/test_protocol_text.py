"""The decoder is a door: every string of every message, both codecs, must be text.

Generic over the message classes: each string in a valid example's wire map (fields, list
items, map keys) is replaced in turn by a string the text rule refuses, and the frame must be
refused with ``bad_text``. What the decoder lets through, and every error it raises, must
encode again in both codecs (an error echoes its request's ``id``).
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from shared.errors import ProtocolError
from shared.protocol import (
    AckItem,
    Error,
    Join,
    Leave,
    Message,
    Ping,
    Pong,
    SearchAcks,
    Snapshot,
    Suggest,
    Suggestions,
    decode,
    decode_json,
    encode,
    encode_json,
    messages,
    pack,
    to_wire,
)
from tests.shared.test_protocol import EXAMPLES
from tests.shared.test_text import EXPANDERS, REFUSED

# Examples here fill the optional string fields the round-trip examples leave empty.
MORE = [
    Ping(id="p-1"),
    Pong(id="p-1"),
    Suggest(id="s-1", q="a"),
    Suggestions("s-1", [], 1, 0, "tolerant", False, "ams"),
    Error("e-1", "bad_text", "no", room="lobby"),
    Join("lobby", "Ada", "#1a2b3c", session="s", token="t.t.t", id="j-1"),
    Leave("lobby", id="l-1"),
    SearchAcks([AckItem("a", None, "refused")]),
]

Path = tuple[Any, ...]


def strings(value: Any, path: Path = ()) -> Iterator[tuple[Path, bool]]:
    """Every string in a wire value: its path, and whether it is a map key."""
    if isinstance(value, str):
        yield path, False
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from strings(item, (*path, i))
    elif isinstance(value, dict):
        for key, item in value.items():
            if path == () and key == "type":
                continue
            yield (*path, key), True
            yield from strings(item, (*path, key))


def replaced(value: Any, path: Path, is_key: bool, bad: str) -> Any:
    """``value`` with the string (or map key) at ``path`` replaced by ``bad``."""
    if not path:
        return bad
    head, rest = path[0], path[1:]
    if isinstance(value, list):
        return [replaced(v, rest, is_key, bad) if i == head else v for i, v in enumerate(value)]
    if is_key and not rest:
        return {(bad if k == head else k): v for k, v in value.items()}
    return {k: (replaced(v, rest, is_key, bad) if k == head else v) for k, v in value.items()}


def _is_data_map(tag: str, path: Path) -> bool:
    """Maps whose keys are data: ``flags.flags``, ``flags.levels`` (and each level's
    ``params``), the link's ``versions`` and ``bases``, ``delta.hot``, ``room_sync.rooms``. Other
    keys name fields: changing one is an unexpected field (``bad_message``, test_protocol)."""
    return (tag, path) in {
        ("flags", ("flags",)),
        ("flags", ("levels",)),
        ("delta", ("hot",)),
        ("room_sync", ("rooms",)),
        *((tag, ("versions",)) for tag in ("hello", "heartbeat", "synced", "resync")),
        ("hello", ("bases",)),
    } or (tag == "flags" and path[:1] == ("levels",) and path[-1:] == ("params",))


STRING_CASES = [
    (message.TYPE, wire, path, is_key)
    for message in [*EXAMPLES, *MORE]
    for wire in [to_wire(message)]
    for path, is_key in strings(wire)
    if not is_key or _is_data_map(message.TYPE, path[:-1])
]


def _has_str(tp: Any) -> bool:
    """Whether values of the annotation ``tp`` can hold a ``str`` anywhere."""
    if tp is str:
        return True
    if dataclasses.is_dataclass(tp):
        return any(_has_str(t) for t in typing.get_type_hints(tp).values())
    return any(_has_str(arg) for arg in typing.get_args(tp))


def test_the_cases_reach_every_string_field_of_every_message() -> None:
    """Every field of every message of ``shared.protocol`` whose type can hold a string has a
    case here (a feature from elsewhere, such as tests/extending's, registers its own beside
    them)."""
    expected = {
        (cls.TYPE, name)
        for cls in messages()
        if cls.__module__.startswith("shared.protocol.")
        for name, tp in typing.get_type_hints(cls).items()
        if name != "TYPE" and _has_str(tp)
    }
    assert {(tag, path[0]) for tag, _, path, _ in STRING_CASES} == expected


@pytest.mark.parametrize("bad", ["\x00", "\x1b[2J", "\u202e", "\u2028", "\ufeff", "\U0010ffff"])
@pytest.mark.parametrize(
    ("tag", "wire", "path", "is_key"),
    STRING_CASES,
    ids=[f"{c[0]}:{'.'.join(map(str, c[2]))}" for c in STRING_CASES],
)
def test_every_string_refuses_what_is_not_text_in_both_codecs(
    tag: str, wire: dict[str, Any], path: Path, is_key: bool, bad: str
) -> None:
    """Controls, bidi overrides, separators, BOM, noncharacters: ``bad_text`` everywhere."""
    raw = replaced(wire, path, is_key, f"ok{bad}")
    with pytest.raises(ProtocolError) as info:
        decode(pack(raw))
    assert info.value.code == "bad_text", info.value
    if tag != Snapshot.TYPE:
        with pytest.raises(ProtocolError) as info:
            decode_json(json.dumps(raw))
        assert info.value.code == "bad_text", info.value


@pytest.mark.parametrize(
    ("tag", "wire", "path", "is_key"),
    [c for c in STRING_CASES if c[0] != Snapshot.TYPE],
    ids=[f"{c[0]}:{'.'.join(map(str, c[2]))}" for c in STRING_CASES if c[0] != Snapshot.TYPE],
)
def test_every_string_refuses_a_lone_surrogate_in_json(
    tag: str, wire: dict[str, Any], path: Path, is_key: bool
) -> None:
    """JSON can spell a lone surrogate (``"\\udfff"``); msgpack cannot (strict UTF-8)."""
    raw = replaced(wire, path, is_key, "\udfff-1")
    with pytest.raises(ProtocolError) as info:
        decode_json(json.dumps(raw))
    assert info.value.code == "bad_text"
    assert "U+DFFF" in info.value.message


def test_msgpack_cannot_carry_a_surrogate_at_all() -> None:
    """The UTF-8 bytes of a surrogate (CESU) are refused as undecodable msgpack."""
    frame = pack({"type": "suggest", "id": 1, "q": "x"}).replace(b"\xa1x", b"\xa3\xed\xbf\xbf")
    with pytest.raises(ProtocolError) as info:
        decode(frame)
    assert info.value.code == "bad_message"


# --- the id an error echoes ----------------------------------------------------------------


def refusal(text: str) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode_json(text)
    return info.value


@pytest.mark.parametrize(
    ("text", "echoed"),
    [
        ('{"type": "suggest", "id": "ok", "q": 5}', "ok"),
        ('{"type": "suggest", "id": 7, "q": 5}', 7),
        ('{"type": "suggest", "id": "\\udfff", "q": 5}', None),
        ('{"type": "suggest", "id": "\\udfff", "q": "paris"}', None),
        ('{"type": "search", "id": "\\udfff-1", "q": "paris"}', None),
        ('{"type": "suggest", "id": "a\\u0000", "q": 5}', None),
        ('{"type": "suggest", "id": 99999999999999999999999, "q": 5}', None),
        ('{"type": "suggest", "id": true, "q": 5}', None),
        ('{"type": "suggest", "id": "ok", "q": "\\udfff"}', "ok"),
    ],
)
def test_an_error_echoes_only_an_id_that_can_be_encoded(text: str, echoed: object) -> None:
    """The echoed id is a valid request id or null, so the error encodes in both codecs
    (a surrogate id used to kill the connection's writer task)."""
    error = refusal(text)
    assert error.request_id == echoed
    answer = Error(error.request_id, error.code, error.message)
    assert decode(encode(answer)) == answer
    assert decode_json(encode_json(answer)) == answer


# --- whatever comes through encodes again ----------------------------------------------------

hostile = st.text(
    alphabet=st.one_of(st.characters(codec=None), st.sampled_from(EXPANDERS + REFUSED)),
    max_size=12,
)
request_ids = st.one_of(hostile, st.integers(min_value=-(2**70), max_value=2**70))


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.sampled_from(["suggest", "search", "join", "ping", "leave", "move"]),
    st.dictionaries(
        st.sampled_from(["id", "q", "room", "name", "color", "session", "x", "y"]),
        st.one_of(hostile, request_ids),
        max_size=5,
    ),
)
def test_decoded_messages_and_errors_always_encode(tag: str, fields: dict[str, Any]) -> None:
    """A client frame of hostile strings decodes to a message that encodes in both codecs,
    or to a ProtocolError whose error message does."""
    text = json.dumps({"type": tag, **fields})
    try:
        message: Message = decode_json(text)
    except ProtocolError as exc:
        message = Error(exc.request_id, exc.code, exc.message)
    assert type(message) in messages()
    assert decode(encode(message)) == message
    assert decode_json(encode_json(message)) == message
