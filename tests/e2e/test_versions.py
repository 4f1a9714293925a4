"""Protocol versions on the link, against a real core: a hello it cannot talk is refused by
name (an ``error``, then close 4426, and a log line on both sides); a hello from before
versions (no ``protocol`` field) still links."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

import edge_node.link
from edge_node.app import FEATURES
from edge_node.metrics import EdgeMetrics
from edge_node.node import EdgeNode
from edge_node.settings import EdgeSettings
from shared.errors import CloseCode
from shared.protocol import PROTOCOL_VERSION, Error, Hello, Snapshot, decode, encode, pack
from shared.tasks import spawn, stop
from tests.helpers.nodes import LINK_TOKEN, SMALL_CORPUS, Node, start_core
from tests.helpers.waiting import eventually

AUTH = {"Authorization": f"Bearer {LINK_TOKEN}"}


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Node]:
    node = start_core(tmp_path, corpus=SMALL_CORPUS)
    try:
        yield node
    finally:
        node.stop()


def link_url(core: Node) -> str:
    return core.url.replace("http://", "ws://") + "/link"


async def test_a_hello_with_an_unsupported_protocol_is_refused_by_name(core: Node) -> None:
    future = PROTOCOL_VERSION + 1
    async with connect(link_url(core), additional_headers=AUTH) as ws:
        await ws.send(encode(Hello("syd", "edge-future", -1, "", future)))
        answer = decode(await ws.recv(decode=False), strict=False)
        assert isinstance(answer, Error) and answer.code == "unsupported_protocol"
        assert f"protocol version {future} is not supported" in answer.message
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == CloseCode.UNSUPPORTED_PROTOCOL
    core.wait_for(f"refused edge edge-future \\(syd\\): protocol version {future}", 10)
    assert core.errors() == []


async def test_a_hello_from_before_versions_still_links(core: Node) -> None:
    """An older edge's hello has no ``protocol`` (and may carry fields this core ignores)."""
    old_hello = {"type": "hello", "region": "syd", "edge_id": "edge-old", "version": -1}
    async with connect(link_url(core), additional_headers=AUTH, max_size=None) as ws:
        await ws.send(pack({**old_hello, "from_a_newer_edge": [1, 2]}))
        assert isinstance(decode(await ws.recv(decode=False), strict=False), Snapshot)


async def test_the_edge_logs_a_clear_message_when_the_core_refuses_its_version(
    core: Node, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A real edge link that speaks a version the core does not (a newer build)."""
    monkeypatch.setattr(edge_node.link, "PROTOCOL_VERSION", PROTOCOL_VERSION + 1)
    settings = EdgeSettings(core_url=core.url, region="syd")
    edge = EdgeNode(settings, LINK_TOKEN, EdgeMetrics("syd"), FEATURES, jitter=lambda: 0.0)
    caplog.set_level(logging.ERROR, logger="edge_node.link")
    task = spawn("link", edge.link.run, edge.metrics.task_crashes)
    try:

        async def refused() -> bool:
            return any("does not talk this edge's protocol" in r.message for r in caplog.records)

        await eventually(refused, 10, "the edge's log line for close 4426")
        assert not edge.ready()  # nothing was served from a core it cannot talk with
    finally:
        await stop(task)
