"""OpenAPI 3.1 documents of every HTTP API lightcone serves, each at ``GET /openapi.json``.

One table per app (:func:`edge`, :func:`core`, and the local demo's control API in
:func:`deploy.local.control.openapi_document`, built from the same pieces) lists each path,
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
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from core_region.settings import CoreSettings
    from edge_node.settings import EdgeSettings

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


def _json(schema: Schema, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _text(media_type: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


def _obj(required: Mapping[str, Schema], **optional: Schema) -> Schema:
    """A JSON object schema with these properties (``required`` ones always present)."""
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **optional},
    }


def _errors(codes_by_status: dict[int, str]) -> dict[str, Any]:
    """Error responses: each status, with the codes it carries in its description."""
    return {
        str(status): _json(ERROR, f"error codes: {codes}")
        for status, codes in codes_by_status.items()
    }


def _query(name: str, schema: Schema, *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


def _path(name: str, schema: Schema | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}


def _body(schema: Schema, max_bytes: int) -> dict[str, Any]:
    return {
        "required": True,
        "description": f"a JSON object of at most {max_bytes} bytes",
        "content": {"application/json": {"schema": schema}},
    }


def _op(summary: str, responses: dict[str, Any], **rest: Any) -> Operation:
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
        for operation in operations.values():
            responses = operation["responses"]
            if any(p["in"] == "path" for p in operation.get("parameters", [])):
                # A path parameter with a line break matches no route (Starlette's path regexes).
                responses.setdefault("404", _json(ERROR, "error codes: not_found"))
            # The listener answers any request over its connection caps (shared/limits.py).
            busy = responses.get("503", {}).get("description", "error codes: ")
            codes = busy.removeprefix("error codes: ")
            listener = "server_full, too_many_connections"
            responses["503"] = _json(
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
            "/openapi.json": {"get": _op("This document", {"200": _json({}, "OK")})},
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


def _health_and_metrics() -> dict[str, dict[str, Operation]]:
    """``/healthz`` and the mounted ``/metrics/`` (``GET /metrics`` redirects there)."""
    return {
        "/healthz": {"get": _op("Alive", {"200": _json(_obj({"status": {"const": "ok"}}), "OK")})},
        "/metrics/": {
            "get": _op("Prometheus metrics", {"200": _text("text/plain", "exposition format")}),
        },
    }


FLAG = _obj({"stale_ok": {"type": "boolean"}, "mode": {"enum": ["tolerant", "strict"]}})
FLAGS = {"type": "object", "additionalProperties": FLAG}
FLAG_BODY = _obj({"stale_ok": {"type": "boolean"}})
"""A feature's flag (:data:`FLAG`), every feature's (:data:`FLAGS`), and the body that sets one."""


def room_token_schemas() -> tuple[Schema, Schema, dict[int, str]]:
    """Body, answer and errors of minting a room token (the core's admin API; the local demo's
    control API forwards it)."""
    from shared.roomtoken import MAX_TTL_S

    body = _obj(
        {"room": {"type": "string", "minLength": 1}, "name": {"type": "string", "minLength": 1}},
        session={"type": ["string", "null"], "minLength": 1},
        ttl_s={"type": "integer", "minimum": 1, "maximum": MAX_TTL_S},
    )
    answer = _obj({"token": {"type": "string"}, "expires_at": {"type": "integer"}})
    errors = {
        400: "bad_json, bad_field, bad_ttl",
        404: "no_room_secret",
        413: "payload_too_large",
    }
    return body, answer, errors


# --- edge ----------------------------------------------------------------------------------


def edge(settings: EdgeSettings, features: dict[str, Any]) -> dict[str, Any]:
    """The edge's HTTP API (docs/protocol.md §2), bounds from ``settings``; ``features``: the
    paths of the features' routes."""
    from edge_node.replay import METHODS

    status = _obj(
        {
            "region": {"type": "string"},
            "edge_id": {"type": "string"},
            "link": {"enum": ["up", "suspect", "down", "connecting"]},
            "last_heard_ms": {"type": ["integer", "null"]},
            "version": {"type": "integer"},
            "age_ms": {"type": "integer"},
            "stale": {"type": "boolean"},
            "flags": FLAGS,
            "outbox": {"type": "integer", "minimum": 0},
        }
    )
    replay = _errors({404: "admin_on_core", 409: "replayed (with a fly-replay header)"})
    admin = {
        method.lower(): _op("The admin API lives on the core", replay)
        for method in METHODS
        if method != "HEAD"
    }
    paths: dict[str, dict[str, Operation]] = {
        **features,
        "/": {"get": _op("The demo page", {"200": _text("text/html", "the page")})},
        "/static/{path}": {
            "get": _op(
                "The demo page's files",
                {"200": _text("*/*", "a file"), **_errors({404: "not_found"})},
                parameters=[_path("path")],
            )
        },
        "/status": {"get": _op("This edge, its link and freshness", {"200": _json(status, "OK")})},
        "/demo/config": {
            "get": _op(
                "What the demo page needs",
                {
                    "200": _json(
                        _obj(
                            {
                                "region": {"type": "string"},
                                "control_url": {"type": ["string", "null"]},
                                "room_auth": {"enum": ["off", "token"]},
                            }
                        ),
                        "config",
                    )
                },
            )
        },
        **_health_and_metrics(),
        "/readyz": {
            "get": _op(
                "Ready once a snapshot is loaded",
                {
                    "200": _json(
                        _obj(
                            {
                                "status": {"const": "ready"},
                                "version": {"type": "integer"},
                                "region": {"type": "string"},
                            }
                        ),
                        "ready",
                    ),
                    **_errors({503: "not_ready"}),
                },
            )
        },
        "/admin": admin,
        "/admin/{rest}": {
            method: {**operation, "parameters": [_path("rest")]}
            for method, operation in admin.items()
        },
    }
    websockets = {
        "/ws": "client websocket (docs/protocol.md §4)",
        "/admin": "denied",
        "/admin/{rest}": "denied",
    }
    return document("lightcone edge", paths, websockets)


# --- core ----------------------------------------------------------------------------------


def core(settings: CoreSettings) -> dict[str, Any]:
    """The core's HTTP API (docs/protocol.md §8); ``/admin`` needs the bearer token."""
    from core_region.admin import MAX_BODY_BYTES, MAX_WEIGHT
    from shared.text import MAX_TERM_CHARS

    secured: dict[str, Any] = {"security": [{"bearer": []}]}
    token_body, token_answer, token_errors = room_token_schemas()
    denied = _errors({401: "unauthorized", 429: "rate_limited (with Retry-After)"})
    term = [_path("term", {"type": "string", "maxLength": MAX_TERM_CHARS})]
    entry = {"term": {"type": "string"}, "key": {"type": "string"}}
    versioned = {**entry, "version": {"type": "integer"}}

    def admin(summary: str, ok: Schema, errors: dict[int, str] | None = None) -> Operation:
        responses = {"200": _json(ok, "OK"), **denied, **_errors(errors or {})}
        return _op(summary, responses, **secured)

    paths: dict[str, dict[str, Operation]] = {
        **_health_and_metrics(),
        "/readyz": {
            "get": _op(
                "Ready once the start-up snapshot is built",
                {
                    "200": _json(
                        _obj({"status": {"const": "ready"}, "version": {"type": "integer"}}),
                        "ready",
                    ),
                    **_errors({503: "not_ready"}),
                },
            )
        },
        "/admin/status": {"get": admin("The core and its edges", {"type": "object"})},
        "/admin/room-tokens": {
            "post": {
                **admin("Mint a room token", token_answer, token_errors),
                "requestBody": _body(token_body, MAX_BODY_BYTES),
            }
        },
        "/admin/flags": {"get": admin("Every feature's flag", FLAGS)},
        "/admin/flags/{feature}": {
            "put": {
                **admin(
                    "Set a feature's flag",
                    _obj({"feature": {"type": "string"}, **FLAG["properties"]}),
                    {400: "bad_json, bad_flag", 404: "not_found", 413: "payload_too_large"},
                ),
                "parameters": [_path("feature")],
                "requestBody": _body(FLAG_BODY, MAX_BODY_BYTES),
            }
        },
        "/admin/terms/{term}": {
            "get": {
                **admin(
                    "A served term",
                    _obj({**entry, "weight": {"type": "integer"}}),
                    {400: "bad_term", 404: "unknown_term"},
                ),
                "parameters": term,
            },
            "put": {
                **admin(
                    "Upsert a term",
                    _obj({**versioned, "weight": {"type": "integer"}}),
                    {400: "bad_json, bad_term, bad_weight", 413: "payload_too_large"},
                ),
                "parameters": term,
                "requestBody": _body(
                    _obj({"weight": {"type": "integer", "minimum": 1, "maximum": MAX_WEIGHT}}),
                    MAX_BODY_BYTES,
                ),
            },
            "delete": {
                **admin(
                    "Take a term down",
                    _obj({**versioned, "status": {"const": "taken_down"}}),
                    {400: "bad_term"},
                ),
                "parameters": term,
            },
        },
    }
    del settings  # every bound of the core's API is a constant today
    websockets = {"/link": "the edge link (docs/protocol.md §9), bearer link token"}
    return document("lightcone core", paths, websockets, bearer=True)


# --- for features and the local demo's control API: each documents its routes with these ----

operation = _op
json_answer = _json
obj = _obj
error_answers = _errors
query_param = _query
path_param = _path
request_body = _body
