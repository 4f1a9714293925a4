"""HTTP pieces both apps use: JSON errors, bounded JSON bodies, bearer tokens, timing."""

from __future__ import annotations

import functools
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Histogram
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shared.errors import BadRequest, LightconeError, PayloadTooLarge, Unauthorized
from shared.text import is_text, not_text_message

Endpoint = Callable[[Request], Awaitable[Response]]


async def lightcone_error(request: Request, exc: Exception) -> Response:
    """Exception handler: every :class:`LightconeError` becomes its status and a JSON body."""
    assert isinstance(exc, LightconeError)
    return JSONResponse(exc.to_json(), status_code=exc.status)


async def http_error(request: Request, exc: Exception) -> Response:
    """Exception handler: Starlette's own 404/405 with a JSON body like ours."""
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(
        {"error": code, "message": str(exc.detail)},
        status_code=exc.status_code,
        headers=exc.headers,
    )


EXCEPTION_HANDLERS: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
    LightconeError: lightcone_error,
    HTTPException: http_error,
}


MAX_JSON_DEPTH = 8
"""Deepest nesting of arrays and objects in a request body (every body lightcone takes is one
flat object): deeper bodies are refused before anything, an encoder included, recurses."""


async def json_body(request: Request, max_bytes: int) -> dict[str, Any]:
    """The request's JSON object, read up to ``max_bytes``.

    Every string in it, object keys included, has passed the text rule of :mod:`shared.text`;
    it nests at most :data:`MAX_JSON_DEPTH` deep.

    Raises:
        PayloadTooLarge: over ``max_bytes``.
        BadRequest: not UTF-8 JSON, not an object, or nested too deep (``bad_json``); a
            string that is not text (``bad_text``).
    """
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"request body is over {max_bytes} bytes")
    return parse_json_object(bytes(body))


def parse_json_object(body: bytes) -> dict[str, Any]:
    """:func:`json_body` once the body is read (see there)."""
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_refuse)
    except RecursionError:  # the parser's own limit, below any depth it could return
        raise BadRequest(
            f"body nests deeper than {MAX_JSON_DEPTH} levels", code="bad_json"
        ) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}", code="bad_json") from None
    if not isinstance(value, dict):
        raise BadRequest("body must be a JSON object", code="bad_json")
    _check_strings(value)
    return value


def _check_strings(value: dict[str, Any]) -> None:
    """Depth and text rule over every value of ``value``, iteratively (no recursion)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if not is_text(item):
                raise BadRequest(not_text_message("a string in the body", item), code="bad_text")
            continue
        if isinstance(item, dict):
            children: list[Any] = [*item, *item.values()]
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise BadRequest(f"body nests deeper than {MAX_JSON_DEPTH} levels", code="bad_json")
        pending += [(child, depth + 1) for child in children]


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def check_bearer(request: Request, token: str) -> None:
    """Raises :class:`Unauthorized` unless the request carries ``Bearer <token>``."""
    if not bearer_matches(request.headers.get("authorization"), token):
        raise Unauthorized("missing or wrong bearer token")


def bearer_matches(header: str | None, token: str) -> bool:
    scheme, _, value = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.encode(), token.encode())


def timed(histogram: Histogram, route: str) -> Callable[[Endpoint], Endpoint]:
    """Record the endpoint's latency (errors included) under ``route``."""
    child = histogram.labels(route)

    def wrap(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def timed_endpoint(request: Request) -> Response:
            started = time.perf_counter()
            try:
                return await endpoint(request)
            finally:
                child.observe(time.perf_counter() - started)

        return timed_endpoint

    return wrap
