"""Hypothesis strategies for every wire message, built from the classes of ``shared.protocol``.

Nothing here is written per message type: :func:`fields` walks a dataclass's fields and type
hints (unions, lists, dicts, nested dataclasses, scalars) and builds the map of each, so a new
message or field is fuzzed the day it is added. :func:`frames` then breaks some of them by
class: a field of the wrong type (huge ints, nested containers, floats, bytes), a required
field missing, an unexpected field, an unknown ``type``; and :func:`garbage` gives raw frames
that are not messages at all (random bytes or text, deep nesting).

Text is the hostile kind throughout (:func:`hostile_text`): NFKD expanders (one character
that folds to up to 18), control and format characters, long runs of one character, and on
the JSON codec lone surrogates (escaped, so the frame itself is valid UTF-8). msgpack cannot
carry a lone surrogate (its strings are UTF-8), nor an int outside -2**63..2**64-1; each
:class:`Codec` says what it can carry.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from typing import Any, Union

from hypothesis import strategies as st

from shared import protocol
from shared.protocol import pack

MESSAGE_CLASSES: tuple[type[Any], ...] = protocol.messages()
"""Every message class, read from the protocol's own registry."""

LINK_CLASSES: tuple[type[Any], ...] = protocol.messages(protocol.LINK)

EXPANDERS = "\ufdfa\ufb03\ufb2c\u0390\u1e9b\u3300\u33ff\u2474\u00bd\u01c4"
"""Characters that NFKD expands: U+FDFA becomes 18 characters, U+FB03 ("ffi") 3."""

CONTROLS = "\x00\x01\x08\t\n\x0b\x1b\x7f\x85\u200b\u200e\u202e\u2028\u2029\ufeff\ufff9"
"""C0/C1 controls, line and paragraph separators, zero-width and bidi format characters."""

_INT64 = (-(2**63), 2**63 - 1)


def hostile_text(*, surrogates: bool, max_size: int = 24) -> st.SearchStrategy[str]:
    """Short strings mixing any characters with expanders and controls, and long runs of one
    expander (over the display and folded-key limits); lone surrogates when asked."""
    specials = EXPANDERS + CONTROLS
    alphabet = st.one_of(
        st.characters(codec="utf-8", exclude_categories=["Cs"]),
        st.sampled_from(specials),
        st.characters(categories=["Cs"]) if surrogates else st.nothing(),
    )
    runs = st.builds(lambda c, n: c * n, st.sampled_from(EXPANDERS + "a"), st.integers(1, 130))
    mixed = st.text(alphabet, max_size=max_size)
    if surrogates:  # every string carries at least one, so each example tests the class
        lone = st.characters(categories=["Cs"])
        return st.builds(lambda s, c, i: s[:i] + c + s[i:], mixed, lone, st.integers(0, 30))
    return st.one_of(mixed, runs)


@dataclass(frozen=True)
class Codec:
    """What one codec can carry, and how a wire map becomes a frame."""

    name: str
    ints: st.SearchStrategy[int]
    text: st.SearchStrategy[str]
    blobs: st.SearchStrategy[Any]
    binary: bool

    def frame(self, value: Any) -> bytes | str:
        if self.binary:
            return pack(value)
        return json.dumps(value, ensure_ascii=True, allow_nan=True)


def msgpack_codec() -> Codec:
    return Codec(
        "msgpack",
        st.integers(-(2**63), 2**64 - 1),
        hostile_text(surrogates=False),
        st.binary(max_size=16),
        binary=True,
    )


def json_codec(*, surrogates: bool = False) -> Codec:
    text = hostile_text(surrogates=surrogates)
    return Codec("json", st.integers(-(2**200), 2**200), text, text, binary=False)


# --- the generic builder -----------------------------------------------------------------


def value(tp: Any, codec: Codec) -> st.SearchStrategy[Any]:
    """A wire value of type ``tp`` (type-correct; its content is hostile)."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return st.one_of([value(arg, codec) for arg in typing.get_args(tp)])
    if origin is list:
        return st.lists(value(typing.get_args(tp)[0], codec), max_size=4)
    if origin is dict:
        return st.dictionaries(codec.text, value(typing.get_args(tp)[1], codec), max_size=3)
    if dataclasses.is_dataclass(tp):
        return fields(typing.cast(type[Any], tp), codec)
    scalars: dict[Any, st.SearchStrategy[Any]] = {
        type(None): st.none(),
        bool: st.booleans(),
        int: st.one_of(st.integers(*_INT64), st.sampled_from([0, -1, 10_000, 10_001])),
        float: st.floats(allow_nan=False, allow_infinity=False),
        str: codec.text,
        bytes: codec.blobs,
    }
    return scalars[tp]


def fields(cls: type[Any], codec: Codec) -> st.SearchStrategy[dict[str, Any]]:
    """The map of a dataclass: required fields always, fields with a default sometimes."""
    hints = typing.get_type_hints(cls)
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for f in dataclasses.fields(cls):
        (required if _required(f) else optional)[f.name] = value(hints[f.name], codec)
    return st.fixed_dictionaries(required, optional=optional)


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def any_value(codec: Codec) -> st.SearchStrategy[Any]:
    """A value of any shape: wrong types, huge ints, floats, nested lists and maps."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        codec.ints,
        st.floats(),
        codec.text,
        codec.blobs,
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(codec.text, inner, max_size=3),
        max_leaves=12,
    )


MUTATIONS = ("none", "none", "wrong_type", "missing", "extra", "bad_type")


@st.composite
def message_map(
    draw: st.DrawFn, classes: tuple[type[Any], ...], codec: Codec
) -> tuple[dict[str, Any], str]:
    """A message's wire map and the mutation applied to it (``none``: type-correct)."""
    cls = draw(st.sampled_from(classes))
    raw: dict[str, Any] = {"type": cls.TYPE, **draw(fields(cls, codec))}
    mutation = draw(st.sampled_from(MUTATIONS))
    names = [f.name for f in dataclasses.fields(cls)]
    if mutation == "wrong_type":
        raw[draw(st.sampled_from(names))] = draw(any_value(codec))
    elif mutation == "missing":
        required = [f.name for f in dataclasses.fields(cls) if _required(f)]
        if not required:
            return raw, "none"
        del raw[draw(st.sampled_from(required))]
    elif mutation == "extra":
        key = draw(codec.text.filter(lambda k: k not in names and k != "type"))
        raw[key] = draw(any_value(codec))
    elif mutation == "bad_type":
        tags = {c.TYPE for c in MESSAGE_CLASSES}
        raw["type"] = draw(
            st.one_of(codec.text, any_value(codec)).filter(
                lambda t: not isinstance(t, str) or t not in tags
            )
        )
    return raw, mutation


def frames(classes: tuple[type[Any], ...], codec: Codec) -> st.SearchStrategy[bytes | str]:
    """Frames of messages of ``classes`` (some broken), and garbage."""
    maps = message_map(classes, codec).map(lambda pair: codec.frame(pair[0]))
    return st.one_of(maps, maps, maps, garbage(codec))


def garbage(codec: Codec) -> st.SearchStrategy[bytes | str]:
    """Frames that are not a message: random bytes or text, other values, deep nesting."""
    depth = st.integers(1, 5000)
    if codec.binary:
        return st.one_of(
            st.binary(max_size=64),
            any_value(codec).map(pack),
            depth.map(lambda n: b"\x91" * n + b"\xc0"),
        )
    return st.one_of(
        st.text(max_size=64),
        any_value(codec).map(lambda v: json.dumps(v, ensure_ascii=True)),
        depth.map(lambda n: "[" * n + "]" * n),
        depth.map(lambda n: '{"type":' * n + "1" + "}" * n),
    )


def conforms(value: Any, tp: Any) -> bool:
    """``value`` is of type ``tp``, checked independently of the protocol's own checker."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(conforms(value, arg) for arg in typing.get_args(tp))
    if origin is list:
        return isinstance(value, list) and all(conforms(v, typing.get_args(tp)[0]) for v in value)
    if origin is dict:
        item = typing.get_args(tp)[1]
        return isinstance(value, dict) and all(
            isinstance(k, str) and conforms(v, item) for k, v in value.items()
        )
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        return isinstance(value, tp) and all(  # type: ignore[arg-type]
            conforms(getattr(value, f.name), hints[f.name]) for f in dataclasses.fields(tp)
        )
    if tp is int:
        return type(value) is int and _INT64[0] <= value <= _INT64[1]
    if tp is type(None):
        return value is None
    return type(value) is tp
