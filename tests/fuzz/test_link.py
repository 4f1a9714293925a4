"""Fuzz the core's ``/link`` with a raw link client that holds the link token.

After a valid ``hello``, every link message class is sent (type-correct with hostile text, or
broken by class) and garbage frames besides; a ``sync`` after each frame is the barrier.
Properties: each frame the link's tolerant decoder refuses gets an ``error`` (an unknown
field is dropped, not refused: the link is forward compatible), the link stays open and
answers the barrier, the real edge linked to the same core keeps its link and serves, and
the core logs no error or traceback. A fuzzed *first* frame is either a ``hello`` or gets the
documented close 1008.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given, strategies as st

from shared.errors import CloseCode, ProtocolError
from shared.protocol import Error, Hello, Message, Sync, Synced, decode, decode_json, talks
from tests.fuzz.client import Closed, Probe
from tests.fuzz.conftest import NewErrors
from tests.fuzz.settings import examples
from tests.fuzz.wire import LINK_CLASSES, frames, json_codec, msgpack_codec
from tests.helpers.nodes import LINK_TOKEN, Node

AUTH = {"Authorization": f"Bearer {LINK_TOKEN}"}

_ids = itertools.count(1)


def link(core: Node) -> Probe:
    return Probe(f"{core.url}/link", headers=AUTH)


def synced(sync_id: int) -> object:
    return lambda m: isinstance(m, Synced) and m.id == sync_id


def fuzz_link_frame(core: Node, frame: bytes | str) -> None:
    with link(core) as probe:
        n = next(_ids)
        probe.send(Hello("fuzz", f"fuzz-link-{n}", -1))
        probe.exchange(None, Sync(-n), synced(-n))  # type: ignore[arg-type]  # session started
        answers = probe.exchange(frame, Sync(n), synced(n))  # type: ignore[arg-type]
    try:  # the link is forward compatible: unknown fields are dropped, not refused
        decode(frame, strict=False) if isinstance(frame, bytes) else decode_json(frame)
        refused = isinstance(frame, str)  # the link carries binary frames only
    except ProtocolError:
        refused = True
    if refused:
        assert any(isinstance(a, Error) for a in answers), f"no error for a bad frame: {answers}"


@pytest.fixture
def watched(fuzz_core: Node, fuzz_edge: Node) -> Iterator[Node]:
    """The shared core; afterwards the real edge still has its link and serves."""
    errors = NewErrors(fuzz_core, fuzz_edge)
    yield fuzz_core
    with httpx.Client(base_url=fuzz_edge.url) as client:
        assert client.get("/status").json()["link"] == "up"
        assert client.get("/suggest", params={"q": "syd"}).status_code == 200
    assert errors() == []


CODECS = {"msgpack": msgpack_codec(), "json-text": json_codec()}


@pytest.mark.parametrize("codec", sorted(CODECS))
@examples(50)
@given(data=st.data())
def test_every_link_frame_is_answered_and_nothing_breaks(
    watched: Node, codec: str, data: st.DataObject
) -> None:
    fuzz_link_frame(watched, data.draw(frames(LINK_CLASSES, CODECS[codec])))


@examples(30)
@given(frame=frames(LINK_CLASSES, msgpack_codec()))
def test_a_first_frame_that_is_not_hello_closes_1008(watched: Node, frame: bytes | str) -> None:
    with link(watched) as probe:
        try:
            probe.exchange(frame, Sync(0), lambda m: isinstance(m, Synced))
        except Closed as closed:
            if closed.code == CloseCode.UNSUPPORTED_PROTOCOL:  # a hello of another version
                hello = decode(frame, strict=False)  # type: ignore[arg-type]
                assert isinstance(hello, Hello) and not talks(hello.protocol)
            else:
                assert closed.code == CloseCode.POLICY_VIOLATION
            return
    message: Message = decode(frame, strict=False)  # type: ignore[arg-type]
    assert isinstance(message, Hello)
