"""The core's OpenAPI document (docs/protocol.md §8): its own routes, and every feature's."""

from __future__ import annotations

from typing import Any

from core_region.admin import MAX_BODY_BYTES
from core_region.settings import CoreSettings
from shared.openapi import (
    FLAG,
    FLAG_BODY,
    FLAGS,
    Operation,
    admin,
    document as openapi_document,
    error_answers,
    health_and_metrics,
    json_answer,
    obj,
    operation,
    path_param,
    request_body,
)


def document(settings: CoreSettings, features: dict[str, Any]) -> dict[str, Any]:
    """The core's HTTP API; ``/admin`` needs the bearer token; ``features``: the paths of
    the features' admin routes."""

    paths: dict[str, dict[str, Operation]] = {
        **health_and_metrics(),
        "/readyz": {
            "get": operation(
                "Ready once the start-up snapshot is built",
                {
                    "200": json_answer(
                        obj({"status": {"const": "ready"}, "version": {"type": "integer"}}),
                        "ready",
                    ),
                    **error_answers({503: "not_ready"}),
                },
            )
        },
        "/admin/status": {"get": admin("The core and its edges", {"type": "object"})},
        "/admin/flags": {"get": admin("Every feature's flag", FLAGS)},
        "/admin/flags/{feature}": {
            "put": {
                **admin(
                    "Set a feature's flag",
                    obj({"feature": {"type": "string"}, **FLAG["properties"]}),
                    {
                        400: "bad_json, bad_flag, bad_max_age_ms",
                        404: "not_found",
                        413: "payload_too_large",
                    },
                ),
                "parameters": [path_param("feature")],
                "requestBody": request_body(FLAG_BODY, MAX_BODY_BYTES),
            }
        },
        **features,
    }
    del settings  # every bound of the core's API is a constant today
    websockets = {"/link": "the edge link (docs/protocol.md §9), bearer link token"}
    return openapi_document("lightcone core", paths, websockets, bearer=True)
