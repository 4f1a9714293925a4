"""Prepared suggestion answers: a prefix's items encoded once per codec and spliced into
each answer.

A suggestion answer is mostly its items, and the same prefix is asked again and again. The
edge encodes a prefix's items once per codec and splices them into each answer; the result is
byte for byte what ``encode(Suggestions(...))`` / ``encode_json(...)`` would give
(tests/edge_node/suggest/test_prepared.py holds that).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from edge_node.suggest.aliases import AliasMatch
from shared.protocol import Item, RequestId, Suggestions, pack, scalar_packer, to_plain
from shared.snapshot import Entry


def item(entry: Entry) -> Item:
    """The wire item of a ranked entry: a prefix match carries no ``match`` field."""
    if entry.match == "prefix":
        return Item(entry.term, entry.weight)
    if isinstance(entry, AliasMatch):
        return Item(entry.term, entry.weight, entry.match, alias=entry.alias)
    return Item(entry.term, entry.weight, entry.match, entry.typos)


@dataclass(frozen=True, slots=True)
class PreparedItems:
    """Suggestion items' encodings, made once and reused for many answers. The items
    themselves are not kept: in a full answer cache (10,000 answers) they took two thirds of
    its memory, about 20 MB."""

    msgpack: bytes
    json: str

    @classmethod
    def of(cls, items: list[Item]) -> PreparedItems:
        plain = to_plain(items)
        return cls(pack(plain), _json(plain))


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


_scalar = scalar_packer()
"""msgpack of an answer's own values (id, version, age, bookmark): answers are made on the
event loop's thread only."""

# "type": "suggestions", then the "id" key, after the map's header: a fixmap of 9 entries, or
# of 10 with ``core_trip``.
_SUGGESTIONS_HEAD = pack("type") + pack(Suggestions.TYPE) + pack("id")
_MAP_9, _MAP_10 = b"\x89", b"\x8a"


def suggestions_msgpack(
    items: PreparedItems,
    request_id: RequestId | None,
    version: int,
    age_ms: int,
    mode: str,
    stale: bool,
    region: str,
    bookmark: str,
    core_trip: bool,
) -> bytes:
    """``encode(Suggestions(...))`` with the items spliced in from ``items`` (``core_trip``
    false: left off, as ``None``)."""
    return b"".join(
        (
            _MAP_10 if core_trip else _MAP_9,
            _SUGGESTIONS_HEAD,
            _scalar(request_id),
            _K_ITEMS,
            items.msgpack,
            _K_VERSION,
            _scalar(version),
            _K_AGE,
            _scalar(age_ms),
            _K_MODE,
            _pack_word(mode),
            _K_STALE,
            b"\xc3" if stale else b"\xc2",
            _K_REGION,
            _pack_word(region),
            _K_BOOKMARK,
            _scalar(bookmark),
            _TRIP if core_trip else b"",
        )
    )


_K_ITEMS, _K_VERSION, _K_AGE, _K_MODE, _K_STALE, _K_REGION, _K_BOOKMARK = (
    pack(k) for k in ("items", "version", "age_ms", "mode", "stale", "region", "bookmark")
)
_TRIP = pack("core_trip") + b"\xc3"


def suggestions_json(
    items: PreparedItems,
    request_id: RequestId | None,
    version: int,
    age_ms: int,
    mode: str,
    stale: bool,
    region: str,
    bookmark: str,
    core_trip: bool,
    *,
    message: bool = True,
) -> str:
    """``encode_json(Suggestions(...))`` with the items spliced in; with ``message=False``
    the HTTP body: the same object without ``type`` and ``id``. A bookmark needs no escaping
    (:mod:`shared.protocol.bookmark`: letters, digits, ``-_.``)."""
    head = f'{{"type":"{Suggestions.TYPE}","id":{_json(request_id)},' if message else "{"
    trip = ',"core_trip":true' if core_trip else ""
    return (
        f'{head}"items":{items.json},"version":{version},"age_ms":{age_ms},'
        f'"mode":{_json_word(mode)},"stale":{"true" if stale else "false"},'
        f'"region":{_json_word(region)},"bookmark":"{bookmark}"{trip}}}'
    )
