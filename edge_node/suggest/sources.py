"""Who a search came from, as the core may count it: a salted hash of the client's address.

The core suggests a new term only once searches for it came from enough distinct sources
(``LIGHTCONE_MIN_SOURCES``), so one client cannot make any text a suggestion. The source is
the address the edge sees (the TCP peer), or the value of one proxy header when
``LIGHTCONE_TRUST_CLIENT_IP_HEADER`` names it (e.g. ``Fly-Client-IP``, which Fly's proxy
sets and clients cannot forge). Trust a header only behind a proxy that overwrites it.

- The client is the one the connection budgets count (:func:`shared.limits.client_address`):
  an IPv4 address (also IPv4-mapped IPv6) by itself; a trusted header's last entry, if it is
  an address; but an IPv6 client by its /48 (:data:`SOURCE_IPV6_PREFIX`), not its /64.
- The hash is HMAC-SHA256 keyed with a key derived from the link token, which every edge
  and the core share: the same client is the same source at every edge, and the address
  never leaves the edge. 16 bytes (32 hex characters) are kept.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

from starlette.requests import HTTPConnection

from shared.limits import client_address, client_key

_KEY_LABEL = b"lightcone source key v1"
SOURCE_BYTES = 16


class Sources:
    def __init__(self, link_token: str, trusted_header: str | None = None) -> None:
        self._key = hmac.new(link_token.encode(), _KEY_LABEL, hashlib.sha256).digest()
        self._header = trusted_header

    def of(self, conn: HTTPConnection) -> str:
        """The source of an HTTP request or websocket; empty if the address is unknown."""
        peer = conn.client.host if conn.client is not None else None
        address = client_address(peer, conn.scope.get("headers", ()), self._header)
        return self._hash_key(address) if address else ""

    def hash(self, address: str) -> str:
        """The source of ``address`` (see the module docstring)."""
        return self._hash_key(client_key(address))

    def _hash_key(self, key: str) -> str:
        digest = hmac.new(self._key, _site(key).encode(), hashlib.sha256).digest()
        return digest[:SOURCE_BYTES].hex()


SOURCE_IPV6_PREFIX = 48
"""An IPv6 source is a /48, not the /64 the connection budgets count: one customer site is
usually delegated a /56 or a /48 (256 to 65,536 /64s), and one site must count as one source
of a new term."""


def _site(key: str) -> str:
    """What one customer holds: a client key (IPv6 /64) widened to its /48."""
    if ":" not in key:
        return key
    try:
        network = ipaddress.IPv6Network(key, strict=False)
    except ValueError:
        return key
    return str(network.supernet(new_prefix=SOURCE_IPV6_PREFIX))
