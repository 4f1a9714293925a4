"""Room access tokens: who may join which cursor room, under which name.

With ``LIGHTCONE_ROOM_AUTH=token`` an edge accepts a ``join`` only with a ``token`` that an
app backend minted for exactly that room, member name and session. The edge checks it on its
own (no round trip to the core): a token is a JSON Web Token signed with HMAC-SHA256
(``HS256``) under ``LIGHTCONE_ROOM_SECRET``, a secret the backend, the core and every edge
share. Any JWT library in any language can mint one; :func:`mint` is the Python helper and
the core's ``POST /admin/room-tokens`` the HTTP one. Claims:

=========== ================================================================================
``aud``     ``"lightcone-room"`` (:data:`AUDIENCE`): a JWT signed with the same secret for
            something else is not a room token
``room``    the room it admits to
``name``    the member name the join must carry
``session`` the join's ``session``; left out (or null) for a join without one
``exp``     expiry, Unix seconds: refused from that second on (no leeway; keep clocks synced)
=========== ================================================================================

Rotation: edges accept tokens signed with the current secret or with
``LIGHTCONE_ROOM_SECRET_PREVIOUS``; backends and the core mint with the current one only.

Everything here is pure: ``now`` (Unix seconds) is passed in.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from shared.errors import Unauthorized

ALGORITHM = "HS256"
AUDIENCE = "lightcone-room"

MIN_SECRET_BYTES = 32
"""A secret shorter than SHA-256's output is below RFC 7518 §3.2's minimum for HS256."""

MAX_TOKEN_CHARS = 4096
"""Longest token an edge reads; anything longer is refused before parsing. The longest room
(64), name (32) and session (64 characters), all outside the BMP (JSON-escaped as 12
characters each), give a token of about 2,800 characters."""

MAX_TTL_S = 86_400
"""Longest lifetime :func:`mint` gives a token (a day): tokens cannot be revoked one by one,
only all at once by rotating the secret, so they should be short-lived."""

DEFAULT_TTL_S = 3600

_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
"""Three base64url parts: anything else (including non-ASCII text) is refused unparsed."""


@dataclass(frozen=True, slots=True)
class Claims:
    """What a valid token admits: this name (and session) into this room until ``expires_at``."""

    room: str
    name: str
    session: str | None
    expires_at: int


def check_secret(secret: str, what: str = "the room secret") -> None:
    """Raises ValueError, naming ``what``, for a secret too short."""
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(
            f"{what} must be at least {MIN_SECRET_BYTES} bytes, for example "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'."
        )


def mint(
    secret: str,
    *,
    room: str,
    name: str,
    session: str | None = None,
    ttl_s: int = DEFAULT_TTL_S,
    now: float | None = None,
) -> str:
    """A token admitting ``name`` (with ``session``) into ``room`` for ``ttl_s`` seconds.

    ``now`` is the current Unix time (default: the clock). Raises ValueError for a ``ttl_s``
    outside 1..:data:`MAX_TTL_S` or a secret shorter than :data:`MIN_SECRET_BYTES`.
    """
    check_secret(secret)
    if not 1 <= ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl_s must be 1..{MAX_TTL_S}, got {ttl_s}")
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {"aud": AUDIENCE, "room": room, "name": name, "exp": issued + ttl_s}
    if session is not None:
        claims["session"] = session
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(token: str, secrets: Sequence[str], *, now: float) -> Claims:
    """The claims of ``token`` if one of ``secrets`` signed it and it has not expired.

    Raises:
        Unauthorized: ``bad_token`` (malformed, wrong signature, wrong audience, claims of
            the wrong type), ``token_expired``.
    """
    if len(token) > MAX_TOKEN_CHARS or not _SHAPE.fullmatch(token):
        raise Unauthorized("the room token is not a token", code="bad_token")
    for secret in secrets:
        try:
            raw = jwt.decode(
                token,
                secret,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                options={"verify_exp": False, "require": ["aud", "exp"]},
            )
        except jwt.InvalidSignatureError:
            continue  # perhaps the other secret (rotation)
        except jwt.InvalidTokenError as exc:
            # Only the kind of fault: PyJWT's messages may quote the token's own (outside)
            # text, such as a header's "crit" entries, which must not reach an encoder.
            raise Unauthorized(f"bad room token: {type(exc).__name__}", code="bad_token") from None
        claims = _claims(raw)
        if now >= claims.expires_at:
            raise Unauthorized("the room token has expired", code="token_expired")
        return claims
    raise Unauthorized("the room token's signature does not match", code="bad_token")


def _claims(raw: dict[str, Any]) -> Claims:
    room, name, session, exp = raw.get("room"), raw.get("name"), raw.get("session"), raw["exp"]
    if (
        not isinstance(room, str)
        or not isinstance(name, str)
        or not (session is None or isinstance(session, str))
        or not isinstance(exp, int)
        or isinstance(exp, bool)
    ):
        raise Unauthorized(
            "bad room token: room and name must be strings, session a string or absent, "
            "exp an integer",
            code="bad_token",
        )
    return Claims(room, name, session, exp)


def check_join(
    token: str | None,
    secrets: Sequence[str],
    *,
    room: str,
    name: str,
    session: str | None,
    now: float,
) -> Claims:
    """Whether a join of ``room`` as ``name`` with ``session`` may go ahead.

    Raises:
        Unauthorized: ``unauthorized`` (no token), or as :func:`verify`, or ``bad_token``
            when the token was minted for another room, name or session.
    """
    if token is None:
        raise Unauthorized("this room needs a token: join with 'token'", code="unauthorized")
    claims = verify(token, secrets, now=now)
    for what, wanted, given in (
        ("room", claims.room, room),
        ("name", claims.name, name),
        ("session", claims.session, session),
    ):
        if wanted != given:
            raise Unauthorized(f"the room token is for another {what}", code="bad_token")
    return claims
