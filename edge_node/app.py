"""``create_app(settings)`` for an edge node, and the lifespan that owns its link."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from prometheus_client import make_asgi_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from edge_node import replay, shutdown
from edge_node.cursors.feature import Cursors
from edge_node.metrics import EdgeMetrics
from edge_node.service import Service
from edge_node.settings import EdgeSettings
from edge_node.suggest.sources import Sources
from edge_node.upstream import Upstream
from edge_node.ws import ws_endpoint
from shared import openapi
from shared.config import resolve_token
from shared.errors import BadRequest, Unavailable
from shared.http import EXCEPTION_HANDLERS, json_body, timed
from shared.limits import ClientRate, ListenerBudgets
from shared.origins import host_name, is_loopback_name
from shared.ratelimit import BucketTable
from shared.tasks import spawn, stop

logger = logging.getLogger(__name__)


def create_app(settings: EdgeSettings) -> Starlette:
    metrics = EdgeMetrics(settings.region)
    token = resolve_token(settings.link_token, env="LIGHTCONE_LINK_TOKEN", host=settings.host)
    # The per-client HTTP rate (LIGHTCONE_HTTP_RATE) guards /suggest and /search, checked in
    # the endpoints (no middleware layer on the hot path); the websocket has its own rate.
    rate = ClientRate(
        BucketTable(settings.http_rate, settings.http_burst),
        metrics.listener,
        trusted_header=settings.trust_client_ip_header,
    )
    routes = [
        Route(
            "/suggest",
            timed(metrics.requests, "/suggest")(rate.guard("/suggest", suggest)),
            methods=["GET"],
        ),
        Route(
            "/search",
            timed(metrics.requests, "/search")(rate.guard("/search", search)),
            methods=["POST"],
        ),
        Route("/", page),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        Route("/status", status),
        Route("/demo/config", demo_config),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Mount("/metrics", app=make_asgi_app(metrics.registry)),
        WebSocketRoute("/ws", ws_endpoint),
        *replay.admin_routes(settings.core_url),
        openapi.route(lambda: openapi.edge(settings)),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        upstream = Upstream(settings, token, metrics)
        app.state.service = Service(settings, upstream)
        app.state.cursors = cursors = Cursors(settings, upstream, metrics)
        app.state.going_away = shutdown.client_sockets(cursors)
        tasks = [
            spawn("upstream", upstream.run, metrics.task_crashes),
            spawn("cursor_ticks", cursors.run, metrics.task_crashes),
        ]
        try:
            yield
        finally:
            await stop(*tasks)

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=EXCEPTION_HANDLERS)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.origin_policy = settings.origin_policy()
    app.state.budgets = ListenerBudgets.create(
        metrics.listener,
        max_connections=settings.max_connections,
        max_client_connections=settings.max_client_connections,
        read_timeout_s=settings.read_timeout_s,
        handshake_timeout_s=settings.handshake_timeout_s,
        trusted_header=settings.trust_client_ip_header,
    )
    app.state.sources = Sources(token, settings.trust_client_ip_header)
    return app


def _int_param(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(
            f"{name!r} must be a whole number, got {raw!r}", code=f"bad_{name}"
        ) from None


async def suggest(request: Request) -> Response:
    service: Service = request.app.state.service
    q = request.query_params.get("q")
    if q is None:
        raise BadRequest("missing query parameter 'q'", code="missing_q")
    limit = _int_param(request, "limit", 10)
    assert limit is not None
    answer = await service.suggest(q, limit, _int_param(request, "min_version", None))
    return Response(answer.http_body(), media_type="application/json")


async def search(request: Request) -> Response:
    service: Service = request.app.state.service
    body = await json_body(request, service.settings.max_body_bytes)
    search_id, q = body.get("id"), body.get("q")
    if not isinstance(search_id, str) or not isinstance(q, str):
        raise BadRequest('body must be {"id": string, "q": string}', code="bad_field")
    ack = await service.search(search_id, q, request.app.state.sources.of(request))
    status = 200 if ack.status == "committed" else 202
    return JSONResponse({"id": ack.id, "status": ack.status, "version": ack.version}, status)


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


async def status(request: Request) -> Response:
    """What the demo page's panel shows: this node, its link and how fresh its data is."""
    service: Service = request.app.state.service
    settings = service.settings
    up = service.upstream
    age_ms = up.age_ms()
    heard_ms = up.heard_ms()
    # In the local demo the page reads /status through every entry (other origins).
    cors = {"Access-Control-Allow-Origin": "*"} if settings.demo_control_url else {}
    return JSONResponse(
        {
            "region": settings.region,
            "edge_id": up.edge_id,
            "link": link_view(up.state, heard_ms, settings.heartbeat_s),
            "last_heard_ms": heard_ms,
            "version": up.version,
            "age_ms": age_ms,
            "stale": age_ms > settings.stale_after_ms,
            "flags": {
                feature: {"stale_ok": on, "mode": "tolerant" if on else "strict"}
                for feature, on in sorted(up.flags.items())
            },
            "outbox": len(up.outbox),
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
    service: Service = request.app.state.service
    up = service.upstream
    if up.index is None:
        raise Unavailable("no snapshot loaded yet", code="not_ready")
    return JSONResponse(
        {"status": "ready", "version": up.version, "region": service.settings.region}
    )
