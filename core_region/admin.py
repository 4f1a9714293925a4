"""The core's admin API under ``/admin``: terms, flags, status. Bearer-token protected."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Histogram
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core_region.hub import Hub
from shared import roomtoken
from shared.errors import BadRequest, NotFound
from shared.http import check_bearer, json_body, timed
from shared.text import term as text_term

FEATURES = ("suggest", "cursors")
MAX_WEIGHT = 2**53
MAX_BODY_BYTES = 4096


def _hub(request: Request) -> Hub:
    check_bearer(request, request.app.state.admin_token)
    hub: Hub = request.app.state.hub
    return hub


def _term(request: Request) -> tuple[str, str]:
    """The path's term as ``(key, display form)``, through the door (:func:`shared.text.term`)."""
    term, key = text_term(request.path_params["term"], field="term", code="bad_term")
    if not key:
        raise BadRequest("term is empty after folding", code="bad_term")
    return key, term


def _mode(stale_ok: bool) -> str:
    return "tolerant" if stale_ok else "strict"


async def put_term(request: Request) -> Response:
    hub = _hub(request)
    key, term = _term(request)
    body = await json_body(request, MAX_BODY_BYTES)
    weight = body.get("weight")
    if not isinstance(weight, int) or isinstance(weight, bool) or not 0 < weight <= MAX_WEIGHT:
        raise BadRequest(f"'weight' must be a whole number in 1..{MAX_WEIGHT}", code="bad_weight")
    version = await hub.upsert_term(key, term, weight)
    return JSONResponse({"term": term, "key": key, "weight": weight, "version": version})


async def delete_term(request: Request) -> Response:
    hub = _hub(request)
    key, term = _term(request)
    version = await hub.block_term(key, term)
    return JSONResponse({"term": term, "key": key, "status": "taken_down", "version": version})


async def get_term(request: Request) -> Response:
    hub = _hub(request)
    key, _ = _term(request)
    entry = hub.catalog.get(key)
    if entry is None:
        raise NotFound(f"term {key!r} is not served", code="unknown_term")
    return JSONResponse({"term": entry.term, "key": key, "weight": entry.weight})


def _flags_json(flags: dict[str, bool]) -> dict[str, Any]:
    return {f: {"stale_ok": v, "mode": _mode(v)} for f, v in sorted(flags.items())}


async def get_flags(request: Request) -> Response:
    return JSONResponse(_flags_json(_hub(request).flags))


async def put_flag(request: Request) -> Response:
    hub = _hub(request)
    feature = request.path_params["feature"]
    if feature not in FEATURES:
        raise NotFound(f"unknown feature {feature!r}; features: {', '.join(FEATURES)}")
    body = await json_body(request, MAX_BODY_BYTES)
    stale_ok = body.get("stale_ok")
    if not isinstance(stale_ok, bool):
        raise BadRequest("'stale_ok' must be true or false", code="bad_flag")
    await hub.store.set_flag(feature, stale_ok)
    hub.set_flags({**hub.flags, feature: stale_ok})
    return JSONResponse({"feature": feature, "stale_ok": stale_ok, "mode": _mode(stale_ok)})


async def get_status(request: Request) -> Response:
    hub = _hub(request)
    counts = await hub.store.counts()
    edges = [
        {
            "edge_id": e.edge_id,
            "region": e.region,
            "version": e.version,
            "connected_at": e.connected_at,
        }
        for e in sorted(hub.edges, key=lambda e: (e.region, e.edge_id))
    ]
    return JSONResponse(
        {
            "region": hub.region,
            "version": hub.catalog.version,
            "published": hub.catalog.published,
            "snapshot_version": hub.stream.base_version,
            "served_terms": len(hub.catalog),
            "stored_terms": counts["terms"],
            "searches": counts["searches"],
            "flags": _flags_json(hub.flags),
            "edges": edges,
        }
    )


async def mint_room_token(request: Request) -> Response:
    """A room token for an app backend to hand to one client (:mod:`shared.roomtoken`)."""
    check_bearer(request, request.app.state.admin_token)
    secret: str | None = request.app.state.settings.room_secret
    if not secret:
        raise NotFound(
            "this core has no LIGHTCONE_ROOM_SECRET: it cannot mint room tokens",
            code="no_room_secret",
        )
    body = await json_body(request, MAX_BODY_BYTES)
    room, name, session = body.get("room"), body.get("name"), body.get("session")
    ttl_s = body.get("ttl_s", roomtoken.DEFAULT_TTL_S)
    if not isinstance(room, str) or not room or not isinstance(name, str) or not name:
        raise BadRequest("'room' and 'name' must be non-empty strings", code="bad_field")
    if session is not None and (not isinstance(session, str) or not session):
        raise BadRequest("'session' must be a non-empty string or null", code="bad_field")
    if (
        not isinstance(ttl_s, int)
        or isinstance(ttl_s, bool)
        or not 1 <= ttl_s <= roomtoken.MAX_TTL_S
    ):
        raise BadRequest(
            f"'ttl_s' must be a whole number in 1..{roomtoken.MAX_TTL_S}", code="bad_ttl"
        )
    now = time.time()
    token = roomtoken.mint(secret, room=room, name=name, session=session, ttl_s=ttl_s, now=now)
    return JSONResponse({"token": token, "expires_at": int(now) + ttl_s})


def routes(latency: Histogram) -> list[Route]:
    """The admin routes, each timed under its path in ``latency``."""
    table = [
        ("/admin/status", get_status, "GET"),
        ("/admin/flags", get_flags, "GET"),
        ("/admin/flags/{feature}", put_flag, "PUT"),
        ("/admin/room-tokens", mint_room_token, "POST"),
        ("/admin/terms/{term:path}", get_term, "GET"),
        ("/admin/terms/{term:path}", put_term, "PUT"),
        ("/admin/terms/{term:path}", delete_term, "DELETE"),
    ]
    return [
        Route(path, timed(latency, f"{method} {path}")(endpoint), methods=[method])
        for path, endpoint, method in table
    ]
