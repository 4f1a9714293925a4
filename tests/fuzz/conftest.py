"""A real core and edge for the fuzz tier, shared by its tests.

The edge's websocket rate is raised so that a fuzz run, which sends far faster than a person,
meets the handlers rather than the rate limiter (the limiter has its own tests).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.helpers.nodes import FAST_LINK, SMALL_CORPUS, Node, start_core, start_edge
from tests.helpers.waiting import eventually

FUZZ_EDGE_ENV = {**FAST_LINK, "LIGHTCONE_WS_RATE": "100000", "LIGHTCONE_WS_BURST": "100000"}


@pytest.fixture(scope="package")
def fuzz_core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    core = start_core(tmp_path_factory.mktemp("fuzz-core"), corpus=SMALL_CORPUS, env=FAST_LINK)
    try:
        yield core
    finally:
        core.stop()


@pytest.fixture(scope="package")
def fuzz_edge(fuzz_core: Node, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    edge = start_edge(
        tmp_path_factory.mktemp("fuzz-edge"), fuzz_core.url, "fuzz", env=FUZZ_EDGE_ENV
    )
    try:
        yield edge
    finally:
        edge.stop()


class NewErrors:
    """Error lines and tracebacks a node logs from now on (``Node.errors()`` since a mark)."""

    def __init__(self, *nodes: Node) -> None:
        self.nodes = nodes
        self.marks = [len(node.errors()) for node in nodes]

    def __call__(self) -> list[str]:
        return [
            line
            for node, mark in zip(self.nodes, self.marks, strict=True)
            for line in node.errors()[mark:]
        ]


def wait_until_ready(get: Callable[[str], Any], timeout_s: float = 30) -> None:
    """Until ``get("/readyz")`` (an in-process client's) answers 200, within ``timeout_s``."""

    async def ready() -> bool:
        return bool(get("/readyz").status_code == 200)

    asyncio.run(eventually(ready, timeout_s, "the in-process node is ready"))
