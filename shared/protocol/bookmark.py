"""Session bookmarks: the point in the core's history a client's reads must not go back from.

A bookmark names one database (its epoch, :class:`~shared.protocol.link.Hello`) and a global
version in it. Every suggestion answer and every committed search ack carries one; a read
that presents it is answered with data that reflects every write up to that version
(read-your-writes, monotonic reads), on any edge. Clients keep it opaque: only these two
functions make and read it, so its form may change. It is ASCII letters, digits, ``-``,
``_`` and ``.``: safe as it is in a header and in a query string.
"""

from __future__ import annotations

import re

from shared.errors import BadRequest

MAX_BOOKMARK_CHARS = 100
"""Longest bookmark read (an epoch of up to 64 characters, a dot, a version of up to 19
digits); a longer one is refused without being parsed further."""

_INT_MAX = 2**63 - 1
_EPOCH = re.compile(r"[A-Za-z0-9_-]{0,64}")
_VERSION = re.compile(r"[0-9]{1,19}")


def make_bookmark(epoch: str, version: int) -> str:
    """The bookmark of global ``version`` of database ``epoch``.

    Raises:
        ValueError: an epoch the core does not make (it makes 32 hex digits), or a version
            out of 0..2⁶³-1: a programming error, never a client's.
    """
    if not _EPOCH.fullmatch(epoch) or not 0 <= version <= _INT_MAX:
        raise ValueError(f"no bookmark for epoch {epoch!r} and version {version}")
    return f"{epoch}.{version}"


def read_bookmark(text: str) -> tuple[str, int]:
    """The epoch and version of a bookmark :func:`make_bookmark` made.

    Raises:
        BadRequest: ``bad_bookmark`` for anything else.
    """
    epoch, dot, version = text[: MAX_BOOKMARK_CHARS + 1].rpartition(".")
    if (
        len(text) > MAX_BOOKMARK_CHARS
        or not dot
        or not _EPOCH.fullmatch(epoch)
        or not _VERSION.fullmatch(version)
        or int(version) > _INT_MAX
    ):
        raise BadRequest(
            "bookmark is not one this service made (pass back the bookmark of an answer as it is)",
            code="bad_bookmark",
        )
    return epoch, int(version)
