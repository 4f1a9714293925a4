"""The core node and its features with a real store: fan-out, deltas and snapshots drop a
poison item alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core_region.app import FEATURES
from core_region.cursors.feature import CursorsFeature
from core_region.link import handle
from core_region.metrics import CoreMetrics
from core_region.node import CoreNode, EdgePeer
from core_region.settings import CoreSettings
from core_region.store import Store
from core_region.suggest.catalog import TermRow
from shared import snapshot
from shared.protocol import (
    Delta,
    Error,
    Hello,
    Joined,
    Member,
    Message,
    RoomSync,
    Searches,
    SearchItem,
    Snapshot,
    decode,
)
from tests.helpers.core import suggest_of
from tests.helpers.nodes import SMALL_CORPUS

BAD = "bad\udfff"  # a lone surrogate: no codec can carry it
POISON_ROW = TermRow("poison", "Poison", 2**70, 0, False)
"""A row the catalog serves (the text door admits it) whose weight no codec can carry: past
int64, where msgpack and the snapshot's weight array stop. The door keeps surrogates out of
the catalog, so this is the member of the class that remains."""


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[CoreNode]:
    settings = CoreSettings(data_dir=tmp_path, corpus=SMALL_CORPUS, publish_delay_ms=0)
    store = await Store.open(tmp_path / "lightcone.db")
    try:
        node = CoreNode(settings, CoreMetrics(), FEATURES)
        await node.start(store)
        yield node
        await node.stop()
    finally:
        await store.close()


def cursors_of(node: CoreNode) -> CursorsFeature:
    feature = node.features["cursors"]
    assert isinstance(feature, CursorsFeature)
    return feature


async def connect(node: CoreNode, edge_id: str = "edge-1") -> EdgePeer:
    return await node.connect(Hello("syd", edge_id, -1, node.epoch))


def drained(peer: EdgePeer) -> list[Message]:
    frames = []
    while not peer.queue.empty():
        frame = peer.queue.get_nowait()
        assert frame is not None
        frames.append(decode(frame))
    return frames


def dropped(node: CoreNode, where: str) -> float:
    value = node.metrics.registry.get_sample_value(
        "lightcone_items_dropped_total", {"where": where}
    )
    return value or 0.0


def member(member_id: str) -> Member:
    return Member(member_id, "Ada", "#1a2b3c", "syd")


async def test_fan_out_drops_an_unencodable_relay_alone(node: CoreNode) -> None:
    peer = await connect(node)
    drained(peer)
    relays: list[tuple[list[str], Message]] = [
        (["edge-1"], Joined(BAD, member("m1"))),
        (["edge-1"], Joined("r", member("m2"))),
    ]
    cursors_of(node).route(relays)
    assert drained(peer) == [Joined("r", member("m2"))]
    assert dropped(node, "hub_fanout") == 1


async def test_a_delta_drops_an_unencodable_change_alone(node: CoreNode) -> None:
    peer = await connect(node)
    drained(peer)
    catalog = suggest_of(node).catalog
    version = catalog.version + 1
    rows = [POISON_ROW, TermRow("fine", "Fine", 10**9, 0, False)]
    catalog.apply(rows, version)  # as if read from the log (no store takes that weight)
    await suggest_of(node).follow(node.published, [version])
    (delta,) = drained(peer)
    assert isinstance(delta, Delta) and delta.to_version == version
    assert [t.key for t in delta.terms] == ["fine"]
    assert dropped(node, "delta") >= 1


async def test_a_snapshot_is_built_without_an_unencodable_entry(node: CoreNode) -> None:
    suggest = suggest_of(node)
    rows = [POISON_ROW, TermRow("fine", "Fine", 10**9, 0, False)]
    suggest.catalog.apply(rows, suggest.catalog.version + 1)
    await suggest.rebase()  # used to raise: every compaction failed
    peer = await connect(node)
    first = drained(peer)[0]
    assert isinstance(first, Snapshot)
    data = snapshot.parse(first.data)
    assert data.get("fine") is not None and len(data) == 301
    assert dropped(node, "snapshot") == 1


async def test_a_message_whose_handling_fails_is_dropped_alone(node: CoreNode) -> None:
    """The store fails under a batch of searches: the edge hears internal_error, the link
    goes on and the next message is handled (the link used to end without a word)."""
    peer = await connect(node)
    drained(peer)
    await node.store.close()  # a fault: the database is gone
    await handle(node, peer, Searches([SearchItem("s1", "paris")]))
    (error,) = drained(peer)
    assert isinstance(error, Error) and error.code == "internal_error"
    assert dropped(node, "link_handle") == 1
    await handle(node, peer, Joined("r", member("m1")))  # needs no store
    assert [m.id for m in cursors_of(node).rooms.members("r")] == ["m1"]


async def test_a_replaced_link_no_longer_changes_the_rooms(node: CoreNode) -> None:
    """A link replaced by a newer one of the same edge (4409) may still drain frames it had
    buffered; a late join or a late part of its old room_sync must not leave a ghost."""
    old, new = await connect(node), await connect(node)
    await handle(node, new, RoomSync({"r": [member("m2")]}, part=0, final=False))
    await handle(node, old, RoomSync({"r": [member("m1")]}, part=1, final=False))
    await handle(node, old, Joined("r", member("m3")))
    await handle(node, new, RoomSync({"r": []}, part=1, final=True))
    assert [m.id for m in cursors_of(node).rooms.members("r")] == ["m2"]
