"""The core's own admin API under ``/admin``: status and flags. Bearer-token protected.

Features add their own admin routes (:meth:`core_region.features.Feature.routes`): terms for
suggestions, room tokens for cursors.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from core_region.features import Feature
from core_region.node import CoreNode
from shared.errors import BadRequest, NotFound, StoreUnavailable
from shared.http import json_body
from shared.protocol import BOUNDED, Level, check_max_age_ms

MAX_BODY_BYTES = 4096
"""Largest body of an admin request (every admin route's, features' included)."""


def flags_json(node: CoreNode) -> dict[str, Any]:
    return {f.name: f.level.as_json() for f in sorted(node.features, key=lambda f: f.name)}


def _feature(node: CoreNode, name: str) -> Feature:
    if name not in node.features:
        names = ", ".join(sorted(f.name for f in node.features))
        raise NotFound(f"unknown feature {name!r}; features: {names}")
    return node.features[name]


def level_of(body: dict[str, Any], feature: Feature, default_max_age_ms: int) -> Level:
    """The flag a ``PUT /admin/flags/{feature}`` body asks for: ``{"level": ...}`` (with
    ``"max_age_ms"`` for bounded; without it, ``default_max_age_ms``), or
    ``{"stale_ok": true|false}`` (shorthand for tolerant|strict).

    Raises:
        BadRequest: ``bad_flag`` for another shape or a level the feature does not support,
            ``bad_max_age_ms`` for a bound out of 1..MAX_MAX_AGE_MS or without bounded.
    """
    level, stale_ok, max_age_ms = body.get("level"), body.get("stale_ok"), body.get("max_age_ms")
    if level is None and isinstance(stale_ok, bool):
        chosen = Level.of(stale_ok)
    elif isinstance(level, str) and stale_ok is None:
        if level not in feature.levels:
            supported = ", ".join(feature.levels)
            raise BadRequest(
                f"{feature.name!r} supports the levels {supported}, not {level!r}",
                code="bad_flag",
            )
        if level == BOUNDED:
            bound = default_max_age_ms if max_age_ms is None else check_max_age_ms(max_age_ms)
            return Level.bounded(bound)
        chosen = Level(level)
    else:
        raise BadRequest(
            'the body must be {"level": LEVEL}, {"level": "bounded", "max_age_ms": N} or '
            '{"stale_ok": true|false}',
            code="bad_flag",
        )
    if max_age_ms is not None:
        raise BadRequest(
            f'max_age_ms goes with "level": "bounded", not {chosen.level!r}',
            code="bad_max_age_ms",
        )
    return chosen


def routes(node: CoreNode) -> list[BaseRoute]:
    """The core's own admin routes, each timed under its path and bearer-protected."""

    async def get_flags(request: Request) -> Response:
        return JSONResponse(flags_json(node))

    async def put_flag(request: Request) -> Response:
        feature = _feature(node, request.path_params["feature"])
        body = await json_body(request, MAX_BODY_BYTES)
        level = level_of(body, feature, node.settings.bounded_max_age_ms)
        await node.set_level(feature, level)
        return JSONResponse({"feature": feature.name, **level.as_json()})

    async def get_status(request: Request) -> Response:
        edges = [
            {
                "edge_id": e.edge_id,
                "region": e.region,
                "version": e.version,
                "versions": e.versions,
                "connected_at": e.connected_at,
            }
            for e in sorted(node.edges, key=lambda e: (e.region, e.edge_id))
        ]
        try:
            nodes = [
                {"node_id": n.node_id, "region": n.region, "lease_until": n.lease_until}
                for n in await node.store.live_nodes(time.time())
            ]
        except StoreUnavailable:
            nodes = None  # the status still answers while the store is away
        status: dict[str, Any] = {
            "region": node.region,
            "node": {"node_id": node.node_id, "shared": bool(node.settings.broker)},
            "nodes": nodes,
            "version": node.committed,
            "published": node.published,
            "epoch": node.epoch,
        }
        if node.broker is not None:
            status["broker"] = node.broker.status()
        for feature in node.features:
            fields = await feature.status()
            clash = fields.keys() & (status.keys() | {"flags", "features", "edges"})
            if clash:  # a programming error in a feature: a 500, and the message says whose
                raise RuntimeError(f"feature {feature.name!r} reports {sorted(clash)}: taken")
            status.update(fields)
        features = {
            f.name: {**f.level.as_json(), **({"version": f.version} if f.has_data else {})}
            for f in node.features
        }
        return JSONResponse(
            {**status, "flags": flags_json(node), "features": features, "edges": edges}
        )

    table = [
        ("/admin/status", get_status, "GET"),
        ("/admin/flags", get_flags, "GET"),
        ("/admin/flags/{feature}", put_flag, "PUT"),
    ]
    return [
        Route(path, node.admin(f"{method} {path}", endpoint), methods=[method])
        for path, endpoint, method in table
    ]
