"""The hub with a real store: fan-out, deltas and snapshots drop a poison item alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core_region.app import _start
from core_region.hub import EdgePeer, Hub
from core_region.link import handle
from core_region.metrics import CoreMetrics
from core_region.settings import CoreSettings
from core_region.store import Store
from core_region.suggest.catalog import TermRow
from shared import snapshot
from shared.protocol import (
    Delta,
    Error,
    Joined,
    Member,
    Message,
    RoomSync,
    Searches,
    SearchItem,
    Snapshot,
    Sync,
    Synced,
    decode,
)
from tests.helpers.nodes import SMALL_CORPUS

BAD = "bad\udfff"  # a lone surrogate: no codec can carry it
POISON_ROW = TermRow("poison", "Poison", 2**70, 0, False)
"""A row the catalog serves (the text door admits it) whose weight no codec can carry: past
int64, where msgpack and the snapshot's weight array stop. The door keeps surrogates out of
the catalog, so this is the member of the class that remains."""


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    settings = CoreSettings(data_dir=tmp_path, corpus=SMALL_CORPUS, publish_delay_ms=0)
    store = await Store.open(tmp_path / "lightcone.db")
    try:
        hub = await _start(settings, store, CoreMetrics())
        yield hub
        await hub.close()
    finally:
        await store.close()


def drained(peer: EdgePeer) -> list[Message]:
    frames = []
    while not peer.queue.empty():
        frame = peer.queue.get_nowait()
        assert frame is not None
        frames.append(decode(frame))
    return frames


def dropped(hub: Hub, where: str) -> float:
    value = hub.metrics.registry.get_sample_value("lightcone_items_dropped_total", {"where": where})
    return value or 0.0


def member(member_id: str) -> Member:
    return Member(member_id, "Ada", "#1a2b3c", "syd")


async def test_fan_out_drops_an_unencodable_relay_alone(hub: Hub) -> None:
    peer = hub.connect("edge-1", "syd", -1, hub.epoch)
    drained(peer)
    hub.route([(["edge-1"], Joined(BAD, member("m1"))), (["edge-1"], Joined("r", member("m2")))])
    assert drained(peer) == [Joined("r", member("m2"))]
    assert dropped(hub, "hub_fanout") == 1


async def test_a_delta_drops_an_unencodable_change_alone(hub: Hub) -> None:
    peer = hub.connect("edge-1", "syd", -1, hub.epoch)
    drained(peer)
    version = hub.catalog.version + 1
    rows = [POISON_ROW, TermRow("fine", "Fine", 10**9, 0, False)]
    hub.catalog.apply(rows, version)
    hub.publish()
    (delta,) = drained(peer)
    assert isinstance(delta, Delta) and delta.to_version == version
    assert [t.key for t in delta.terms] == ["fine"]
    assert dropped(hub, "delta") >= 1


async def test_a_snapshot_is_built_without_an_unencodable_entry(hub: Hub) -> None:
    rows = [POISON_ROW, TermRow("fine", "Fine", 10**9, 0, False)]
    hub.catalog.apply(rows, hub.catalog.version + 1)
    await hub.rebase()  # used to raise: every compaction failed
    peer = hub.connect("edge-1", "syd", -1, hub.epoch)
    first = drained(peer)[0]
    assert isinstance(first, Snapshot)
    data = snapshot.parse(first.data)
    assert data.get("fine") is not None and len(data) == 301
    assert dropped(hub, "snapshot") == 1


async def test_a_message_whose_handling_fails_is_dropped_alone(hub: Hub) -> None:
    """The store fails under a batch of searches: the edge hears internal_error, the link
    goes on and the next message is handled (the link used to end without a word)."""
    peer = hub.connect("edge-1", "syd", -1, hub.epoch)
    drained(peer)
    await hub.store.close()  # a fault: the database is gone
    await handle(hub, peer, Searches([SearchItem("s1", "paris")]))
    (error,) = drained(peer)
    assert isinstance(error, Error) and error.code == "internal_error"
    assert dropped(hub, "link_handle") == 1
    await handle(hub, peer, Sync(1))
    assert drained(peer) == [Synced(1, hub.catalog.published)]


async def test_a_replaced_link_no_longer_changes_the_rooms(hub: Hub) -> None:
    """A link replaced by a newer one of the same edge (4409) may still drain frames it had
    buffered; a late join or a late part of its old room_sync must not leave a ghost."""
    old = hub.connect("edge-1", "syd", -1, hub.epoch)
    new = hub.connect("edge-1", "syd", -1, hub.epoch)
    hub.cursor(new, RoomSync({"r": [member("m2")]}, part=0, final=False))
    hub.cursor(old, RoomSync({"r": [member("m1")]}, part=1, final=False))
    hub.cursor(old, Joined("r", member("m3")))
    hub.cursor(new, RoomSync({"r": []}, part=1, final=True))
    assert [m.id for m in hub.rooms.members("r")] == ["m2"]
