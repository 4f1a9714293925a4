"""The suggestion feature's admin routes: ``/admin/terms/{term}`` (read, upsert, take down)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from core_region.admin import MAX_BODY_BYTES
from core_region.suggest.corpus import MAX_WEIGHT
from shared import openapi as oa
from shared.errors import BadRequest, NotFound
from shared.http import json_body
from shared.names import MAX_NAMES, term_names
from shared.text import MAX_TERM_CHARS, term as text_term

if TYPE_CHECKING:
    from core_region.suggest.feature import SuggestFeature


def _term(request: Request) -> tuple[str, str]:
    """The path's term as ``(key, display form)``, through the door (:func:`shared.text.term`)."""
    term, key = text_term(request.path_params["term"], field="term", code="bad_term")
    if not key:
        raise BadRequest("term is empty after folding", code="bad_term")
    return key, term


def routes(feature: SuggestFeature) -> list[BaseRoute]:
    async def put_term(request: Request) -> Response:
        key, term = _term(request)
        body = await json_body(request, MAX_BODY_BYTES)
        weight = body.get("weight")
        if not isinstance(weight, int) or isinstance(weight, bool) or not 0 < weight <= MAX_WEIGHT:
            raise BadRequest(
                f"'weight' must be a whole number in 1..{MAX_WEIGHT}", code="bad_weight"
            )
        names = body.get("names")
        if names is not None:
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise BadRequest("'names' must be a list of strings", code="bad_name")
            names = term_names(key, names)
        version = await feature.upsert_term(key, term, weight, names)
        answer = {"term": term, "key": key, "weight": weight, "version": version}
        if names is not None:
            answer["names"] = list(names)
        return JSONResponse(answer)

    async def delete_term(request: Request) -> Response:
        key, term = _term(request)
        version = await feature.block_term(key, term)
        return JSONResponse({"term": term, "key": key, "status": "taken_down", "version": version})

    async def get_term(request: Request) -> Response:
        """The term as edges are served it once every write so far (through any core node)
        is published: a strict read, which publishes first."""
        key, _ = _term(request)
        await feature.node.publish()
        entry = feature.catalog.get(key)
        if entry is None:
            raise NotFound(f"term {key!r} is not served", code="unknown_term")
        names = list(feature.catalog.names_of(key))
        return JSONResponse(
            {"term": entry.term, "key": key, "weight": entry.weight, "names": names}
        )

    path = "/admin/terms/{term:path}"
    table = [(get_term, "GET"), (put_term, "PUT"), (delete_term, "DELETE")]
    admin = feature.node.admin
    return [
        Route(path, admin(f"{method} {path}", endpoint), methods=[method])
        for endpoint, method in table
    ]


def openapi_paths() -> dict[str, Any]:
    term = [oa.path_param("term", {"type": "string", "maxLength": MAX_TERM_CHARS})]
    entry = {"term": {"type": "string"}, "key": {"type": "string"}}
    names = {"type": "array", "maxItems": MAX_NAMES, "items": {"type": "string"}}
    versioned = {**entry, "version": {"type": "integer"}}
    return {
        "/admin/terms/{term}": {
            "get": {
                **oa.admin(
                    "A served term",
                    oa.obj({**entry, "weight": {"type": "integer"}, "names": names}),
                    {400: "bad_term", 404: "unknown_term"},
                ),
                "parameters": term,
            },
            "put": {
                **oa.admin(
                    "Upsert a term",
                    oa.obj({**versioned, "weight": {"type": "integer"}}, names=names),
                    {
                        400: "bad_json, bad_term, bad_weight, bad_name, bad_text, "
                        "too_many_names, key_too_long",
                        413: "payload_too_large",
                    },
                ),
                "parameters": term,
                "requestBody": oa.request_body(
                    oa.obj(
                        {"weight": {"type": "integer", "minimum": 1, "maximum": MAX_WEIGHT}},
                        names=names,
                    ),
                    MAX_BODY_BYTES,
                ),
            },
            "delete": {
                **oa.admin(
                    "Take a term down",
                    oa.obj({**versioned, "status": {"const": "taken_down"}}),
                    {400: "bad_term"},
                ),
                "parameters": term,
            },
        },
    }
