"""Which web pages may talk to a node: ``Origin`` and ``Host`` rules, pure and small.

Browsers send ``Origin`` (the scheme, host and port of the page that made the request) on
every websocket handshake and every cross-origin or ``POST`` request, and a page cannot
forge it. A client that sends no ``Origin`` is not a browser page (a server, a CLI, a load
generator) and no page can act through it, so the rules below let it through.

``Host`` names the server the client thinks it is talking to. A page on ``evil.example`` that
re-points its own name at 127.0.0.1 (DNS rebinding) reaches a loopback server with
``Host: evil.example:PORT``: a loopback-only service refuses any ``Host`` that is not a
loopback name.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

ANY = "*"
LOOPBACK = "loopback"


def host_name(host_header: str) -> str:
    """The name in a ``Host`` header or an origin's netloc: no port, no IPv6 brackets,
    lower case (``[::1]:8080`` gives ``::1``)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback_name(name: str) -> bool:
    """``localhost`` (and its subdomains, which resolve to loopback by RFC 6761) or a
    loopback address (127.0.0.0/8, ::1)."""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, lower case, as a browser writes it in ``Origin``."""
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}".lower()


@dataclass(frozen=True, slots=True)
class OriginPolicy:
    """An allow-list of page origins, parsed from a setting such as
    ``"loopback,https://app.example.com"``.

    Always allowed: no ``Origin`` (not a browser page) and the same origin (``Origin``'s host
    and port are the request's ``Host``). Entries: ``*`` (any origin), ``loopback`` (a page
    served from ``localhost`` or a loopback address, any port), or an exact origin
    ``scheme://host[:port]``.
    """

    any: bool = False
    loopback: bool = False
    exact: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, setting: str, env: str = "origins") -> OriginPolicy:
        """Raises ValueError (naming ``env``) for an entry that is not an origin."""
        entries = [e.strip() for e in setting.split(",") if e.strip()]
        exact = set()
        for entry in entries:
            if entry in (ANY, LOOPBACK):
                continue
            parts = urlsplit(entry)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
                raise ValueError(
                    f"Config {env!r}: {entry!r} is not '*', 'loopback' or an origin such as "
                    "https://app.example.com"
                )
            exact.add(origin_of(entry))
        return cls(ANY in entries, LOOPBACK in entries, frozenset(exact))

    def allows(self, origin: str | None, host: str | None) -> bool:
        """Whether a request with these ``Origin`` and ``Host`` headers may go ahead."""
        if origin is None or self.any:
            return True
        origin = origin.strip().lower()
        netloc = urlsplit(origin).netloc
        if host is not None and netloc and netloc == host.strip().lower():
            return True  # the same origin (a page served by this node)
        if origin in self.exact:
            return True
        return self.loopback and bool(netloc) and is_loopback_name(host_name(netloc))


def loopback_origins(ports: Iterable[int]) -> frozenset[str]:
    """The origins of pages served on these loopback ports, by every name a browser may use."""
    return frozenset(
        f"http://{name}:{port}" for port in ports for name in ("127.0.0.1", "localhost", "[::1]")
    )
