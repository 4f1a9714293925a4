"""``create_app(settings)`` for the core region, and the lifespan that owns its resources."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from prometheus_client import make_asgi_app
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute

from core_region import admin, api
from core_region.broker import Broker, namespace_of
from core_region.cursors.feature import CursorsFeature
from core_region.features import Feature
from core_region.link import link_endpoint
from core_region.metrics import CoreMetrics
from core_region.node import CoreNode
from core_region.settings import CoreSettings
from core_region.store import Store
from core_region.suggest.feature import SuggestFeature
from shared import openapi
from shared.config import resolve_token
from shared.errors import CloseCode, Unavailable
from shared.http import EXCEPTION_HANDLERS
from shared.limits import ClientRate, HttpRateLimit, ListenerBudgets
from shared.ratelimit import BucketTable
from shared.server import going_away

logger = logging.getLogger(__name__)


FEATURES: tuple[Callable[[CoreNode], Feature], ...] = (SuggestFeature, CursorsFeature)
"""The features this core holds: one line each (docs/extending.md)."""


def create_app(
    settings: CoreSettings, features: Sequence[Callable[[CoreNode], Feature]] = FEATURES
) -> Starlette:
    """The core's ASGI app. Tokens are resolved here, so a bad set-up fails before serving."""
    metrics = CoreMetrics()
    node = CoreNode(settings, metrics, features)
    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Mount("/metrics", app=make_asgi_app(metrics.registry)),
        WebSocketRoute("/link", link_endpoint),
        *admin.routes(node),
        *(route for feature in node.features for route in feature.routes()),
        openapi.route(lambda: api_document(node)),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = await Store.open(settings.store_location)
        try:
            if settings.broker:
                namespace = settings.broker_namespace or namespace_of(store.where)
                broker = Broker(
                    settings.broker,
                    node.node_id,
                    metrics,
                    namespace=namespace,
                    heartbeat_s=settings.heartbeat_s,
                )
                node.attach(broker)
                await broker.start()
            try:  # stopped even if it failed to start: nothing it began outlives the store
                await node.start(store)
                app.state.going_away = going_away(
                    node.edges,
                    lambda edge: edge.close(CloseCode.GOING_AWAY, "core shutting down"),
                )
                yield
            finally:
                await node.stop()
        finally:
            if node.broker is not None:
                await node.broker.close()
            await store.close()

    rate = ClientRate(BucketTable(settings.http_rate, settings.http_burst), metrics.listener)
    rate_limit = Middleware(HttpRateLimit, rate=rate, routes=("/admin",))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[rate_limit],
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.budgets = ListenerBudgets.of_node(metrics.listener, settings)
    app.state.node = node
    app.state.link_token = resolve_token(
        settings.link_token, env="LIGHTCONE_LINK_TOKEN", host=settings.host
    )
    app.state.admin_token = resolve_token(
        settings.admin_token, env="LIGHTCONE_ADMIN_TOKEN", host=settings.host
    )
    return app


def api_document(node: CoreNode) -> dict[str, Any]:
    """The core's OpenAPI document: its own routes and every feature's."""
    paths = {k: v for feature in node.features for k, v in feature.openapi_paths().items()}
    return api.document(node.settings, paths)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    node: CoreNode = request.app.state.node
    if not node.ready():
        raise Unavailable("the core is still loading", code="not_ready")
    return JSONResponse({"status": "ready", "version": node.published})
