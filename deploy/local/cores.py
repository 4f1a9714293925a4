"""The demo's core nodes by label (``core-1``, ``core-2``, ...): their state, and stopping,
crashing and starting one on purpose, for the control API (``lightcone core-node`` and the
page).

A node stopped here (SIGTERM, or SIGKILL as a crash) is marked as stopped *on purpose* before
the signal goes, so ``lightcone up`` does not take its exit for a crash and stop the demo.
Starting it again runs the same command with the same settings on the same port, so every
edge's latency proxy (one per edge and core node) reaches it where it was.

One node changes state at a time (a lock per node): a second request waits for the first
and then finds the state it left (stopping a stopped node, or starting a running one, is a
no-op that answers the state).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.local.supervisor import Child, ChildFailed, Supervisor
from shared.errors import Conflict, NotFound, Unavailable

MAX_CORES = 4
"""Most core nodes ``lightcone up --cores`` starts: the showcase is 2, and each is a Python
process on a machine that also runs the edges, the proxies and PostgreSQL."""

START_TIMEOUT_S = 120
"""Longest wait for a started node (a core node, also when started again, or an edge) to be
ready (a busy 2-core machine: seconds)."""

READY = "Application startup complete"
"""The log line of a core node ready to serve."""

STATES = ("running", "starting", "stopping", "stopped", "crashed")
"""A node's ``state``: ``crashed`` is a ``kill -9`` from here, or a start again that failed
(a node that exits by itself stops the whole demo)."""


def say(text: str) -> None:
    print(text, flush=True)


def label(n: int) -> str:
    """The demo's readable name of its ``n``-th core node (from 1)."""
    return f"core-{n}"


@dataclass
class CoreNode:
    """One core node of the demo and the process that runs it now (``None``: a node running
    elsewhere, e.g. a test's own, which is listed and forwarded to but never stopped or
    started from here)."""

    name: str
    region: str
    url: str
    child: Child | None
    state: str = "running"
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def view(self) -> dict[str, Any]:
        """As the status file and the control API show it."""
        running = self.state in ("running", "starting", "stopping")
        return {
            "kind": "core",
            "name": self.name,
            "region": self.region,
            "url": self.url,
            "pid": self.child.pid if running and self.child is not None else None,
            "state": self.state,
        }

    def process(self) -> Child:
        """Its process.

        Raises:
            Conflict: ``core_node_external``: it is not run by this demo.
        """
        if self.child is None:
            raise Conflict(
                f"core node {self.name} is not run by this demo", code="core_node_external"
            )
        return self.child


class CoreNodes:
    """The demo's core nodes, in order; ``changed`` is called after each change of state
    (``lightcone up`` rewrites its status file)."""

    def __init__(self, supervisor: Supervisor, changed: Callable[[], None] = lambda: None) -> None:
        self.supervisor = supervisor
        self.nodes: dict[str, CoreNode] = {}
        self.changed = changed

    @classmethod
    def elsewhere(cls, url: str) -> CoreNodes:
        """One node, ``core-1``, that runs elsewhere (a test's own core): listed and forwarded
        to, never stopped or started from here."""
        cores = cls(Supervisor(Path()))
        cores.add(label(1), "", url, None)
        return cores

    def add(self, name: str, region: str, url: str, child: Child | None) -> None:
        self.nodes[name] = CoreNode(name, region, url, child)

    def get(self, name: str) -> CoreNode:
        """The node called ``name``.

        Raises:
            NotFound: ``unknown_core_node``, naming the known ones.
        """
        if name not in self.nodes:
            known = ", ".join(self.nodes)
            raise NotFound(f"no core node {name!r}; core nodes: {known}", code="unknown_core_node")
        return self.nodes[name]

    def views(self) -> list[dict[str, Any]]:
        return [node.view() for node in self.nodes.values()]

    def urls(self) -> list[str]:
        """The running nodes' URLs, in order (the control API forwards admin calls to the
        first)."""
        return [n.url for n in self.nodes.values() if n.state == "running"]

    async def stop(self, name: str, *, kill: bool = False) -> CoreNode:
        """SIGTERM (graceful: its edges' links close) or, with ``kill``, SIGKILL (a crash:
        its edges find out by their link's timeout or a reset). A no-op when it is stopped."""
        node = self.get(name)
        node.process()
        async with node.lock:
            if node.state in ("running", "starting"):
                child = node.process()
                child.on_purpose = True
                node.state = "stopping"
                self.changed()
                await asyncio.to_thread(child.kill if kill else child.stop)
                node.state = "crashed" if kill else "stopped"
                self.changed()
                how = "killed (SIGKILL)" if kill else "stopped (SIGTERM)"
                say(f"[{name}] {how} from the control API")
        return node

    async def start(self, name: str) -> CoreNode:
        """Run it again, same command, settings and port; returns once it is ready (at most
        :data:`START_TIMEOUT_S`). A no-op when it runs.

        Raises:
            Unavailable: ``core_node_unavailable``: it exited or was not ready in time (its
                state is then ``crashed``; the message has its log's last line).
        """
        node = self.get(name)
        node.process()
        async with node.lock:
            if node.state in ("stopped", "crashed"):
                node.state = "starting"
                self.changed()
                started = time.monotonic()
                port = node.url.rsplit(":", 1)[1]
                try:
                    node.child = await asyncio.to_thread(
                        self.supervisor.restart, node.process(), START_TIMEOUT_S, port
                    )
                except ChildFailed as exc:
                    node.state = "crashed"
                    self.changed()
                    last = str(exc).strip().splitlines()[-1]
                    raise Unavailable(
                        f"core node {name} did not start again: {last}",
                        code="core_node_unavailable",
                    ) from exc
                node.state = "running"
                self.changed()
                took = time.monotonic() - started
                say(f"[{name}] started again in {took:4.1f} s  {node.url}")
        return node


def core_of(edge: dict[str, Any], core_url: str | None) -> str | None:
    """The label of the core node an edge of the topology is on, from its ``/status``
    ``core`` (the URL it dialled, one of its ``core_links``); ``None`` if it names none."""
    links: dict[str, str] = edge.get("core_links", {})
    return next((name for name, url in links.items() if url == core_url), None)
