"""A process started as the image starts it serves IPv4 (Fly's proxy) and IPv6 (6PN) on one port."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from tests.deploy.conftest import Running, start_edge
from tests.deploy.image import runtime_env

pytestmark = pytest.mark.e2e


def _ipv6_loopback() -> str | None:
    """Why IPv6 loopback cannot be used here, or None if it can."""
    if not socket.has_ipv6:
        return "Python was built without IPv6"
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError as exc:
        return f"this machine has no IPv6 loopback (::1): {exc}"
    return None


def _answers_on_both(port: int) -> None:
    """``/healthz`` answers 200 over IPv4 and over IPv6 at ``port``."""
    with httpx.Client() as client:
        for host in ("127.0.0.1", "[::1]"):
            response = client.get(f"http://{host}:{port}/healthz")
            assert response.status_code == 200, (host, response.status_code)


@pytest.mark.skipif(_ipv6_loopback() is not None, reason=str(_ipv6_loopback()))
def test_core_serves_ipv4_and_ipv6_on_one_port(image_core: Running) -> None:
    """The core, bound as the image binds it, answers on 127.0.0.1 and ::1 at the same port."""
    assert runtime_env("core")["LIGHTCONE_HOST"] in ("", "::")
    assert image_core.node.wait_for(r"listening on http://\[::\]:", 1)
    _answers_on_both(image_core.port)


@pytest.mark.skipif(_ipv6_loopback() is not None, reason=str(_ipv6_loopback()))
def test_edge_serves_ipv4_and_ipv6_on_one_port(tmp_path: Path, image_core: Running) -> None:
    """The edge too; it reaches the core over IPv6, as an edge reaches <core>.internal on 6PN."""
    core_v6 = f"http://[::1]:{image_core.port}"
    edge = start_edge(tmp_path, image_core, "syd", LIGHTCONE_CORE_URL=core_v6)
    try:
        _answers_on_both(edge.port)
        with httpx.Client() as client:
            answer = client.get(f"http://[::1]:{edge.port}/suggest", params={"q": "syd"}).json()
        assert answer["region"] == "syd"
    finally:
        edge.node.stop()
    assert not edge.node.errors(), edge.node.errors()
