"""The pieces of the OpenAPI 3.1 documents of every HTTP API lightcone serves, each at
``GET /openapi.json``.

One table per app (:func:`edge_node.api.document`, :func:`core_region.api.document`, and the
local demo's control API in :func:`deploy.local.control.openapi_document`, built from these
pieces; each feature documents its own routes the same way) lists each path,
method, parameter bound, request body and response, with the bounds read from the same settings and
constants the handlers check, so the document cannot promise a limit the code does not keep.
``tests/fuzz/test_openapi.py`` checks that every route of each app is in its document and
every documented operation is a route (so the two cannot drift), and drives each document
with schemathesis: no 5xx, every status and body as documented, JSON errors.

Websocket endpoints are not HTTP operations; each document names them under ``x-websockets``
(their messages are in docs/protocol.md and fuzzed from :mod:`shared.protocol`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared.protocol.link import MAX_MAX_AGE_MS

Schema = dict[str, Any]
Operation = dict[str, Any]

INT64 = {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}

ERROR: Schema = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "pattern": "^[a-z_]+$", "description": "stable code"},
        "message": {"type": "string", "description": "for humans"},
    },
}
"""The body of every HTTP error (:meth:`shared.errors.LightconeError.to_json`)."""


def json_answer(schema: Schema, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def text_answer(media_type: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


def obj(required: Mapping[str, Schema], **optional: Schema) -> Schema:
    """A JSON object schema with these properties (``required`` ones always present)."""
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **optional},
    }


def error_answers(codes_by_status: dict[int, str]) -> dict[str, Any]:
    """Error responses: each status, with the codes it carries in its description."""
    return {
        str(status): json_answer(ERROR, f"error codes: {codes}")
        for status, codes in codes_by_status.items()
    }


def query_param(name: str, schema: Schema, *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


def path_param(name: str, schema: Schema | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}


def request_body(schema: Schema, max_bytes: int) -> dict[str, Any]:
    return {
        "required": True,
        "description": f"a JSON object of at most {max_bytes} bytes",
        "content": {"application/json": {"schema": schema}},
    }


def operation(summary: str, responses: dict[str, Any], **rest: Any) -> Operation:
    return {"summary": summary, "responses": responses, **rest}


def document(
    title: str,
    paths: dict[str, dict[str, Operation]],
    websockets: dict[str, str],
    *,
    bearer: bool = False,
) -> dict[str, Any]:
    """An OpenAPI 3.1 document; ``websockets`` maps each websocket path to what it carries."""
    for operations in paths.values():
        for op in operations.values():
            responses = op["responses"]
            if any(p["in"] == "path" for p in op.get("parameters", [])):
                # A path parameter with a line break matches no route (Starlette's path regexes).
                responses.setdefault("404", json_answer(ERROR, "error codes: not_found"))
            # The listener answers any request over its connection caps (shared/limits.py).
            busy = responses.get("503", {}).get("description", "error codes: ")
            codes = busy.removeprefix("error codes: ")
            listener = "server_full, too_many_connections"
            responses["503"] = json_answer(
                ERROR, f"error codes: {codes + ', ' if codes else ''}{listener}"
            )
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": "1",
            "description": "Every error answers JSON {error, message}; every GET also answers "
            "HEAD. Error codes and bounds: docs/protocol.md.",
        },
        "paths": {
            "/openapi.json": {"get": operation("This document", {"200": json_answer({}, "OK")})},
            **paths,
        },
        "x-websockets": websockets,
    }
    if bearer:
        doc["components"] = {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}}
    return doc


def route(build: Callable[[], dict[str, Any]]) -> Route:
    """``GET /openapi.json``, answering the document ``build()`` makes (built once)."""
    built: list[dict[str, Any]] = []

    async def openapi(request: Request) -> Response:
        if not built:
            built.append(build())
        return JSONResponse(built[0])

    return Route("/openapi.json", openapi, methods=["GET"])


# --- shared pieces -----------------------------------------------------------------------


def health_and_metrics() -> dict[str, dict[str, Operation]]:
    """``/healthz`` and the mounted ``/metrics/`` (``GET /metrics`` redirects there)."""
    return {
        "/healthz": {
            "get": operation("Alive", {"200": json_answer(obj({"status": {"const": "ok"}}), "OK")})
        },
        "/metrics/": {
            "get": operation(
                "Prometheus metrics", {"200": text_answer("text/plain", "exposition format")}
            ),
        },
    }


LEVEL = {
    "type": "string",
    "description": "a consistency level, strongest first: strict, bounded, session, tolerant",
}
MAX_AGE_MS = {"type": "integer", "minimum": 1, "maximum": MAX_MAX_AGE_MS}
FLAG = obj(
    {
        "level": LEVEL,
        "max_age_ms": {**MAX_AGE_MS, "type": ["integer", "null"]},
        "stale_ok": {"type": "boolean"},
        "mode": LEVEL,
    },
    params={"type": "object", "additionalProperties": {"type": "integer"}},
)
FLAGS = {"type": "object", "additionalProperties": FLAG}
FLAG_BODY = {
    "description": "a level (bounded: with max_age_ms), or stale_ok (true: tolerant, false: "
    "strict)",
    "type": "object",
    "properties": {"level": LEVEL, "max_age_ms": MAX_AGE_MS, "stale_ok": {"type": "boolean"}},
}
"""A feature's flag (:data:`FLAG`), every feature's (:data:`FLAGS`), and the body that sets one."""


def room_token_schemas() -> tuple[Schema, Schema, dict[int, str]]:
    """Body, answer and errors of minting a room token (the core's admin API; the local demo's
    control API forwards it)."""
    from shared.roomtoken import MAX_TTL_S

    body = obj(
        {"room": {"type": "string", "minLength": 1}, "name": {"type": "string", "minLength": 1}},
        session={"type": ["string", "null"], "minLength": 1},
        ttl_s={"type": "integer", "minimum": 1, "maximum": MAX_TTL_S},
    )
    answer = obj({"token": {"type": "string"}, "expires_at": {"type": "integer"}})
    errors = {
        400: "bad_json, bad_field, bad_ttl",
        404: "no_room_secret",
        413: "payload_too_large",
    }
    return body, answer, errors


# --- core ----------------------------------------------------------------------------------


def admin(summary: str, ok: Schema, errors: dict[int, str] | None = None) -> Operation:
    """An operation of the core's admin API: bearer-protected, rate-limited."""
    denied = error_answers({401: "unauthorized", 429: "rate_limited (with Retry-After)"})
    responses = {"200": json_answer(ok, "OK"), **denied, **error_answers(errors or {})}
    return operation(summary, responses, security=[{"bearer": []}])
