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


async def json_body(request: Request, max_bytes: int) -> dict[str, Any]:
    """The request's JSON object, read up to ``max_bytes``.

    Raises:
        PayloadTooLarge: over ``max_bytes``.
        BadRequest: not UTF-8 JSON, or not an object.
    """
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise PayloadTooLarge(f"request body is over {max_bytes} bytes")
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_refuse)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}", code="bad_json") from None
    if not isinstance(value, dict):
        raise BadRequest("body must be a JSON object", code="bad_json")
    return value


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
