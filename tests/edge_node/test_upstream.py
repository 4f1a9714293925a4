"""The edge's link shell fed frames directly (no socket): compaction snapshots never make it
answer from older data."""

from __future__ import annotations

from edge_node.metrics import EdgeMetrics
from edge_node.settings import EdgeSettings
from edge_node.upstream import Upstream
from shared import snapshot
from shared.protocol import Delta, Snapshot, TermChange, encode
from shared.snapshot import Entry

EPOCH = "db-1"


def snapshot_frame(version: int, terms: dict[str, int], epoch: str = EPOCH) -> bytes:
    entries = [Entry(k, k.title(), w) for k, w in sorted(terms.items())]
    blob = snapshot.build(entries, version=version, hot={}, hot_threshold=64, depth=20)
    return encode(Snapshot(version, blob, epoch))


def delta_frame(start: int, key: str, weight: int) -> bytes:
    return encode(Delta(start, start + 1, [TermChange(key, key.title(), weight)]))


def upstream() -> Upstream:
    settings = EdgeSettings(core_url="http://127.0.0.1:1", region="syd")
    return Upstream(settings, "token", EdgeMetrics("syd"))


async def test_an_older_compaction_snapshot_waits_until_it_has_caught_up() -> None:
    """While the deltas after a compaction snapshot replay, the edge keeps serving the newer
    index it had; it swaps once the new one reaches the same version."""
    up = upstream()
    await up._receive(snapshot_frame(3, {"paris": 10}))
    await up._receive(delta_frame(3, "lyon", 20))
    await up._receive(delta_frame(4, "nice", 30))
    served = up.index
    assert up.version == 5

    await up._receive(snapshot_frame(3, {"paris": 10}))  # compaction at 3, deltas follow
    assert up.index is served and up.version == 5
    await up._receive(delta_frame(3, "lyon", 20))
    assert up.index is served and up.version == 5
    await up._receive(delta_frame(4, "nice", 30))
    assert up.index is not served and up.version == 5
    assert up.index is not None
    assert [e.term for e in up.index.query("", 3)] == ["Nice", "Lyon", "Paris"]


async def test_a_snapshot_from_another_database_replaces_the_index_at_once() -> None:
    """A snapshot of another epoch is not a compaction: it is served at once, even if older."""
    up = upstream()
    await up._receive(snapshot_frame(7, {"paris": 10}))
    await up._receive(snapshot_frame(2, {"elsewhere": 5}, epoch="db-2"))
    assert up.version == 2
    assert up.index is not None and [e.term for e in up.index.query("", 5)] == ["Elsewhere"]
