"""OpenAPI 3.1 documents of every HTTP API lightcone serves, each at ``GET /openapi.json``.

One table per app (:func:`edge`, :func:`core`, and the local demo's control API in
:func:`deploy.local.control.openapi_document`, built from the same helpers) lists each path,
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


def json_response(schema: Schema, description: str) -> dict[str, Any]:
    """A response with a JSON body of ``schema``."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def text_response(media_type: str, description: str) -> dict[str, Any]:
    """A response with a text body of ``media_type``."""
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


def object_schema(required: Mapping[str, Schema], **optional: Schema) -> Schema:
    """A JSON object schema with these properties (``required`` ones always present)."""
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **optional},
    }


def error_responses(codes_by_status: dict[int, str]) -> dict[str, Any]:
    """Error responses: each status, with the codes it carries in its description."""
    return {
        str(status): json_response(ERROR, f"error codes: {codes}")
        for status, codes in codes_by_status.items()
    }


def query_param(name: str, schema: Schema, *, required: bool = False) -> dict[str, Any]:
    """A query parameter."""
    return {"name": name, "in": "query", "required": required, "schema": schema}


def path_param(name: str, schema: Schema | None = None) -> dict[str, Any]:
    """A path parameter (a string unless ``schema`` says otherwise)."""
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}


def json_request(schema: Schema, max_bytes: int) -> dict[str, Any]:
    """A required JSON request body of ``schema``, at most ``max_bytes``."""
    return {
        "required": True,
        "description": f"a JSON object of at most {max_bytes} bytes",
        "content": {"application/json": {"schema": schema}},
    }


def op(summary: str, responses: dict[str, Any], **rest: Any) -> Operation:
    """An operation; ``rest`` adds its other fields (``parameters``, ``requestBody``...)."""
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
                responses.setdefault("404", json_response(ERROR, "error codes: not_found"))
            # The listener answers any request over its connection caps (shared/limits.py).
            busy = responses.get("503", {}).get("description", "error codes: ")
            codes = busy.removeprefix("error codes: ")
            listener = "server_full, too_many_connections"
            responses["503"] = json_response(
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
            "/openapi.json": {"get": op("This document", {"200": json_response({}, "OK")})},
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
        "/healthz": {
            "get": op(
                "Alive", {"200": json_response(object_schema({"status": {"const": "ok"}}), "OK")}
            )
        },
        "/metrics/": {
            "get": op(
                "Prometheus metrics", {"200": text_response("text/plain", "exposition format")}
            ),
        },
    }


FLAG = object_schema({"stale_ok": {"type": "boolean"}, "mode": {"enum": ["tolerant", "strict"]}})
FLAGS = {"type": "object", "additionalProperties": FLAG}
FLAG_BODY = object_schema({"stale_ok": {"type": "boolean"}})
"""A feature's flag (:data:`FLAG`), every feature's (:data:`FLAGS`), and the body that sets one."""


def room_token_schemas() -> tuple[Schema, Schema, dict[int, str]]:
    """Body, answer and errors of minting a room token (the core's admin API; the local demo's
    control API forwards it)."""
    from shared.roomtoken import MAX_TTL_S

    body = object_schema(
        {"room": {"type": "string", "minLength": 1}, "name": {"type": "string", "minLength": 1}},
        session={"type": ["string", "null"], "minLength": 1},
        ttl_s={"type": "integer", "minimum": 1, "maximum": MAX_TTL_S},
    )
    answer = object_schema({"token": {"type": "string"}, "expires_at": {"type": "integer"}})
    errors = {
        400: "bad_json, bad_field, bad_ttl",
        404: "no_room_secret",
        413: "payload_too_large",
    }
    return body, answer, errors


# --- edge ----------------------------------------------------------------------------------


def edge(settings: EdgeSettings) -> dict[str, Any]:
    """The edge's HTTP API (docs/protocol.md §2), bounds from ``settings``."""
    from edge_node.replay import METHODS
    from shared.text import MAX_ID_CHARS

    q = {"type": "string", "maxLength": settings.max_query_chars}
    item = object_schema({"term": {"type": "string"}, "weight": {"type": "integer"}})
    suggestions = object_schema(
        {
            "items": {"type": "array", "items": item, "maxItems": settings.max_limit},
            "version": {"type": "integer"},
            "age_ms": {"type": "integer"},
            "mode": {"enum": ["tolerant", "strict"]},
            "stale": {"type": "boolean"},
            "region": {"type": "string"},
        }
    )
    search_body = object_schema(
        {"id": {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS}, "q": q}
    )
    ack = object_schema(
        {
            "id": {"type": "string"},
            "status": {"enum": ["committed", "queued"]},
            "version": {"type": ["integer", "null"]},
        }
    )
    status = object_schema(
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
    replay = error_responses({404: "admin_on_core", 409: "replayed (with a fly-replay header)"})
    admin = {
        method.lower(): op("The admin API lives on the core", replay)
        for method in METHODS
        if method != "HEAD"
    }
    paths: dict[str, dict[str, Operation]] = {
        "/suggest": {
            "get": op(
                "Top completions of q",
                {
                    "200": json_response(suggestions, "suggestions"),
                    **error_responses(
                        {
                            400: "missing_q, bad_limit, bad_min_version, query_too_long, "
                            "min_version_ahead",
                            429: "rate_limited (with Retry-After)",
                            503: "not_ready, core_unreachable, strict_timeout",
                        }
                    ),
                },
                parameters=[
                    query_param("q", q, required=True),
                    query_param(
                        "limit", {"type": "integer", "minimum": 1, "maximum": settings.max_limit}
                    ),
                    query_param("min_version", INT64),
                ],
            )
        },
        "/search": {
            "post": op(
                "Log a search (idempotent on id)",
                {
                    "200": json_response(ack, "committed"),
                    "202": json_response(ack, "queued"),
                    **error_responses(
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
                requestBody=json_request(search_body, settings.max_body_bytes),
            )
        },
        "/": {"get": op("The demo page", {"200": text_response("text/html", "the page")})},
        "/static/{path}": {
            "get": op(
                "The demo page's files",
                {"200": text_response("*/*", "a file"), **error_responses({404: "not_found"})},
                parameters=[path_param("path")],
            )
        },
        "/status": {
            "get": op("This edge, its link and freshness", {"200": json_response(status, "OK")})
        },
        "/demo/config": {
            "get": op(
                "What the demo page needs",
                {
                    "200": json_response(
                        object_schema(
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
            "get": op(
                "Ready once a snapshot is loaded",
                {
                    "200": json_response(
                        object_schema(
                            {
                                "status": {"const": "ready"},
                                "version": {"type": "integer"},
                                "region": {"type": "string"},
                            }
                        ),
                        "ready",
                    ),
                    **error_responses({503: "not_ready"}),
                },
            )
        },
        "/admin": admin,
        "/admin/{rest}": {
            method: {**operation, "parameters": [path_param("rest")]}
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
    denied = error_responses({401: "unauthorized", 429: "rate_limited (with Retry-After)"})
    term = [path_param("term", {"type": "string", "maxLength": MAX_TERM_CHARS})]
    entry = {"term": {"type": "string"}, "key": {"type": "string"}}
    versioned = {**entry, "version": {"type": "integer"}}

    def admin(summary: str, ok: Schema, errors: dict[int, str] | None = None) -> Operation:
        responses = {"200": json_response(ok, "OK"), **denied, **error_responses(errors or {})}
        return op(summary, responses, **secured)

    paths: dict[str, dict[str, Operation]] = {
        **_health_and_metrics(),
        "/readyz": {
            "get": op(
                "Ready once the start-up snapshot is built",
                {
                    "200": json_response(
                        object_schema(
                            {"status": {"const": "ready"}, "version": {"type": "integer"}}
                        ),
                        "ready",
                    ),
                    **error_responses({503: "not_ready"}),
                },
            )
        },
        "/admin/status": {"get": admin("The core and its edges", {"type": "object"})},
        "/admin/room-tokens": {
            "post": {
                **admin("Mint a room token", token_answer, token_errors),
                "requestBody": json_request(token_body, MAX_BODY_BYTES),
            }
        },
        "/admin/flags": {"get": admin("Every feature's flag", FLAGS)},
        "/admin/flags/{feature}": {
            "put": {
                **admin(
                    "Set a feature's flag",
                    object_schema({"feature": {"type": "string"}, **FLAG["properties"]}),
                    {400: "bad_json, bad_flag", 404: "not_found", 413: "payload_too_large"},
                ),
                "parameters": [path_param("feature")],
                "requestBody": json_request(FLAG_BODY, MAX_BODY_BYTES),
            }
        },
        "/admin/terms/{term}": {
            "get": {
                **admin(
                    "A served term",
                    object_schema({**entry, "weight": {"type": "integer"}}),
                    {400: "bad_term", 404: "unknown_term"},
                ),
                "parameters": term,
            },
            "put": {
                **admin(
                    "Upsert a term",
                    object_schema({**versioned, "weight": {"type": "integer"}}),
                    {400: "bad_json, bad_term, bad_weight", 413: "payload_too_large"},
                ),
                "parameters": term,
                "requestBody": json_request(
                    object_schema(
                        {"weight": {"type": "integer", "minimum": 1, "maximum": MAX_WEIGHT}}
                    ),
                    MAX_BODY_BYTES,
                ),
            },
            "delete": {
                **admin(
                    "Take a term down",
                    object_schema({**versioned, "status": {"const": "taken_down"}}),
                    {400: "bad_term"},
                ),
                "parameters": term,
            },
        },
    }
    del settings  # every bound of the core's API is a constant today
    websockets = {"/link": "the edge link (docs/protocol.md §9), bearer link token"}
    return document("lightcone core", paths, websockets, bearer=True)
