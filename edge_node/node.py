"""One edge node: its settings, metrics, link, client connections and features, built once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from edge_node.clients import Clients
from edge_node.features import Feature, Registry
from edge_node.link import Link
from edge_node.metrics import EdgeMetrics
from edge_node.settings import EdgeSettings
from shared.http import timed
from shared.limits import ClientRate
from shared.tasks import spawn, stop

Endpoint = Callable[[Request], Awaitable[Response]]


class EdgeNode:
    """What every feature of an edge may use (``feature.node``)."""

    def __init__(
        self,
        settings: EdgeSettings,
        token: str,
        metrics: EdgeMetrics,
        features: Sequence[Callable[[EdgeNode], Feature]],
        *,
        rate: ClientRate | None = None,
        **link_options: Any,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.token = token
        self.rate = rate
        self.clients = Clients()
        self.features = Registry(make(self) for make in features)
        self.link = Link(settings, token, metrics, self.features, **link_options)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def region(self) -> str:
        return self.settings.region

    def http(self, path: str, endpoint: Endpoint) -> Endpoint:
        """``endpoint`` of a feature's route, timed under ``path`` and guarded by the
        per-client HTTP rate (``LIGHTCONE_HTTP_RATE``) if the node has one."""
        guarded = self.rate.guard(path, endpoint) if self.rate is not None else endpoint
        return timed(self.metrics.requests, path)(guarded)

    def start(self) -> None:
        """Start the link and each feature's background task (all supervised)."""
        self._tasks.append(spawn("link", self.link.run, self.metrics.task_crashes))
        for feature in self.features:
            if type(feature).run is not Feature.run:
                name = feature.task or f"{feature.name}_run"
                self._tasks.append(spawn(name, feature.run, self.metrics.task_crashes))

    async def stop(self) -> None:
        await stop(*self._tasks)

    def ready(self) -> bool:
        return all(feature.ready() for feature in self.features)

    def stale(self, age_ms: int) -> bool:
        return age_ms > self.settings.stale_after_ms
