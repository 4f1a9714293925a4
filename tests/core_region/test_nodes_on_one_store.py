"""Several core nodes on one PostgreSQL send the same stream: the database decides every delta
boundary (marks) and compaction point, so two nodes, written to through both, hold
byte-identical deltas and snapshots, and a node started later loads the same base and follows
to the same frames. (The broker that tells nodes of each other's marks is tested end to end;
here each node is told by hand, :meth:`CoreNode.follow`.)"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from core_region.node import CoreNode, EdgePeer
from core_region.settings import CoreSettings
from core_region.store import LoggedSearch
from shared.folding import fold
from shared.protocol import Delta, Hello, Snapshot, decode
from tests.helpers.core import running_core, suggest_of
from tests.helpers.nodes import SMALL_CORPUS

COMPACT_AFTER = 6
"""Small, so a few writes make a compaction."""


@contextlib.asynccontextmanager
async def node_on(url: str, tmp_path: Path, **options: Any) -> AsyncIterator[CoreNode]:
    settings = CoreSettings(
        data_dir=tmp_path,
        store=url,
        corpus=SMALL_CORPUS,
        publish_delay_ms=0,
        compact_after=COMPACT_AFTER,
        min_sources=0,
        **options,
    )
    async with running_core(settings) as node:
        yield node


def stream_frames(peer: EdgePeer) -> list[bytes]:
    """The snapshot and delta frames queued to ``peer``, as bytes."""
    frames = []
    while not peer.queue.empty():
        frame = peer.queue.get_nowait()
        assert frame is not None
        if isinstance(decode(frame), Snapshot | Delta):
            frames.append(frame)
    return frames


def search(store_id: str, q: str) -> LoggedSearch:
    return LoggedSearch(store_id, fold(q), q, q, "syd", "s1")


async def test_two_nodes_send_the_same_deltas_and_snapshots(
    postgres_url: str, tmp_path: Path
) -> None:
    async with (
        node_on(postgres_url, tmp_path / "a") as a,
        node_on(postgres_url, tmp_path / "b") as b,
    ):
        assert a.epoch == b.epoch and a.published == b.published
        edge_a = await a.connect(Hello("syd", "edge-a", -1, a.epoch))
        edge_b = await b.connect(Hello("lhr", "edge-b", -1, b.epoch))
        for n in range(3 * COMPACT_AFTER):
            writer, other = (a, b) if n % 2 else (b, a)
            if n % 3:
                await suggest_of(writer).upsert_term(f"town {n}", f"Town {n}", 100 + n)
            else:
                await writer.store.log_searches([search(f"s{n}", f"Searched {n % 4}")])
            await writer.publish()
            await other.follow(await other.store.last_mark())
        assert a.published == b.published
        sent_a, sent_b = stream_frames(edge_a), stream_frames(edge_b)
        kinds = [type(decode(f)).__name__ for f in sent_a]
        assert kinds.count("Snapshot") >= 3, kinds  # the first one and two compactions
        assert sent_a == sent_b
        assert suggest_of(a).stream.catch_up(-1) == suggest_of(b).stream.catch_up(-1)

        async with node_on(postgres_url, tmp_path / "c") as c:
            # A node started later loads the stored base and follows the marks after it.
            assert c.published == a.published
            assert suggest_of(c).stream.catch_up(-1) == suggest_of(a).stream.catch_up(-1)
            # An edge moving from a to c resumes by version: nothing to send but flags and
            # a heartbeat.
            version = suggest_of(a).version
            base = suggest_of(a).stream.base_version
            moved = await c.connect(
                Hello(
                    "syd",
                    "edge-a",
                    version,
                    c.epoch,
                    versions={"suggest": version},
                    bases={"suggest": base} if base is not None else {},
                )
            )
            assert stream_frames(moved) == []


async def test_an_edge_ahead_of_a_lagging_node_is_caught_up_not_a_rollback(
    postgres_url: str, tmp_path: Path
) -> None:
    """The epoch rule holds against the database's head: an edge that comes from a node that
    published later is ahead of this node, not of the database: no new epoch, only deltas."""
    async with (
        node_on(postgres_url, tmp_path / "a") as a,
        node_on(postgres_url, tmp_path / "b") as b,
    ):
        version = await suggest_of(a).upsert_term("ahead town", "Ahead Town", 7)
        assert await a.publish() == version and b.published < version  # b heard nothing
        base = suggest_of(a).stream.base_version
        assert base is not None
        peer = await b.connect(
            Hello(
                "syd",
                "edge-a",
                version,
                b.epoch,
                versions={"suggest": version},
                bases={"suggest": base},
            )
        )
        assert b.epoch == a.epoch and b.published == version
        assert stream_frames(peer) == []  # it holds the head already
        assert b.metrics.registry.get_sample_value("lightcone_epoch_rotations_total") == 0


async def test_a_node_alone_with_new_stream_settings_builds_its_own_base(
    postgres_url: str, tmp_path: Path
) -> None:
    """A restart with another hot threshold: the stored base is not its stream's, so it makes
    a first base of its own. (With other live nodes it refuses to start:
    tests/e2e/test_core_nodes.py.)"""
    async with node_on(postgres_url, tmp_path / "a") as first:
        old = suggest_of(first).stream.catch_up(-1)
    async with node_on(postgres_url, tmp_path / "b", hot_threshold=3) as alone:
        assert suggest_of(alone).stream.catch_up(-1) != old
        assert await alone.store.newest_base_key() == suggest_of(alone).stream_key()
