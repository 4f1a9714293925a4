"""Real ``lightcone core`` / ``lightcone edge`` processes on ephemeral ports, for e2e tests.

Each node runs the CLI in a subprocess with ``--port 0``, supervised as ``lightcone up``
supervises its nodes (:class:`deploy.local.supervisor.Child`): a reader thread follows its log, so
tests wait for a line ("listening on", "loaded snapshot"), never on fixed sleeps. Every node
is stopped (and its PID reaped) by the fixture that started it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from deploy.local.supervisor import LISTENING, Child
from tests.helpers.proxy_thread import ProxyThread

ADMIN_TOKEN = "test-admin-token"
LINK_TOKEN = "test-link-token"

SMALL_CORPUS = Path(__file__).parent.parent / "data" / "cities_small.tsv"
"""300 cities: a core on it starts in well under a second."""

FAST_LINK = {
    "LIGHTCONE_HEARTBEAT_S": "0.2",
    "LIGHTCONE_LINK_TIMEOUT_S": "1.0",
    "LIGHTCONE_RECONNECT_MAX_S": "0.3",
}
"""A link that notices a cut within a second and comes back within a third of one."""


class Node(Child):
    """A running lightcone process (see :class:`deploy.local.supervisor.Child`) and its address."""

    def __init__(self, args: list[str], env: Mapping[str, str], log_path: Path) -> None:
        super().__init__(log_path.stem, args, env, log_path)
        self.args = args
        self.url = self.wait_for(LISTENING, 30).group(1)

    def errors(self) -> list[str]:
        """Log lines at ERROR, and tracebacks: a happy path has none."""
        return [line for line in self.lines if " ERROR " in line or "Traceback" in line]


def start_core(
    tmp: Path, *, corpus: Path | None = None, env: Mapping[str, str] | None = None
) -> Node:
    args = ["core", "--port", "0", "--data-dir", str(tmp / "core-data")]
    if corpus is not None:
        args += ["--corpus", str(corpus)]
    base = {"LIGHTCONE_ADMIN_TOKEN": ADMIN_TOKEN, "LIGHTCONE_LINK_TOKEN": LINK_TOKEN}
    node = Node(args, {**base, **(env or {})}, tmp / "core.log")
    node.wait_for("Application startup complete", 60)
    return node


def start_edge(
    tmp: Path, core_url: str, region: str, *, env: Mapping[str, str] | None = None
) -> Node:
    args = ["edge", "--port", "0", "--region", region, "--core-url", core_url]
    base = {"LIGHTCONE_LINK_TOKEN": LINK_TOKEN}
    node = Node(args, {**base, **(env or {})}, tmp / f"edge-{region}.log")
    node.wait_for("loaded snapshot", 30)
    with httpx.Client() as client:
        assert client.get(f"{node.url}/readyz").status_code == 200
    return node


@dataclass
class Pair:
    """A core; edge ``far`` linked through a proxy the test controls (it delays and cuts);
    edge ``near`` linked directly."""

    core: Node
    far: Node
    near: Node
    proxy: ProxyThread


@contextlib.contextmanager
def core_and_two_edges(
    tmp: Path,
    *,
    far: str,
    near: str,
    core_env: Mapping[str, str],
    edge_env: Mapping[str, str],
    delay_s: float = 0.0,
) -> Iterator[Pair]:
    """A :class:`Pair` on a small corpus, edge ``far`` (a region) ``delay_s`` each way from
    the core; every node stopped after, and none may have logged an error."""
    core = start_core(tmp, corpus=SMALL_CORPUS, env=core_env)
    port = int(core.url.rsplit(":", 1)[1])
    proxy = ProxyThread("127.0.0.1", port, up_delay_s=delay_s, down_delay_s=delay_s, name=far)
    nodes = [core]
    try:
        nodes.append(start_edge(tmp, proxy.url, far, env=edge_env))
        nodes.append(start_edge(tmp, core.url, near, env=edge_env))
        yield Pair(core, nodes[1], nodes[2], proxy)
    finally:
        for node in reversed(nodes):
            node.stop()
        proxy.close()
    for node in nodes:
        assert not node.errors(), node.errors()


def admin(core: Node) -> httpx.Client:
    """An HTTP client for the core's admin API."""
    return httpx.Client(base_url=core.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})


async def suggest_items(edge: Node, q: str, limit: int = 5) -> list[dict[str, Any]]:
    """The items of ``GET /suggest?q=...`` on ``edge`` (asserting a 200)."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{edge.url}/suggest", params={"q": q, "limit": limit})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["items"]
    return found
