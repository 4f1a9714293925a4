"""JSON bodies: parsed, bounded in depth, every string through the text door."""

from __future__ import annotations

import json

import pytest

from shared.errors import BadRequest
from shared.http import MAX_JSON_DEPTH, parse_json_object


def refused(body: bytes) -> str:
    with pytest.raises(BadRequest) as info:
        parse_json_object(body)
    assert info.value.status == 400
    return info.value.code


def nested(depth: int) -> bytes:
    """An object nested ``depth`` levels deep, the outer object included."""
    return b'{"a": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


def test_a_flat_object_passes() -> None:
    assert parse_json_object(b'{"id": "s-1", "q": "S\xc3\xa3o"}') == {"id": "s-1", "q": "São"}


def test_nesting_up_to_the_bound_passes_and_one_more_is_refused() -> None:
    """``MAX_JSON_DEPTH`` levels are fine; one more is ``bad_json``."""
    assert parse_json_object(nested(MAX_JSON_DEPTH))
    assert refused(nested(MAX_JSON_DEPTH + 1)) == "bad_json"


@pytest.mark.parametrize("depth", [100, 5000, 100_000])
def test_deep_nesting_is_bad_json_not_a_crash(depth: int) -> None:
    """Deeper than the parser can recurse (a RecursionError inside json) or not: 400."""
    assert refused(b'{"id": ' + b"[" * depth + b"]" * depth + b"}") == "bad_json"
    assert refused(b"[" * depth) == "bad_json"


@pytest.mark.parametrize(
    "body",
    [
        {"id": "\udfff-1", "q": "paris"},
        {"id": "s-1", "q": "a\u0000b"},
        {"id": "s-1", "q": "\u202egnp.exe"},
        {"\ud800": 1},
        {"id": "s-1", "nested": [{"deep": ["\u2028"]}]},
    ],
)
def test_a_string_that_is_not_text_is_bad_text(body: object) -> None:
    """Values, keys, and strings nested anywhere pass the same door."""
    assert refused(json.dumps(body).encode()) == "bad_text"


@pytest.mark.parametrize("body", [b"[1]", b'"x"', b"{nope", b"\xff", b'{"a": NaN}'])
def test_not_an_object_or_not_json_is_bad_json(body: bytes) -> None:
    assert refused(body) == "bad_json"
