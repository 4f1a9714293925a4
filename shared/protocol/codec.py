"""The one codec: a message as a map on the wire, carried as msgpack or JSON.

On the wire a message is a map whose ``type`` field names its class (looked up in
:mod:`shared.protocol.registry`) and whose other keys are the dataclass fields. msgpack
(binary frames, the default, and the only one on the link) and JSON (text frames, for
browsers) carry that map. ``msgpack`` is imported nowhere else, so the format changes here or
nowhere.

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
import types
import typing
from collections.abc import Callable
from typing import Any, Union

import msgpack  # type: ignore[import-untyped]

from shared.errors import ProtocolError
from shared.protocol.common import RequestId
from shared.protocol.registry import MESSAGES, Message
from shared.text import is_text, not_text_message

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


def encode(message: Message) -> bytes:
    """Serialize ``message`` as a msgpack map (a binary frame)."""
    return pack(to_wire(message))


def pack(value: Any) -> bytes:
    """msgpack of a plain value; for payloads carried inside messages (snapshot data)."""
    if isinstance(value, dict) and any(_large(v) for v in value.values()):
        return _pack_map(value)
    data: bytes = msgpack.packb(value, use_bin_type=True)
    return data


def scalar_packer() -> Callable[[Any], bytes]:
    """A packer of plain values for one thread: ``packer(value)`` is ``pack(value)`` without
    making a msgpack packer on every call (about 8 times faster for an int or a short string),
    for hot paths such as the edge's prepared answers. It keeps a buffer between calls: never
    share one between threads."""
    packer: Callable[[Any], bytes] = msgpack.Packer(use_bin_type=True).pack
    return packer


_LARGE_BIN = 1 << 20
"""Byte strings from this size, as values of a map :func:`pack` is given (a snapshot's parts,
a snapshot in its message), are copied once, into the result. msgpack copies them into a
buffer that grows by doubling, then the buffer into the result: up to three times a
snapshot's size at once (a few tens of MB more at a million terms)."""


def _large(value: object) -> bool:
    return isinstance(value, bytes) and _LARGE_BIN <= len(value) < 2**32


def _pack_map(fields: dict[Any, Any]) -> bytes:
    """``msgpack.packb(fields)``, byte for byte, its large byte strings copied once."""
    packer = msgpack.Packer(use_bin_type=True)
    parts: list[bytes] = [packer.pack_map_header(len(fields))]
    for key, value in fields.items():
        parts.append(packer.pack(key))
        if _large(value):
            parts += (b"\xc6" + len(value).to_bytes(4, "big"), value)  # bin 32, as msgpack
        else:
            parts.append(packer.pack(value))
    return b"".join(parts)


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


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def to_wire(message: Message) -> dict[str, Any]:
    """The map that represents ``message`` on the wire (before msgpack or JSON); a field
    marked :data:`OMIT_NONE` is left out while ``None``."""
    wire: dict[str, Any] = {"type": message.TYPE}
    cls = type(message)
    omitted = _omitted(cls)
    for name in _names(cls):
        value = getattr(message, name)
        if value is not None or name not in omitted:
            wire[name] = _plain(value)
    return wire


_NAMES: dict[Any, tuple[str, ...]] = {}


def _names(cls: Any) -> tuple[str, ...]:
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


OMIT_NONE = types.MappingProxyType({"omit_none": True})
"""Field metadata: the field is left out of the wire map while it is ``None`` (its default),
so an optional field costs nothing where it is unused. Decoders take it as absent."""

_OMITTED: dict[Any, frozenset[str]] = {}


def _omitted(cls: Any) -> frozenset[str]:
    omitted = _OMITTED.get(cls)
    if omitted is None:
        omitted = _OMITTED[cls] = frozenset(
            f.name for f in dataclasses.fields(cls) if f.metadata.get("omit_none")
        )
    return omitted


def to_plain(value: Any) -> Any:
    """The wire form of a value inside a message (a dataclass becomes a map), before msgpack
    or JSON: what :func:`to_wire` does for each field."""
    return _plain(value)


def _plain(value: Any) -> Any:
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    cls = type(value)
    omitted = _omitted(cls)
    if omitted:
        return {
            name: _plain(field)
            for name in _names(cls)
            if (field := getattr(value, name)) is not None or name not in omitted
        }
    return {name: _plain(getattr(value, name)) for name in _names(cls)}


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
    cls = MESSAGES.get(tag) if isinstance(tag, str) else None  # lookup(), inlined: hot path
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
            not_text: ProtocolError | None = None
            for quick, check in options:
                if quick is None:
                    try:
                        return check(value, path)
                    except ProtocolError as exc:
                        # A container of the right shape with a string that is not text
                        # says so (bad_text), as a bare string would.
                        if exc.code == "bad_text" and not_text is None:
                            not_text = exc
                        continue
                if quick(value):  # exact for scalars: its check decides (e.g. bad_text)
                    return check(value, path)
            if not_text is not None:
                raise not_text
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
