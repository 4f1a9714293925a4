"""The pure decoders under messages built from the protocol's classes, on both codecs.

Property: a frame decodes to a well-typed message of the class its ``type`` names, or raises
:class:`~shared.errors.ProtocolError`; never anything else. A decoded message survives its
own codec's round trip.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, strategies as st

from shared.errors import ProtocolError
from shared.protocol import Message, decode, decode_json, encode, encode_json, pack
from tests.fuzz.settings import examples
from tests.fuzz.wire import (
    MESSAGE_CLASSES,
    Codec,
    conforms,
    fields,
    frames,
    json_codec,
    message_map,
    msgpack_codec,
)

PROTOCOL_DOC = (Path(__file__).parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")

CODECS = {
    "msgpack": msgpack_codec(),
    "json": json_codec(),
    "json-surrogates": json_codec(surrogates=True),
}


def _decode(codec: Codec, frame: bytes | str) -> Message:
    return decode(frame) if isinstance(frame, bytes) else decode_json(frame)


def _check(codec: Codec, frame: bytes | str) -> Message | None:
    try:
        message = _decode(codec, frame)
    except ProtocolError as exc:
        assert f"`{exc.code}`" in PROTOCOL_DOC, f"undocumented error code {exc.code!r}"
        return None
    assert conforms(message, type(message)), message
    assert type(message) in MESSAGE_CLASSES
    return message


@pytest.mark.parametrize("name", sorted(CODECS))
@examples(150)
@given(data=st.data())
def test_a_frame_decodes_to_a_typed_message_or_raises_protocol_error(
    name: str, data: st.DataObject
) -> None:
    codec = CODECS[name]
    frame = data.draw(frames(MESSAGE_CLASSES, codec))
    message = _check(codec, frame)
    if message is not None:
        again = encode(message) if codec.binary else encode_json(message)
        if isinstance(again, bytes) or not _has_surrogate(again):
            assert _decode(codec, again) == message


@pytest.mark.parametrize("name", sorted(CODECS))
@examples(100)
@given(data=st.data())
def test_broken_maps_are_refused_by_class(name: str, data: st.DataObject) -> None:
    """Each mutation is refused with its code: a missing field, a wrong ``type``..."""
    codec = CODECS[name]
    raw, mutation = data.draw(message_map(MESSAGE_CLASSES, codec))
    message = _check(codec, codec.frame(raw))
    if mutation in ("missing", "extra", "bad_type"):
        assert message is None, (mutation, raw)


@pytest.mark.parametrize("name", sorted(CODECS))
@examples(100)
@given(data=st.data())
def test_tolerant_decoding_drops_only_unknown_fields(name: str, data: st.DataObject) -> None:
    """``strict=False`` (the link, server to client): an extra field is dropped, so the map
    decodes as it would without it; every other mutation is still refused."""
    codec = CODECS[name]
    raw, mutation = data.draw(message_map(MESSAGE_CLASSES, codec))
    try:
        frame = codec.frame(raw)
        tolerant = (
            decode(frame, strict=False)
            if isinstance(frame, bytes)
            else decode_json(frame, strict=False)
        )
    except ProtocolError:
        tolerant = None
    if mutation in ("missing", "bad_type"):
        assert tolerant is None, (mutation, raw)
    if mutation == "extra":
        known = {k: v for k, v in raw.items() if k in _field_names(raw) or k == "type"}
        assert tolerant == _check(codec, codec.frame(known))


_PLAIN = Codec(
    "plain",
    st.integers(-(2**63), 2**63 - 1),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=8),
    st.binary(max_size=8),
    binary=True,
)


@examples(200)
@given(data=st.data())
def test_the_builder_makes_valid_messages_of_every_class(data: st.DataObject) -> None:
    """Sanity of the generic builder: its type-correct maps of plain text always decode."""
    cls = data.draw(st.sampled_from(MESSAGE_CLASSES))
    raw: dict[str, Any] = {"type": cls.TYPE, **data.draw(fields(cls, _PLAIN))}
    message = decode(pack(raw))
    assert type(message) is cls and conforms(message, cls)
    assert decode(encode(message)) == message
    if not any(isinstance(v, bytes) for v in _leaves(raw)):
        assert decode_json(json.dumps(raw)) == message


def _field_names(raw: dict[str, Any]) -> set[str]:
    cls = next(c for c in MESSAGE_CLASSES if c.TYPE == raw["type"])
    return {f.name for f in dataclasses.fields(cls)}


def _leaves(value: Any) -> typing.Iterator[Any]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def _has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)
