"""Prepared suggestion answers are byte for byte what the generic codec produces."""

from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st

from edge_node.suggest.prepared import PreparedItems, suggestions_json, suggestions_msgpack
from shared.protocol import Item, Suggestions, encode, encode_json, make_bookmark, to_wire

prefix_items = st.builds(Item, st.text(max_size=12), st.integers(0, 2**53))
typo_items = st.builds(
    Item, st.text(max_size=12), st.integers(0, 2**53), st.just("typo"), st.integers(1, 2)
)
items = st.lists(prefix_items | typo_items, max_size=5)
ids = st.none() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8)


@settings(max_examples=200, deadline=None, database=None)
@given(
    items,
    ids,
    st.integers(0, 2**40),
    st.integers(0, 2**40),
    st.booleans(),
    st.text(max_size=5),
    st.from_regex(r"[0-9a-f]{0,32}", fullmatch=True),
    st.booleans(),
)
def test_prepared_answers_match_the_codec(
    found: list[Item],
    request_id: int | str | None,
    version: int,
    age_ms: int,
    stale: bool,
    region: str,
    epoch: str,
    core_trip: bool,
) -> None:
    """Splicing pre-encoded items gives the same bytes as encoding the whole message, with
    its bookmark, and ``core_trip`` only when true."""
    prepared = PreparedItems.of(found)
    bookmark = make_bookmark(epoch, version)
    trip = True if core_trip else None
    message = Suggestions(
        request_id, found, version, age_ms, "strict", stale, region, bookmark, trip
    )
    rest = (version, age_ms, "strict", stale, region, bookmark, core_trip)
    assert suggestions_msgpack(prepared, request_id, *rest) == encode(message)
    assert suggestions_json(prepared, request_id, *rest) == encode_json(message)
    body = to_wire(message)
    del body["type"], body["id"]
    http = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    assert suggestions_json(prepared, None, *rest, message=False) == http


def test_a_prefix_item_carries_no_match_field() -> None:
    """``match``/``typos`` are on the wire only for a typo match: old answers are unchanged."""
    plain = PreparedItems.of([Item("Sydney", 5), Item("Sydney", 5, "typo", 1)])
    assert json.loads(plain.json) == [
        {"term": "Sydney", "weight": 5},
        {"term": "Sydney", "weight": 5, "match": "typo", "typos": 1},
    ]
