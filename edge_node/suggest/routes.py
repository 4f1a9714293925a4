"""The suggestion feature's HTTP routes: ``GET /suggest`` and ``POST /search``, the same
answers as the websocket's ``suggest`` and ``search``, ``GET /suggest/pack`` (the device
pack, :mod:`edge_node.suggest.pack`), and their OpenAPI paths."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from edge_node.settings import EdgeSettings
from edge_node.suggest import caching, pack as packs
from shared import openapi as oa
from shared.errors import BadRequest, Unavailable
from shared.http import json_body
from shared.protocol import LEVELS, MAX_BOOKMARK_CHARS
from shared.text import MAX_ID_CHARS

if TYPE_CHECKING:
    from edge_node.suggest.feature import SuggestFeature
    from edge_node.suggest.index import SuggestIndex


def routes(feature: SuggestFeature) -> list[BaseRoute]:
    node = feature.node
    cache_policy = feature.settings.cache_policy()

    async def suggest(request: Request) -> Response:
        q = request.query_params.get("q")
        if q is None:
            raise BadRequest("missing query parameter 'q'", code="missing_q")
        limit = _int_param(request, "limit", 10)
        assert limit is not None
        answer = await feature.suggest(
            q,
            limit,
            _int_param(request, "min_version", None),
            consistency=request.query_params.get("consistency") or None,
            max_age_ms=_int_param(request, "max_age_ms", None),
            bookmark=_bookmark(request),
        )
        headers = caching.headers(
            mode=answer.mode,
            fresh_ms=answer.fresh_ms,
            epoch=answer.epoch,
            version=answer.version,
            q=q,
            limit=limit,
            policy=cache_policy,
        )
        headers[BOOKMARK_HEADER] = answer.bookmark
        if caching.matches(request.headers.get("if-none-match"), headers["ETag"]):
            return Response(status_code=304, headers=headers)
        return Response(answer.http_body(), headers=headers, media_type="application/json")

    async def search(request: Request) -> Response:
        body = await json_body(request, feature.settings.max_body_bytes)
        search_id, q = body.get("id"), body.get("q")
        if not isinstance(search_id, str) or not isinstance(q, str):
            raise BadRequest('body must be {"id": string, "q": string}', code="bad_field")
        ack = await feature.search(search_id, q, feature.sources.of(request))
        if ack.bookmark is None:  # queued
            return JSONResponse({"id": ack.id, "status": ack.status, "version": ack.version}, 202)
        body = {
            "id": ack.id,
            "status": ack.status,
            "version": ack.version,
            "bookmark": ack.bookmark,
        }
        return JSONResponse(body, 200, headers={BOOKMARK_HEADER: ack.bookmark})

    return [
        Route("/suggest", node.http("/suggest", suggest), methods=["GET"]),
        Route("/search", node.http("/search", search), methods=["POST"]),
        pack_route(feature),
    ]


PACK_CACHE_CONTROL = "no-cache"
"""Kept, but checked with the edge (``If-None-Match``) each time it is used: a flip of the flag
reaches a page at its next refresh, which then costs a 304 when nothing changed."""


def pack_route(feature: SuggestFeature) -> Route:
    """``GET /suggest/pack``: the device pack, made lazily off the event loop, at most one build
    at a time and one per :data:`~edge_node.suggest.pack.REBUILD_S`
    (:class:`~edge_node.suggest.pack.Packs`), kept with its gzipped bytes until the data or the
    flag changes; ``ETag`` and ``If-None-Match`` → 304; gzipped when accepted."""
    node = feature.node
    settings = node.settings
    state = packs.Packs()
    building: asyncio.Future[None] | None = None

    async def build(index: SuggestIndex) -> None:
        now = asyncio.get_running_loop().time()
        if state.due(index, now):
            state.building(index, now)
            copy, epoch = index.copy(), feature.replica.epoch  # deltas land on the original
            # Never more items than the edge gives: its hot lists bound the limit it takes.
            limit = min(packs.PACK_LIMIT, settings.max_limit, index.depth)
            state.built(await asyncio.to_thread(packs.contents, copy, epoch, limit))
        level = feature.level.level
        if state.stale(level):
            assert state.made is not None
            made, bound = state.made, settings.max_query_chars
            state.ready = await asyncio.to_thread(packs.render, made, level, bound)

    async def current() -> packs.Pack:
        nonlocal building
        index = feature.replica.index
        if index is None:
            raise Unavailable("the edge has no data yet", code="not_ready")
        if building is None:
            building = asyncio.ensure_future(build(index))
            building.add_done_callback(_done)
        await asyncio.shield(building)
        assert state.ready is not None
        return state.ready

    def _done(_: object) -> None:
        nonlocal building
        building = None

    async def pack(request: Request) -> Response:
        found = await current()
        headers = {
            "ETag": found.etag,
            "Cache-Control": PACK_CACHE_CONTROL,
            "Vary": "Accept-Encoding",
        }
        if settings.demo_control_url:  # the demo's page reads it through every entry
            headers["Access-Control-Allow-Origin"] = "*"
            headers["Access-Control-Expose-Headers"] = "ETag"
        if caching.matches(request.headers.get("if-none-match"), found.etag):
            return Response(status_code=304, headers=headers)
        if packs.accepts_gzip(request.headers.get("accept-encoding", "")):
            headers["Content-Encoding"] = "gzip"
            return Response(found.gzipped, headers=headers, media_type="application/json")
        return Response(found.body, headers=headers, media_type="application/json")

    return Route("/suggest/pack", node.http("/suggest/pack", pack), methods=["GET"])


BOOKMARK_HEADER = "Lightcone-Bookmark"
"""The bookmark of an answer (response) or of the read's floor (request); the request may
carry it as the ``bookmark`` query parameter instead."""


def _bookmark(request: Request) -> str | None:
    """The read's bookmark: the ``bookmark`` parameter or the header (400 ``bad_bookmark`` if
    both are there and differ; the text itself is read by the feature)."""
    param = request.query_params.get("bookmark") or None
    header = request.headers.get(BOOKMARK_HEADER) or None
    if param is not None and header is not None and param != header:
        raise BadRequest(
            f"the bookmark parameter and the {BOOKMARK_HEADER} header differ", code="bad_bookmark"
        )
    return param or header


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


BOOKMARK = {"type": "string", "maxLength": MAX_BOOKMARK_CHARS, "pattern": "^[A-Za-z0-9_.-]+$"}


def openapi_paths(settings: EdgeSettings) -> dict[str, Any]:
    q = {"type": "string", "maxLength": settings.max_query_chars}
    item = oa.obj(
        {"term": {"type": "string"}, "weight": {"type": "integer"}},
        match={
            "type": "string",
            "description": "absent: prefix; typo; alias (another name); kinds may be added",
        },
        typos={"enum": [1, 2]},
        alias={"type": "string", "description": "the other name that matched"},
    )
    suggestions = oa.obj(
        {
            "items": {"type": "array", "items": item, "maxItems": settings.max_limit},
            "version": {"type": "integer"},
            "age_ms": {"type": "integer"},
            "mode": {"enum": list(LEVELS)},
            "stale": {"type": "boolean"},
            "region": {"type": "string"},
            "bookmark": BOOKMARK,
        },
        core_trip={"const": True, "description": "the answer waited for the core"},
    )
    search_body = oa.obj(
        {"id": {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS}, "q": q}
    )
    ack = oa.obj(
        {
            "id": {"type": "string"},
            "status": {"enum": ["committed", "queued"]},
            "version": {"type": ["integer", "null"]},
        },
        bookmark=BOOKMARK,
    )
    return {
        **pack_openapi_paths(item),
        "/suggest": {
            "get": oa.operation(
                "Top completions of q",
                {
                    "200": oa.json_answer(
                        suggestions, "suggestions (with ETag, Cache-Control by level, Vary)"
                    ),
                    "304": {"description": "If-None-Match named the answer's ETag: no body"},
                    **oa.error_answers(
                        {
                            400: "missing_q, bad_limit, bad_min_version, query_too_long, "
                            "min_version_ahead, bad_consistency, consistency_too_strong, "
                            "bad_max_age_ms, bad_bookmark, bookmark_ahead",
                            429: "rate_limited (with Retry-After)",
                            503: "not_ready, core_unreachable, strict_timeout",
                        }
                    ),
                },
                parameters=[
                    oa.query_param("q", q, required=True),
                    oa.query_param(
                        "limit", {"type": "integer", "minimum": 1, "maximum": settings.max_limit}
                    ),
                    oa.query_param("min_version", oa.INT64),
                    oa.query_param("consistency", {"enum": list(LEVELS)}),
                    oa.query_param("max_age_ms", oa.MAX_AGE_MS),
                    oa.query_param("bookmark", BOOKMARK),
                ],
            )
        },
        "/search": {
            "post": oa.operation(
                "Log a search (idempotent on id)",
                {
                    "200": oa.json_answer(ack, "committed"),
                    "202": oa.json_answer(ack, "queued"),
                    **oa.error_answers(
                        {
                            400: "bad_json, bad_field, bad_id, query_too_long, empty_query, "
                            "rejected",
                            409: "id_conflict (the id was used for another q)",
                            413: "payload_too_large",
                            429: "rate_limited (with Retry-After)",
                            503: "outbox_full",
                        }
                    ),
                },
                requestBody=oa.request_body(search_body, settings.max_body_bytes),
            )
        },
    }


def pack_openapi_paths(item: oa.Schema) -> dict[str, Any]:
    """``GET /suggest/pack``'s OpenAPI path (``item``: a suggestion's item)."""
    answers = {"type": "array", "items": item, "maxItems": packs.PACK_LIMIT}
    body = oa.obj(
        {
            "version": {"type": "integer"},
            "epoch": {"type": "string"},
            "level": {"type": "string"},
            "fold": {"type": "integer"},
            "limit": {"type": "integer", "minimum": 1, "maximum": packs.PACK_LIMIT},
            "max_query_chars": {"type": "integer"},
            "abbreviations": {"type": "object", "additionalProperties": {"type": "string"}},
            "chars": {"type": "object", "additionalProperties": {"type": "string"}},
            "prefixes": {"type": "object", "additionalProperties": answers},
        }
    )
    return {
        "/suggest/pack": {
            "get": oa.operation(
                "Every answer to one or two folded characters, for the device (ETag; gzip)",
                {
                    "200": oa.json_answer(body, "the pack"),
                    "304": {"description": "not modified: If-None-Match names its ETag"},
                    **oa.error_answers({429: "rate_limited (with Retry-After)", 503: "not_ready"}),
                },
            )
        }
    }
