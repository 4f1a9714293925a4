"""``create_app(settings)`` for the core region, and the lifespan that owns its resources."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from prometheus_client import make_asgi_app
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute

from core_region import admin
from core_region.hub import Hub
from core_region.link import link_endpoint
from core_region.metrics import CoreMetrics
from core_region.settings import CoreSettings
from core_region.store import Pruned, Store
from core_region.suggest import corpus
from core_region.suggest.catalog import Catalog, Rules
from shared import openapi
from shared.config import ConfigError, resolve_token
from shared.errors import CloseCode, Unavailable
from shared.http import EXCEPTION_HANDLERS
from shared.limits import ClientRate, HttpRateLimit, ListenerBudgets
from shared.ratelimit import BucketTable
from shared.server import going_away
from shared.tasks import spawn, stop

logger = logging.getLogger(__name__)


def create_app(settings: CoreSettings) -> Starlette:
    """The core's ASGI app. Tokens are resolved here, so a bad set-up fails before serving."""
    metrics = CoreMetrics()
    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Mount("/metrics", app=make_asgi_app(metrics.registry)),
        WebSocketRoute("/link", link_endpoint),
        *admin.routes(metrics.requests),
        openapi.route(lambda: openapi.core(settings)),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = await Store.open(settings.data_dir / "lightcone.db")
        try:
            hub = await _start(settings, store, metrics)
            app.state.hub = hub
            app.state.going_away = going_away(
                hub.edges, lambda edge: edge.close(CloseCode.GOING_AWAY, "core shutting down")
            )
            beat = spawn(
                "heartbeats", lambda: _heartbeats(hub, settings.heartbeat_s), metrics.task_crashes
            )
            pruning = spawn("pruning", lambda: _prune_every(hub, settings), metrics.task_crashes)
            try:
                yield
            finally:
                await stop(beat, pruning)
                await hub.close()
                for edge in list(hub.edges):
                    edge.close(CloseCode.GOING_AWAY, "core shutting down")
        finally:
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
    app.state.budgets = ListenerBudgets.create(
        metrics.listener,
        max_connections=settings.max_connections,
        max_client_connections=settings.max_client_connections,
        read_timeout_s=settings.read_timeout_s,
        handshake_timeout_s=settings.handshake_timeout_s,
    )
    app.state.hub = None
    app.state.link_token = resolve_token(
        settings.link_token, env="LIGHTCONE_LINK_TOKEN", host=settings.host
    )
    app.state.admin_token = resolve_token(
        settings.admin_token, env="LIGHTCONE_ADMIN_TOKEN", host=settings.host
    )
    return app


async def _start(settings: CoreSettings, store: Store, metrics: CoreMetrics) -> Hub:
    await _seed(settings, store)
    if await store.note_restore(settings.restored_from):
        logger.warning("restored from %s: new epoch, edges load a snapshot", settings.restored_from)
    rules = Rules(
        search_boost=settings.search_boost,
        min_searches=settings.min_searches,
        min_sources=settings.min_sources,
    )
    if await store.note_rules(rules.fingerprint()):
        logger.info(
            "serving rules are new (%s): new epoch, edges load a snapshot", rules.fingerprint()
        )
    version = await store.version()
    rows = await store.terms()
    catalog = await asyncio.to_thread(
        Catalog,
        rows,
        version=version,
        rules=rules,
        hot_threshold=settings.hot_threshold,
        depth=settings.max_limit,
    )
    flags = await store.init_flags(
        {"suggest": settings.suggest_stale_ok, "cursors": settings.cursors_stale_ok}
    )
    hub = Hub(
        store,
        catalog,
        flags,
        metrics,
        publish_delay_s=settings.publish_delay_ms / 1000,
        compact_after=settings.compact_after,
        region=settings.region,
        max_search_batch=settings.max_search_batch,
        presence_timeout_s=settings.presence_timeout_s,
        epoch=await store.epoch(),
    )
    await hub.rebase()
    metrics.head_version.set(version)
    metrics.published_version.set(version)
    return hub


async def _seed(settings: CoreSettings, store: Store) -> None:
    seeded = await store.corpus_id()
    path = settings.corpus or corpus.default_path()
    if seeded is not None and settings.corpus is None:
        return
    loaded = await asyncio.to_thread(corpus.load, path)
    if seeded is None:
        version = await store.seed(loaded.entries, loaded.corpus_id)
        logger.info("seeded %d terms from %s (v%d)", len(loaded.entries), path, version)
    elif seeded != loaded.corpus_id:
        raise ConfigError(
            f"the database in {settings.data_dir} was seeded from another corpus than {path}. "
            "Use a fresh --data-dir to serve a different corpus."
        )


async def _heartbeats(hub: Hub, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        hub.heartbeat()
        hub.expire()


async def prune(hub: Hub, *, retention_s: float, batch: int, now: float) -> Pruned:
    """Delete searches logged more than ``retention_s`` before ``now`` and the never-served
    terms they leave, in transactions of at most ``batch`` searches; returns the totals.

    Served data does not change (only terms the rules do not serve are deleted), so no
    version is produced and edges are not told.
    """
    searches = terms = 0
    while True:
        done = await hub.store.prune(now - retention_s, batch, hub.catalog.rules.disposable)
        searches, terms = searches + done.searches, terms + done.terms
        hub.metrics.pruned.labels("searches").inc(done.searches)
        hub.metrics.pruned.labels("terms").inc(done.terms)
        if done.searches < batch:
            return Pruned(searches, terms)


async def _prune_every(hub: Hub, settings: CoreSettings) -> None:
    """Prune now and every ``prune_every_s`` (supervised: a failed pass is logged and
    counted, and the task restarts after a backoff)."""
    while True:
        done = await prune(
            hub,
            retention_s=settings.search_retention_s,
            batch=settings.prune_batch,
            now=time.time(),
        )
        if done.searches:
            logger.info("pruned %d searches, %d terms", done.searches, done.terms)
        await asyncio.sleep(settings.prune_every_s)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    hub: Hub | None = request.app.state.hub
    if hub is None or hub.stream.base_version is None:
        raise Unavailable("the core is still loading", code="not_ready")
    return JSONResponse({"status": "ready", "version": hub.catalog.published})
