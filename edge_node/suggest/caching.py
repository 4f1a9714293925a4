"""HTTP caching of ``GET /suggest`` answers for a PoP or browser cache in front of the edge.

Pure: every function takes what it needs (the answer's level, how long it may still be served,
its version and epoch, the query) and returns header values; the route only attaches them and
answers ``304`` when :func:`matches` says so.

Each answer carries:

* ``ETag``: **weak** (``W/"..."``), made of the epoch, version, level, limit and query. Two
  answers with the same tag hold the same items, but not the same bytes: ``age_ms`` and
  ``stale`` in the body grow with time at one version, so a strong tag would be a lie.
  ``If-None-Match`` is compared weakly (RFC 9110 §13.1.2), as a PoP's revalidation needs.
* ``Cache-Control`` by the level that served the answer (:func:`cache_control`): tolerant is
  ``public`` with ``max-age``, ``stale-while-revalidate`` and ``stale-if-error`` (the edge's
  ``LIGHTCONE_HTTP_CACHE_*`` settings, seconds); bounded ``max-age`` no longer than what is left
  of its bound nor than the tolerant ``max-age``, and no stale extension; strict and session
  ``no-store``.
* ``Vary``: :data:`VARY`, the request headers that change the answer.

Caches count whole seconds (nginx stores ``now + max-age`` in seconds and serves an entry to
the end of that second), so a bounded ``max-age`` is one second shorter than what is left of
the bound, and 0 (not stored) when under two seconds are left.

Age: the body's ``age_ms`` is the data's age when the edge answered, and the response's
``Date`` is that moment (the PoP passes the edge's ``Date`` on, from its cache too). A reader
of a cached answer gets the data's true age as ``age_ms + (now - Date)`` (:func:`true_age_ms`),
exact to the second for an answer the cache fetched whole and an upper bound after the cache
revalidated it with a ``304`` (the entry keeps its first ``Date``). The edge sends no ``Age``:
nginx 1.22 neither adds nor updates one, so a stored ``Age`` would only grow stale.
"""

from __future__ import annotations

import email.utils
import hashlib
from dataclasses import dataclass

TOLERANT, BOUNDED = "tolerant", "bounded"

VARY = "Lightcone-Bookmark"
"""Request headers that change a ``/suggest`` answer: the session bookmark (a header or the
``bookmark`` query parameter; the query string is in every cache's key already). No
``Accept-Encoding``: neither the edge nor the demo's PoP compresses answers."""

WHOLE_SECOND_MS = 1000
"""What a cache's whole-second clock may add to a ``max-age`` (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """How long a tolerant answer may be served by a cache, in seconds (the edge's
    ``LIGHTCONE_HTTP_CACHE_MAX_AGE_S``, ``..._SWR_S``, ``..._SIE_S``)."""

    max_age_s: int
    stale_while_revalidate_s: int
    stale_if_error_s: int


def cache_control(mode: str, fresh_ms: int | None, policy: CachePolicy) -> str:
    """The ``Cache-Control`` of an answer served at level ``mode``.

    ``fresh_ms``: how long the answer may still be served under its level (``None``: no bound,
    tolerant; what is left of the bound for bounded; 0 for strict and session).
    """
    if mode == TOLERANT and fresh_ms is None:
        if policy.max_age_s <= 0:
            return "no-cache"
        return (
            f"public, max-age={policy.max_age_s}, "
            f"stale-while-revalidate={policy.stale_while_revalidate_s}, "
            f"stale-if-error={policy.stale_if_error_s}"
        )
    if mode == BOUNDED and fresh_ms is not None:
        seconds = max(0, (fresh_ms - WHOLE_SECOND_MS) // 1000)
        if policy.max_age_s > 0:
            seconds = min(seconds, policy.max_age_s)
        return f"public, max-age={seconds}" if seconds > 0 else "no-cache"
    return "no-store"


def etag(epoch: str, version: int, mode: str, limit: int, q: str) -> str:
    """A weak entity tag naming the answer's items: the same for the same data and request."""
    digest = hashlib.blake2b(
        "\x00".join((epoch, mode, str(limit), q)).encode("utf-8", "surrogatepass"),
        digest_size=12,
    ).hexdigest()
    return f'W/"{version}-{digest}"'


def headers(
    *,
    mode: str,
    fresh_ms: int | None,
    epoch: str,
    version: int,
    q: str,
    limit: int,
    policy: CachePolicy,
) -> dict[str, str]:
    """``ETag``, ``Cache-Control`` and ``Vary`` of one answer (a 200 and its 304 alike)."""
    return {
        "ETag": etag(epoch, version, mode, limit, q),
        "Cache-Control": cache_control(mode, fresh_ms, policy),
        "Vary": VARY,
    }


def matches(if_none_match: str | None, tag: str) -> bool:
    """Whether ``If-None-Match`` names ``tag`` (weak comparison; ``*`` matches any)."""
    if not if_none_match:
        return False
    opaque = _opaque(tag)
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or _opaque(candidate) == opaque:
            return True
    return False


def _opaque(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag


def true_age_ms(age_ms: int, date: str, now: float) -> int:
    """The data's age now, for a reader holding an answer (perhaps from a cache): the body's
    ``age_ms`` plus the time since the response's ``Date`` (``now``: Unix seconds)."""
    answered = email.utils.parsedate_to_datetime(date).timestamp()
    return age_ms + max(0, round((now - answered) * 1000))
