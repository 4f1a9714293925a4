"""Fuzz the edge's client websocket ``/ws`` on both subprotocols, against a real edge.

Every message class is sent, type-correct with hostile text or broken by class (wrong types,
missing and extra fields, unknown types), and garbage frames besides, as msgpack binary frames
and as JSON text frames on each kind of connection. Properties, per frame: the connection
still answers a ``ping`` (or was closed with a documented code); a frame the decoder refuses
gets an ``error``; every answer is a well-formed message. After each test a bystander that
was connected throughout is still served, and the edge logged no error or traceback.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given, strategies as st

from shared.errors import CloseCode, ProtocolError
from shared.protocol import (
    SUBPROTOCOL_JSON,
    SUBPROTOCOL_MSGPACK,
    Error,
    Join,
    Leave,
    Move,
    Ping,
    Pong,
    Search,
    Suggest,
    Suggestions,
    decode,
    decode_json,
)
from tests.fuzz.client import Closed, Probe
from tests.fuzz.conftest import FUZZ_EDGE_ENV, NewErrors
from tests.fuzz.settings import examples
from tests.fuzz.wire import MESSAGE_CLASSES, Codec, frames, json_codec, msgpack_codec
from tests.helpers.nodes import Node, start_edge

REQUESTS = (Suggest, Search, Join, Move, Leave, Ping)
"""What clients send; weighted in beside every other class (which the edge must refuse)."""

CLASSES = REQUESTS + MESSAGE_CLASSES

DOCUMENTED_CLOSES = {CloseCode.INVALID_DATA, CloseCode.MESSAGE_TOO_BIG}
"""Closes docs/protocol.md §6 lets the server stack send a client for a bad frame."""

_tokens = itertools.count()


def fuzz_frame(url: str, json_conn: bool, frame: bytes | str) -> None:
    """One example: a fresh connection, the frame, and the ping barrier."""
    token = f"fz-{next(_tokens)}"
    subprotocol = SUBPROTOCOL_JSON if json_conn else SUBPROTOCOL_MSGPACK
    with Probe(f"{url}/ws", json_codec=json_conn, subprotocol=subprotocol) as probe:
        try:
            answers = probe.exchange(
                frame, Ping(token), lambda m: isinstance(m, Pong) and m.id == token
            )
        except Closed as closed:
            assert closed.code in DOCUMENTED_CLOSES, f"closed with {closed.code}"
            return
    try:
        decode(frame) if isinstance(frame, bytes) else decode_json(frame)
    except ProtocolError:
        # Its code may differ (how deep a nesting overflows depends on the thread's stack).
        assert any(isinstance(a, Error) for a in answers), f"no error for a bad frame: {answers}"


def bystander_is_served(bystander: Probe, edge: Node) -> None:
    token = "bystander"
    answers = bystander.exchange(
        None, Suggest(token, "syd", 3), lambda m: getattr(m, "id", None) == token
    )
    assert isinstance(answers[-1], Suggestions), answers
    assert httpx.get(f"{edge.url}/readyz").status_code == 200


@pytest.fixture
def watched(fuzz_edge: Node, fuzz_core: Node) -> Iterator[Node]:
    """The shared edge, with a bystander connected throughout and no new errors logged."""
    errors = NewErrors(fuzz_edge, fuzz_core)
    with Probe(f"{fuzz_edge.url}/ws") as bystander:
        yield fuzz_edge
        bystander_is_served(bystander, fuzz_edge)
    assert errors() == []


CASES = {
    "msgpack-frames-on-msgpack": (False, msgpack_codec()),
    "json-frames-on-msgpack": (False, json_codec()),
    "json-frames-on-json": (True, json_codec()),
    "msgpack-frames-on-json": (True, msgpack_codec()),
}


@pytest.mark.parametrize("case", sorted(CASES))
@examples(60)
@given(data=st.data())
def test_every_frame_is_answered_and_nothing_breaks(
    watched: Node, case: str, data: st.DataObject
) -> None:
    json_conn, codec = CASES[case]
    fuzz_frame(watched.url, json_conn, data.draw(frames(CLASSES, codec)))


def _surrogate_frames(codec: Codec) -> st.SearchStrategy[bytes | str]:
    return frames(REQUESTS, codec)


@pytest.fixture
def own_edge(fuzz_core: Node, tmp_path: Path) -> Iterator[Node]:
    """An edge of its own: finding 2 of issue 9 (lone surrogates) once left connections that
    delayed its shutdown; a regression must not slow the shared edge's."""
    edge = start_edge(tmp_path, fuzz_core.url, "fuzz2", env=FUZZ_EDGE_ENV)
    try:
        yield edge
    finally:
        edge.stop(grace_s=3)


@pytest.mark.parametrize("json_conn", [False, True], ids=["on-msgpack", "on-json"])
@examples(30)
@given(data=st.data())
def test_lone_surrogates_in_json_frames_are_refused(
    own_edge: Node, json_conn: bool, data: st.DataObject
) -> None:
    """Escaped lone surrogates in every string of a JSON frame (valid UTF-8 on the wire)."""
    errors = NewErrors(own_edge)
    fuzz_frame(own_edge.url, json_conn, data.draw(_surrogate_frames(json_codec(surrogates=True))))
    assert errors() == []


def test_invalid_utf8_in_a_text_frame_closes_with_1007(watched: Node) -> None:
    with Probe(f"{watched.url}/ws") as probe:
        with pytest.raises(Closed) as closed:
            probe.exchange(b"\xff\xfe", Ping("x"), lambda m: isinstance(m, Pong), text=True)
    assert closed.value.code == CloseCode.INVALID_DATA


def test_an_oversized_frame_closes_with_1009(watched: Node) -> None:
    with Probe(f"{watched.url}/ws") as probe:
        with pytest.raises(Closed) as closed:
            probe.exchange(b"\x00" * (64 * 1024 + 1), Ping("x"), lambda m: isinstance(m, Pong))
    assert closed.value.code == CloseCode.MESSAGE_TOO_BIG
