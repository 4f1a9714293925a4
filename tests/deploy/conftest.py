"""A core started as the image starts it, shared by the deploy tests that only read from it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.image import fly_toml, port_of, start_as_image
from tests.helpers.nodes import Node


@dataclass
class Running:
    """A node and the port it listens on, on every address."""

    node: Node
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="package")
def image_core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp: Path = tmp_path_factory.mktemp("image-core")
    node = start_as_image(
        "core",
        tmp,
        fly_toml("core")["primary_region"],
        {"LIGHTCONE_DATA_DIR": str(tmp / "data")},
    )
    try:
        node.wait_for("Application startup complete", 60)
        yield Running(node, port_of(node))
    finally:
        node.stop()
    assert not node.errors(), f"the core logged errors: {node.errors()}"


def start_edge(tmp: Path, core: Running, region: str, **env: str) -> Running:
    """An edge started as the image starts it, in ``region``, linked to ``core``; ready."""
    node = start_as_image(
        "edge", tmp, region, {"LIGHTCONE_CORE_URL": core.url, **env}, log_name=f"edge-{region}"
    )
    try:
        node.wait_for("loaded snapshot", 30)
        return Running(node, port_of(node))
    except BaseException:
        node.stop()
        raise
