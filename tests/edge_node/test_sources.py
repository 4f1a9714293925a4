"""Sources: one client is one source at every edge, by address (IPv6 by /48), and a proxy
header counts only when the edge is told to trust it."""

from __future__ import annotations

from starlette.requests import Request

from edge_node.suggest.sources import SOURCE_BYTES, Sources


def request(peer: str | None, **headers: str) -> Request:
    raw = [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]
    client = (peer, 50000) if peer is not None else None
    return Request({"type": "http", "headers": raw, "client": client})


def test_the_same_address_is_the_same_source_at_every_edge_with_the_link_token() -> None:
    one, other = Sources("link-token"), Sources("link-token")
    assert one.of(request("198.51.100.7")) == other.of(request("198.51.100.7"))
    assert len(one.of(request("198.51.100.7"))) == 2 * SOURCE_BYTES
    assert one.of(request("198.51.100.7")) != one.of(request("198.51.100.8"))
    assert Sources("another-token").hash("198.51.100.7") != one.hash("198.51.100.7")
    assert "198.51.100.7" not in one.hash("198.51.100.7")


def test_an_ipv6_network_is_one_source_and_mapped_ipv4_is_its_ipv4() -> None:
    sources = Sources("t")
    assert sources.hash("2001:db8:1:2::1") == sources.hash("2001:db8:1:2:ffff:ffff:ffff:ffff")
    # One customer site (a /48, usually delegated whole) is one source: its /64s too.
    assert sources.hash("2001:db8:1:2::1") == sources.hash("2001:db8:1:3::1")
    assert sources.hash("2001:db8:1:2::1") != sources.hash("2001:db8:2:2::1")
    assert sources.hash("::ffff:192.0.2.1") == sources.hash("192.0.2.1")


def test_a_proxy_header_counts_only_when_trusted() -> None:
    forged = request("127.0.0.1", fly_client_ip="203.0.113.9")
    assert Sources("t").of(forged) == Sources("t").hash("127.0.0.1")
    trusting = Sources("t", "Fly-Client-IP")
    assert trusting.of(forged) == trusting.hash("203.0.113.9")
    assert trusting.of(request("127.0.0.1")) == trusting.hash("127.0.0.1")  # header absent


def test_no_address_is_no_source() -> None:
    assert Sources("t").of(request(None)) == ""
