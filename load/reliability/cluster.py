"""The nodes a fault-injection run starts, breaks and restarts: one core, its edges, proxies.

Every node is a real ``lightcone core`` / ``lightcone edge`` process on 127.0.0.1 with an
ephemeral port, supervised by :class:`deploy.local.supervisor.Child` (as ``lightcone up`` and the
e2e tests run them). The core's data dir lives under the run's folder, so a core killed with
SIGKILL restarts on the same database, on the same port: the edges' core URL does not change.
An edge's link may run through a :class:`deploy.local.latency.LatencyProxy` with no delay, which the
run cuts and heals. Only the PIDs started here are ever signalled.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from deploy.local.latency import LatencyProxy
from deploy.local.supervisor import LISTENING, Child, ChildFailed
from load.machine import process_cpu_s, status_kb

TOKEN = "lightcone-reliability-token"
"""Link and admin token of every node of a run (loopback only)."""
CORE_READY = "Application startup complete"
EDGE_READY = "loaded snapshot"
START_TIMEOUT_S = 120.0
"""Longest wait for a node to listen and be ready (the default corpus on a busy machine)."""
FAST_LINK_ENV = {
    "LIGHTCONE_HEARTBEAT_S": "0.2",
    "LIGHTCONE_LINK_TIMEOUT_S": "1.0",
    "LIGHTCONE_RECONNECT_MAX_S": "0.3",
    "LIGHTCONE_STALE_AFTER_MS": "500",
    "LIGHTCONE_STRICT_TIMEOUT_MS": "600",
    "LIGHTCONE_BREAKER_RESET_S": "1.0",
}
"""``--fast-link``: a link that notices a cut within a second and comes back within a third
of one, reads stale after half a second, strict reads refused after 0.6 s, a breaker that
tries again after a second: many more faults per minute than the defaults give."""
HTTP_TIMEOUT_S = 5.0
"""Deadline of every status or admin request the run makes."""


@dataclass
class Node:
    """A started process, its role, and its link proxy (edges that have one)."""

    child: Child
    role: str
    region: str
    proxy: LatencyProxy | None = None

    @property
    def url(self) -> str:
        return self.child.url

    @property
    def ws_url(self) -> str:
        return self.child.url.replace("http://", "ws://") + "/ws"

    @property
    def pid(self) -> int:
        return self.child.pid

    def rss_kb(self) -> int | None:
        """Resident memory now, ``None`` once the process is gone."""
        try:
            return status_kb(self.pid, "VmRSS")
        except (OSError, LookupError):
            return None

    def cpu_s(self) -> float | None:
        try:
            return process_cpu_s(self.pid)
        except OSError:
            return None

    def errors(self) -> list[str]:
        """Its log lines at ERROR and its tracebacks."""
        return [line for line in self.child.lines if " ERROR " in line or "Traceback" in line]


@dataclass
class Cluster:
    """The nodes of one run; :meth:`close` stops every one it started."""

    work: Path
    corpus: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    core: Node | None = None
    edges: list[Node] = field(default_factory=list)
    retired: list[Node] = field(default_factory=list)
    """Processes that were killed or replaced; kept for their logs."""
    _core_port: int = 0

    @property
    def data_dir(self) -> Path:
        return self.work / "core-data"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "lightcone.db"

    def _base_env(self) -> dict[str, str]:
        return {"LIGHTCONE_LINK_TOKEN": TOKEN, "LIGHTCONE_ADMIN_TOKEN": TOKEN, **self.env}

    def _spawn(self, name: str, args: list[str], ready: str) -> Child:
        log_path = self.work / "logs" / f"{name}.log"
        child = Child(name, args, self._base_env(), log_path)
        try:
            child.url = child.wait_for(LISTENING, START_TIMEOUT_S).group(1)
            child.wait_for(ready, START_TIMEOUT_S)
        except ChildFailed:
            child.stop()
            raise
        return child

    def start_core(self) -> float:
        """Start (or restart, on the same data dir and port) the core; seconds to ready."""
        started = time.monotonic()
        args = ["core", "--port", str(self._core_port), "--data-dir", str(self.data_dir)]
        if self.corpus is not None:
            args += ["--corpus", str(self.corpus)]
        n = len([n for n in self.retired if n.role == "core"])
        child = self._spawn("core" if n == 0 else f"core-{n + 1}", args, CORE_READY)
        self.core = Node(child, "core", "core")
        self._core_port = int(child.url.rsplit(":", 1)[1])
        return time.monotonic() - started

    async def start_edge(self, region: str, *, proxied: bool = False) -> Node:
        """An edge linked to the core, straight or through a proxy of its own."""
        assert self.core is not None
        proxy = None
        core_url = self.core.url
        if proxied:
            proxy = LatencyProxy("127.0.0.1", self._core_port, name=f"link-{region}")
            await proxy.start()
            core_url = f"http://127.0.0.1:{proxy.port}"
        args = ["edge", "--port", "0", "--region", region, "--core-url", core_url]
        child = await asyncio.to_thread(self._spawn, f"edge-{region}", args, EDGE_READY)
        node = Node(child, "edge", region, proxy)
        self.edges.append(node)
        return node

    def kill_core(self) -> None:
        """SIGKILL the core this run started, as a crash would."""
        assert self.core is not None
        self.core.child.kill()
        self.retired.append(self.core)

    def stop_core(self) -> int:
        """SIGTERM the core (SIGKILL after a grace period); its exit code."""
        assert self.core is not None
        code = self.core.child.stop()
        self.retired.append(self.core)
        return code

    def nodes(self) -> list[Node]:
        return [*([self.core] if self.core else []), *self.edges]

    async def close(self) -> None:
        for edge in self.edges:
            await asyncio.to_thread(edge.child.stop)
            if edge.proxy is not None:
                await edge.proxy.close()
        if self.core is not None and self.core not in self.retired:
            await asyncio.to_thread(self.core.child.stop)

    def all_errors(self) -> dict[str, list[str]]:
        found = {}
        for node in [*self.retired, *self.nodes()]:
            if errors := node.errors():
                found[node.child.name] = errors
        return found

    def stored_ids(self) -> set[str]:
        """Every search id in the core's database (read from the file; the core may be down)."""
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True) as conn:
            return {row[0] for row in conn.execute("SELECT id FROM searches")}


async def get_json(client: httpx.AsyncClient, url: str) -> dict[str, Any] | None:
    """``GET url`` as JSON, ``None`` on any failure (a node down is an answer here)."""
    try:
        response = await client.get(url, timeout=HTTP_TIMEOUT_S)
        body: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    body["_status"] = response.status_code
    return body


async def edge_state(client: httpx.AsyncClient, edge: Node) -> dict[str, Any] | None:
    """The edge's ``/status`` (link, version, outbox), ``None`` if it does not answer."""
    return await get_json(client, f"{edge.url}/status")


async def core_version(client: httpx.AsyncClient, core: Node) -> int | None:
    """The version the core has published, ``None`` while it is not ready."""
    ready = await get_json(client, f"{core.url}/readyz")
    if ready is None or ready["_status"] != 200:
        return None
    return int(ready["version"])


async def admin_put_term(client: httpx.AsyncClient, core: Node, term: str, weight: int) -> int:
    """Upsert a term through the admin API; the version it produced."""
    response = await client.put(
        f"{core.url}/admin/terms/{term}",
        json={"weight": weight},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=HTTP_TIMEOUT_S,
    )
    response.raise_for_status()
    return int(response.json()["version"])


async def set_stale_ok(client: httpx.AsyncClient, core: Node, feature: str, on: bool) -> None:
    response = await client.put(
        f"{core.url}/admin/flags/{feature}",
        json={"stale_ok": on},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=HTTP_TIMEOUT_S,
    )
    response.raise_for_status()
