"""The edge's OpenAPI document (docs/protocol.md §2): its own routes, and every feature's."""

from __future__ import annotations

from typing import Any

from edge_node.replay import METHODS
from edge_node.settings import EdgeSettings
from shared.openapi import (
    FLAGS,
    LEVEL,
    Operation,
    document as openapi_document,
    error_answers,
    health_and_metrics,
    json_answer,
    obj,
    operation,
    path_param,
    text_answer,
)

# --- edge ----------------------------------------------------------------------------------


def document(settings: EdgeSettings, features: dict[str, Any]) -> dict[str, Any]:
    """The edge's HTTP API, bounds from ``settings``; ``features``: the paths of the
    features' routes."""

    status = obj(
        {
            "region": {"type": "string"},
            "edge_id": {"type": "string"},
            "link": {"enum": ["up", "suspect", "down", "connecting"]},
            "last_heard_ms": {"type": ["integer", "null"]},
            "version": {"type": "integer"},
            "age_ms": {"type": "integer"},
            "stale": {"type": "boolean"},
            "flags": FLAGS,
            "features": {
                "type": "object",
                "additionalProperties": obj(
                    {
                        "level": LEVEL,
                        "max_age_ms": {"type": ["integer", "null"]},
                        "stale_ok": {"type": "boolean"},
                        "version": {"type": "integer"},
                        "age_ms": {"type": "integer"},
                        "stale": {"type": "boolean"},
                    }
                ),
            },
            "outbox": {"type": "integer", "minimum": 0},
        }
    )
    replay = error_answers({404: "admin_on_core", 409: "replayed (with a fly-replay header)"})
    admin = {
        method.lower(): operation("The admin API lives on the core", replay)
        for method in METHODS
        if method != "HEAD"
    }
    paths: dict[str, dict[str, Operation]] = {
        **features,
        "/": {"get": operation("The demo page", {"200": text_answer("text/html", "the page")})},
        "/static/{path}": {
            "get": operation(
                "The demo page's files",
                {"200": text_answer("*/*", "a file"), **error_answers({404: "not_found"})},
                parameters=[path_param("path")],
            )
        },
        "/status": {
            "get": operation(
                "This edge, its link and freshness", {"200": json_answer(status, "OK")}
            )
        },
        "/demo/config": {
            "get": operation(
                "What the demo page needs",
                {
                    "200": json_answer(
                        obj(
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
        **health_and_metrics(),
        "/readyz": {
            "get": operation(
                "Ready once a snapshot is loaded",
                {
                    "200": json_answer(
                        obj(
                            {
                                "status": {"const": "ready"},
                                "version": {"type": "integer"},
                                "region": {"type": "string"},
                            }
                        ),
                        "ready",
                    ),
                    **error_answers({503: "not_ready"}),
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
    return openapi_document("lightcone edge", paths, websockets)
