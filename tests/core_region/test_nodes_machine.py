"""Core nodes on one store, driven by hypothesis: whatever the interleaving of writes through
any node, publications, follows, compactions and restarts, nodes that followed the same marks
hold the same stream, byte for byte, and the same catalog.

Real :class:`~core_region.node.CoreNode` objects and real stores; the store here is one SQLite
file that every node opens (its writers serialize on the file's lock as PostgreSQL's
serialize on the version row; the two-node test on PostgreSQL is
tests/core_region/test_nodes_on_one_store.py).
The broker's part (telling a node of another's mark) is the ``follow`` rule.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from core_region.app import FEATURES
from core_region.metrics import CoreMetrics
from core_region.node import CoreNode
from core_region.settings import CoreSettings
from core_region.store import LoggedSearch, Store
from shared.folding import fold
from tests.helpers.core import suggest_of
from tests.helpers.nodes import SMALL_CORPUS

T = TypeVar("T")
NODES = 3
KEYS = ["paris", "parma", "perth", "pune", "porto", "lima", "lyon"]
nodes = st.integers(0, NODES - 1)


class NodesOnOneStore(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = tempfile.TemporaryDirectory(prefix="lightcone-nodes-")
        self.path = Path(self.folder.name) / "lightcone.db"
        self.ids = itertools.count()
        self.nodes: list[CoreNode | None] = [None] * NODES
        for n in range(NODES):
            self.nodes[n] = self.run(self.start())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    async def start(self) -> CoreNode:
        settings = CoreSettings(
            data_dir=self.path.parent,
            corpus=SMALL_CORPUS,
            publish_delay_ms=60_000,  # publications happen when a rule says
            compact_after=4,
            min_sources=0,
            hot_threshold=2,
        )
        node = CoreNode(settings, CoreMetrics(), FEATURES)
        await node.start(await Store.open(self.path))
        return node

    async def stop(self, node: CoreNode) -> None:
        await node.stop()
        await node.store.close()

    def node(self, n: int) -> CoreNode:
        node = self.nodes[n]
        assert node is not None
        return node

    @rule(n=nodes, key=st.sampled_from(KEYS), weight=st.integers(1, 50), block=st.booleans())
    def admin_write(self, n: int, key: str, weight: int, block: bool) -> None:
        suggest = suggest_of(self.node(n))
        if block:
            self.run(suggest.block_term(key, key.title()))
        else:
            self.run(suggest.upsert_term(key, key.title(), weight))

    @rule(n=nodes, keys=st.lists(st.sampled_from(KEYS), min_size=1, max_size=4))
    def searches(self, n: int, keys: list[str]) -> None:
        batch = [LoggedSearch(f"s{next(self.ids)}", fold(k), k.title(), k, "syd", "") for k in keys]
        self.run(self._searches(self.node(n), batch))

    async def _searches(self, node: CoreNode, batch: list[LoggedSearch]) -> None:
        result = await node.store.log_searches(batch)
        assert result.version is not None
        node.committed_at(result.version)

    @rule(n=nodes)
    def publish(self, n: int) -> None:
        self.run(self.node(n).publish())

    @rule(n=nodes)
    def follow(self, n: int) -> None:
        node = self.node(n)
        self.run(node.follow(self.run(node.store.last_mark())))

    @rule(n=nodes)
    def restart(self, n: int) -> None:
        self.run(self.stop(self.node(n)))
        self.nodes[n] = self.run(self.start())

    @invariant()
    def same_marks_same_stream(self) -> None:
        by_mark: dict[int, CoreNode] = {}
        for n in range(NODES):
            node = self.node(n)
            other = by_mark.setdefault(node.published, node)
            if other is node:
                continue
            mine, theirs = suggest_of(node), suggest_of(other)
            assert mine.stream.catch_up(-1) == theirs.stream.catch_up(-1)
            assert mine.catalog.entries() == theirs.catalog.entries()

    @rule()
    def everyone_follows(self) -> None:
        """All follow the newest mark: they hold one stream."""
        for n in range(NODES):
            self.follow(n)
        streams = {tuple(suggest_of(self.node(n)).stream.catch_up(-1)) for n in range(NODES)}
        assert len(streams) == 1

    def teardown(self) -> None:
        for n in range(NODES):
            if self.nodes[n] is not None:
                self.run(self.stop(self.node(n)))
        self.loop.close()
        self.folder.cleanup()


NodesOnOneStore.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
test_nodes_on_one_store = NodesOnOneStore.TestCase
