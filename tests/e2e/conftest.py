"""A core with the default corpus and two edges, shared by the read-mostly e2e tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.nodes import Node, start_core, start_edge

Cluster = tuple[Node, Node, Node]
"""A core and two edges (``syd``, ``lhr``), as :func:`cluster` yields them (and the hostile
tests' own ``cluster`` fixture)."""


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp: Path = tmp_path_factory.mktemp("cluster")
    core = start_core(tmp)
    edges: list[Node] = []
    try:
        edges.append(start_edge(tmp, core.url, "syd"))
        edges.append(start_edge(tmp, core.url, "lhr"))
        yield core, edges[0], edges[1]
    finally:
        for node in [*edges, core]:
            node.stop()
    for node in [core, *edges]:
        assert not node.errors(), f"{node.args[0]} logged errors: {node.errors()}"
