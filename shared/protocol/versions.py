"""Protocol versions: what this build speaks, what it still talks, and the client
subprotocols that name them (docs/protocol.md, "Versions and compatibility")."""

from __future__ import annotations

import re
from collections.abc import Iterable

from shared.errors import ProtocolError

PROTOCOL_VERSION = 1
"""The wire protocol this build speaks: sent in :class:`Hello` and in the client subprotocol.
Bumped by a change an older peer cannot ignore (docs/protocol.md, "Versions and
compatibility")."""

MIN_PROTOCOL_VERSION = 1
"""The oldest protocol version this build still talks (with edges and with clients)."""


def subprotocol(codec: str, version: int = PROTOCOL_VERSION) -> str:
    """The client websocket subprotocol of ``codec`` (``msgpack``/``json``) at ``version``."""
    return f"lightcone.{codec}.v{version}"


SUBPROTOCOL_MSGPACK = subprotocol("msgpack")
SUBPROTOCOL_JSON = subprotocol("json")
LEGACY_SUBPROTOCOLS = {"lightcone.msgpack": "msgpack", "lightcone.json": "json"}
"""The names from before versions; they mean version 1."""


def talks(version: int) -> bool:
    """Whether this build talks protocol ``version``."""
    return MIN_PROTOCOL_VERSION <= version <= PROTOCOL_VERSION


def check_protocol(version: int) -> None:
    """Refuse a peer's protocol ``version`` this build does not talk.

    Raises:
        ProtocolError: ``unsupported_protocol``, naming the range this build talks.
    """
    if not talks(version):
        raise ProtocolError(
            f"protocol version {version} is not supported: this build talks versions "
            f"{MIN_PROTOCOL_VERSION} to {PROTOCOL_VERSION}",
            code="unsupported_protocol",
        )


def choose_subprotocol(offered: Iterable[str]) -> tuple[str | None, bool]:
    """The subprotocol to accept among a client's ``offered`` ones, and whether it is JSON.

    JSON wins when offered (a browser), then the highest version this build talks; the
    legacy names count as version 1. ``(None, False)``, msgpack without a subprotocol, when
    nothing offered is ours.
    """
    best: tuple[bool, int, str] | None = None
    for name in offered:
        match = _SUBPROTOCOL.fullmatch(name)
        if match:
            codec, version = match[1], int(match[2])
        elif name in LEGACY_SUBPROTOCOLS:
            codec, version = LEGACY_SUBPROTOCOLS[name], 1
        else:
            continue
        if talks(version):
            candidate = (codec == "json", version, name)
            best = candidate if best is None else max(best, candidate)
    return (best[2], best[0]) if best else (None, False)


_SUBPROTOCOL = re.compile(r"lightcone\.(msgpack|json)\.v([1-9][0-9]{0,5})")
