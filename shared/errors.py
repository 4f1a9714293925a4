"""The one error hierarchy, with the HTTP status and websocket close code of each error.

::

    LightconeError                      base; ``code`` is a stable machine-readable name
    ├── ProtocolError                   undecodable or ill-typed message  -> 400 / ws error
    ├── BadRequest                      a well-formed request we refuse   -> 400 / ws error
    ├── Unauthorized                    missing or wrong token            -> 401 / ws error
    ├── Forbidden                       not allowed from there (Origin, Host) -> 403
    ├── NotFound                        unknown resource                  -> 404
    ├── Conflict                        a write that contradicts an earlier one -> 409 / ws error
    ├── PayloadTooLarge                 body over its documented bound    -> 413 / close 1009
    ├── RateLimited                     over a documented rate            -> 429 / ws error
    └── Unavailable                     a guarantee we cannot keep now    -> 503 / ws error
        │   (core unreachable, strict deadline passed, outbox full, not ready)
        └── StoreUnavailable            the core's database cannot be reached -> 503

Only two places turn these into responses: the Starlette exception handlers (HTTP) and the
websocket endpoints' ``except`` clauses (error messages or close frames).
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar


class CloseCode(IntEnum):
    """Websocket close codes we send, by name (RFC 6455 §7.4 and the 4000-4999 private range)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    UNSUPPORTED_DATA = 1003
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013
    UNAUTHORIZED = 4401
    LINK_TIMEOUT = 4408
    SUPERSEDED = 4409
    UNSUPPORTED_PROTOCOL = 4426


class LightconeError(Exception):
    """Base class: ``code`` names the error on the wire, ``str()`` explains it."""

    status: ClassVar[int] = 500
    default_code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code

    def __str__(self) -> str:
        return self.message

    def to_json(self) -> dict[str, str]:
        """The JSON body of an HTTP error response."""
        return {"error": self.code, "message": self.message}


class ProtocolError(LightconeError):
    """The peer sent data that is not a valid message.

    ``request_id`` is the frame's ``id`` when it had a usable one, so the error can be
    matched to the request.
    """

    status = 400
    default_code = "bad_message"
    request_id: str | int | None = None


class BadRequest(LightconeError):
    """A well-formed request with a value we refuse (too long, out of range, empty)."""

    status = 400
    default_code = "bad_request"


class Unauthorized(LightconeError):
    """A token is missing or wrong."""

    status = 401
    default_code = "unauthorized"


class Forbidden(LightconeError):
    """The request is well-formed but not allowed from where it comes (its Origin or Host)."""

    status = 403
    default_code = "forbidden"


class NotFound(LightconeError):
    status = 404
    default_code = "not_found"


class Conflict(LightconeError):
    """A write contradicts one already accepted (e.g. a search id reused for another query)."""

    status = 409
    default_code = "id_conflict"

    @classmethod
    def reused_id(cls, search_id: str) -> Conflict:
        """A search id that was already used for another query."""
        return cls(f"search id {search_id!r} was already used for another query")


class PayloadTooLarge(LightconeError):
    status = 413
    default_code = "payload_too_large"


class RateLimited(LightconeError):
    status = 429
    default_code = "rate_limited"


class Unavailable(LightconeError):
    """A guarantee cannot be kept right now; the client may retry later."""

    status = 503
    default_code = "unavailable"


class StoreUnavailable(Unavailable):
    """The core's database (PostgreSQL) cannot be reached; writes wait for it to return."""

    default_code = "store_unavailable"
