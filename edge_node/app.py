"""``create_app(settings)`` for an edge node, and the lifespan that owns its link."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import make_asgi_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from edge_node import api, replay, shutdown
from edge_node.cursors.feature import CursorsFeature
from edge_node.features import Feature
from edge_node.metrics import EdgeMetrics
from edge_node.node import EdgeNode
from edge_node.origins import host_name, is_loopback_name
from edge_node.settings import EdgeSettings
from edge_node.suggest.feature import SuggestFeature
from edge_node.ws import ws_endpoint
from shared import openapi
from shared.config import resolve_token
from shared.errors import Unavailable
from shared.http import EXCEPTION_HANDLERS
from shared.limits import ClientRate, ListenerBudgets
from shared.ratelimit import BucketTable

logger = logging.getLogger(__name__)


FEATURES: tuple[Callable[[EdgeNode], Feature], ...] = (SuggestFeature, CursorsFeature)
"""The features this edge serves: one line each (docs/extending.md)."""


def create_app(
    settings: EdgeSettings, features: Sequence[Callable[[EdgeNode], Feature]] = FEATURES
) -> Starlette:
    metrics = EdgeMetrics(settings.region)
    token = resolve_token(settings.link_token, env="LIGHTCONE_LINK_TOKEN", host=settings.host)
    # The per-client HTTP rate (LIGHTCONE_HTTP_RATE) guards the features' routes, checked in
    # the endpoints (no middleware layer on the hot path); the websocket has its own rate.
    rate = ClientRate(
        BucketTable(settings.http_rate, settings.http_burst),
        metrics.listener,
        trusted_header=settings.trust_client_ip_header,
    )
    node = EdgeNode(settings, token, metrics, features, rate=rate)
    feature_routes = [route for feature in node.features for route in feature.routes()]
    routes = [
        *feature_routes,
        Route("/", page),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        Route("/status", status),
        Route("/demo/config", demo_config),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Mount("/metrics", app=make_asgi_app(metrics.registry)),
        WebSocketRoute("/ws", ws_endpoint),
        *replay.admin_routes(settings.core_targets[0].url),
        openapi.route(lambda: api_document(node)),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        node.start()
        try:
            yield
        finally:
            await node.stop()

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=EXCEPTION_HANDLERS)
    app.state.node = node
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.origin_policy = settings.origin_policy()
    app.state.going_away = shutdown.client_sockets(node.clients)
    app.state.budgets = ListenerBudgets.of_node(
        metrics.listener, settings, settings.trust_client_ip_header
    )
    return app


STATIC = Path(__file__).parent / "static"


async def page(request: Request) -> Response:
    return FileResponse(STATIC / "index.html")


SUSPECT_AFTER_HEARTBEATS = 2
"""The link is ``suspect`` while up but silent for more than this many heartbeat intervals
(the core sends one every ``LIGHTCONE_HEARTBEAT_S``); it is closed after
``LIGHTCONE_LINK_TIMEOUT_S`` of silence."""


def link_view(state: str, heard_ms: int | None, heartbeat_s: float) -> str:
    """The link as the page shows it: ``suspect`` when up but silent past the heartbeats."""
    if state == "up" and heard_ms is not None:
        if heard_ms > SUSPECT_AFTER_HEARTBEATS * heartbeat_s * 1000:
            return "suspect"
    return state


def _own(feature: Any, fields: dict[str, Any], taken: dict[str, Any]) -> dict[str, Any]:
    """A feature's fields of a status answer, which may not take another's name."""
    clash = fields.keys() & (taken.keys() | STATUS_FIELDS)
    if clash:
        raise RuntimeError(f"feature {feature.name!r} reports {sorted(clash)} in /status: taken")
    return fields


STATUS_FIELDS = frozenset(
    ("region", "edge_id", "link", "core", "last_heard_ms", "version", "age_ms", "stale")
    + ("flags", "features")
)
"""The fields of ``/status`` that are the edge's own (a feature adds others)."""


def _name(feature: Feature) -> str:
    return feature.name


def api_document(node: EdgeNode) -> dict[str, Any]:
    """The edge's OpenAPI document: its own routes and every feature's."""
    paths = {k: v for feature in node.features for k, v in feature.openapi_paths().items()}
    return api.document(node.settings, paths)


def freshness(node: EdgeNode) -> tuple[int, int]:
    """The edge as a whole: the newest global version every feature's data reflects, and
    the age of the least fresh feature (the link's when no feature holds data)."""
    link = node.link
    fresh = list(link.freshness.values())
    if not fresh:
        return link.head, link.age_ms("")
    now = link.now()
    version = min(max(f.version, f.current_at) for f in fresh)
    return version, max(f.age_ms(now) for f in fresh)


async def status(request: Request) -> Response:
    """What the demo page's panel shows: this node, its link (and the core node it is on),
    and how fresh each feature is."""
    node: EdgeNode = request.app.state.node
    settings = node.settings
    link = node.link
    heard_ms = link.heard_ms()
    version, age_ms = freshness(node)
    features: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for feature in node.features:
        feature_age = link.age_ms(feature.name)
        features[feature.name] = {
            "level": feature.level.level,
            "max_age_ms": feature.level.max_age_ms,
            "stale_ok": feature.level.stale_ok,
            "version": link.version(feature.name),
            "age_ms": feature_age,
            "stale": node.stale(feature_age),
        }
        extra.update(_own(feature, feature.status(), extra))
    # In the local demo the page reads /status through every entry (other origins).
    cors = {"Access-Control-Allow-Origin": "*"} if settings.demo_control_url else {}
    return JSONResponse(
        {
            "region": settings.region,
            "edge_id": link.edge_id,
            "link": link_view(link.state, heard_ms, settings.heartbeat_s),
            "core": link.core,
            "last_heard_ms": heard_ms,
            "version": version,
            "age_ms": age_ms,
            "stale": node.stale(age_ms),
            "flags": {f.name: f.level.as_json() for f in sorted(node.features, key=_name)},
            "features": features,
            **extra,
        },
        headers=cors,
    )


async def demo_config(request: Request) -> Response:
    """The page's set-up: the demo's control API (with its capability) and whether joins
    need a room token. The control URL goes only to a request addressed to a loopback name:
    a page that re-points its own name at this edge (DNS rebinding) does not learn it."""
    settings: EdgeSettings = request.app.state.settings
    local = is_loopback_name(host_name(request.headers.get("host", "")))
    control_url = settings.demo_control_url if local else ""
    return JSONResponse(
        {
            "region": settings.region,
            "control_url": control_url or None,
            "room_auth": settings.room_auth,
        }
    )


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    node: EdgeNode = request.app.state.node
    if not node.ready():
        raise Unavailable("no snapshot loaded yet", code="not_ready")
    return JSONResponse(
        {"status": "ready", "version": freshness(node)[0], "region": node.settings.region}
    )
