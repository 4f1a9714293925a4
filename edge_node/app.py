"""``create_app(settings)`` for an edge node, and the lifespan that owns its link."""

from __future__ import annotations

import asyncio
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
from edge_node.cursors import Cursors
from edge_node.metrics import EdgeMetrics
from edge_node.service import Service
from edge_node.settings import EdgeSettings
from edge_node.sources import Sources
from edge_node.upstream import Upstream
from edge_node.ws import ws_endpoint
from shared.config import resolve_token
from shared.errors import BadRequest, Unavailable
from shared.http import EXCEPTION_HANDLERS, json_body, timed

logger = logging.getLogger(__name__)


def create_app(settings: EdgeSettings) -> Starlette:
    metrics = EdgeMetrics(settings.region)
    token = resolve_token(settings.link_token, env="LIGHTCONE_LINK_TOKEN", host=settings.host)
    routes = [
        Route("/suggest", timed(metrics.requests, "/suggest")(suggest), methods=["GET"]),
        Route("/search", timed(metrics.requests, "/search")(search), methods=["POST"]),
        Route("/", page),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        Route("/status", status),
        Route("/demo/config", demo_config),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Mount("/metrics", app=make_asgi_app(metrics.registry)),
        WebSocketRoute("/ws", ws_endpoint),
        *replay.admin_routes(settings.core_url),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        upstream = Upstream(settings, token, metrics)
        app.state.service = Service(settings, upstream)
        app.state.cursors = cursors = Cursors(settings, upstream, metrics)
        app.state.going_away = shutdown.client_sockets(cursors)
        tasks = [asyncio.create_task(upstream.run()), asyncio.create_task(cursors.run())]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks)

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=EXCEPTION_HANDLERS)
    app.state.settings = settings
    app.state.metrics = metrics
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


async def status(request: Request) -> Response:
    """What the demo page's panel shows: this node, its link and how fresh its data is."""
    service: Service = request.app.state.service
    up = service.upstream
    age_ms = up.age_ms()
    # In the local demo the page reads /status through every entry (other origins).
    cors = {"Access-Control-Allow-Origin": "*"} if service.settings.demo_control_url else {}
    return JSONResponse(
        {
            "region": service.settings.region,
            "edge_id": up.edge_id,
            "link": up.state,
            "version": up.version,
            "age_ms": age_ms,
            "stale": age_ms > service.settings.stale_after_ms,
            "flags": {
                feature: {"stale_ok": on, "mode": "tolerant" if on else "strict"}
                for feature, on in sorted(up.flags.items())
            },
            "outbox": len(up.outbox),
        },
        headers=cors,
    )


async def demo_config(request: Request) -> Response:
    settings: EdgeSettings = request.app.state.settings
    return JSONResponse(
        {"region": settings.region, "control_url": settings.demo_control_url or None}
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
