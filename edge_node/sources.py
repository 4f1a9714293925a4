"""Who a search came from, as the core may count it: a salted hash of the client's address.

The core suggests a new term only once searches for it came from enough distinct sources
(``LIGHTCONE_MIN_SOURCES``), so one client cannot make any text a suggestion. The source is
the address the edge sees (the TCP peer), or the value of one proxy header when
``LIGHTCONE_TRUST_CLIENT_IP_HEADER`` names it (e.g. ``Fly-Client-IP``, which Fly's proxy
sets and clients cannot forge). Trust a header only behind a proxy that overwrites it.

- An IPv6 client counts by its /64 network (one host usually holds a whole /64); an IPv4
  address (also IPv4-mapped IPv6) by itself.
- The hash is HMAC-SHA256 keyed with a key derived from the link token, which every edge
  and the core share: the same client is the same source at every edge, and the address
  never leaves the edge. 16 bytes (32 hex characters) are kept.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

from starlette.requests import HTTPConnection

_KEY_LABEL = b"lightcone source key v1"
SOURCE_BYTES = 16


class Sources:
    def __init__(self, link_token: str, trusted_header: str = "") -> None:
        self._key = hmac.new(link_token.encode(), _KEY_LABEL, hashlib.sha256).digest()
        self._header = trusted_header.strip().lower()

    def of(self, conn: HTTPConnection) -> str:
        """The source of an HTTP request or websocket; empty if the address is unknown."""
        address = conn.headers.get(self._header, "") if self._header else ""
        if not address and conn.client is not None:
            address = conn.client.host
        return self.hash(address) if address else ""

    def hash(self, address: str) -> str:
        """The source of ``address`` (see the module docstring)."""
        digest = hmac.new(self._key, _network(address).encode(), hashlib.sha256).digest()
        return digest[:SOURCE_BYTES].hex()


def _network(address: str) -> str:
    """What one client holds: its IPv4 address, or the /64 of its IPv6 address; anything
    that is not an address (a header value) as it is."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
