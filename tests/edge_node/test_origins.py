"""Origin and Host rules, pure."""

from __future__ import annotations

import pytest

from edge_node.origins import OriginPolicy, host_name, is_loopback_name, loopback_origins

DEFAULT = OriginPolicy.parse("loopback")


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        (None, "edge.example", True),  # not a browser page
        ("https://edge.example", "edge.example", True),  # same origin
        ("http://127.0.0.1:8080", "127.0.0.1:8080", True),
        ("http://127.0.0.1:5173", "edge.example", True),  # a page on loopback
        ("http://localhost:3000", "edge.example", True),
        ("http://[::1]:3000", "edge.example", True),
        ("http://app.localhost", "edge.example", True),
        ("https://evil.example", "edge.example", False),
        ("https://evil.example", "evil.example.edge.example", False),
        ("https://edge.example.evil.example", "edge.example", False),
        ("http://127.0.0.1.evil.example", "edge.example", False),
        ("null", "edge.example", False),  # a sandboxed frame or a file: page
        ("", "edge.example", False),
        ("https://edge.example:444", "edge.example", False),  # another port is another origin
        ("https://evil.example", None, False),
    ],
)
def test_the_default_allows_same_origin_and_loopback_pages(
    origin: str | None, host: str | None, allowed: bool
) -> None:
    assert DEFAULT.allows(origin, host) is allowed


def test_a_list_of_origins_and_star() -> None:
    listed = OriginPolicy.parse(" https://App.Example.com , https://b.example:8443 ")
    assert listed.allows("https://app.example.com", "edge.example")
    assert listed.allows("https://b.example:8443", "edge.example")
    assert not listed.allows("https://b.example", "edge.example")
    assert not listed.allows("http://127.0.0.1:3000", "edge.example")  # loopback not listed
    assert listed.allows("https://edge.example", "edge.example")  # same origin always
    anything = OriginPolicy.parse("*")
    assert anything.allows("https://evil.example", "edge.example")


@pytest.mark.parametrize("bad", ["evil.example", "ftp://x.example", "https://x.example/path", "//"])
def test_an_entry_that_is_not_an_origin_is_a_configuration_error(bad: str) -> None:
    with pytest.raises(ValueError, match="LIGHTCONE_X"):
        OriginPolicy.parse(bad, "LIGHTCONE_X")


def test_host_names_and_loopback() -> None:
    assert host_name("127.0.0.1:8080") == "127.0.0.1"
    assert host_name("[::1]:8080") == "::1"
    assert host_name("LocalHost") == "localhost"
    assert host_name("::1") == "::1"
    for name in ("localhost", "127.0.0.1", "127.9.9.9", "::1", "x.localhost"):
        assert is_loopback_name(name), name
    for name in ("evil.example", "localhost.evil.example", "10.0.0.1", "0.0.0.0", "", "::"):
        assert not is_loopback_name(name), name
    assert loopback_origins([80]) == {
        "http://127.0.0.1:80",
        "http://localhost:80",
        "http://[::1]:80",
    }
