"""The demo control API in process: Host, capability and Origin checks, CORS for the demo's
own pages only; and the status file's mode."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from deploy.local.control import DemoState, create_control_app
from deploy.local.up import write_private

PAGE = "http://127.0.0.1:40001"  # an entry of the demo: a page it serves


def control() -> tuple[TestClient, DemoState]:
    state = DemoState("http://127.0.0.1:1", "admin-token")
    state.topology = {
        "nodes": [{"kind": "core", "url": "http://127.0.0.1:40000"}]
        + [{"kind": "edge", "url": "http://127.0.0.1:40002"}],
        "entries": [{"url": PAGE}],
    }
    return TestClient(create_control_app(state), base_url="http://127.0.0.1:39999"), state


def test_the_capability_is_needed() -> None:
    client, state = control()
    assert client.get(f"{state.prefix}/topology").status_code == 200
    for path in ("/topology", "/c/guess/topology", f"{state.prefix}x/topology", "/c/", "/"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert answer.json()["error"] == "not_found"
    assert client.post("/partition/syd").status_code == 404


@pytest.mark.parametrize("host", ["evil.example", "evil.example:39999", "127.0.0.1.nip.example"])
def test_a_rebound_host_is_refused(host: str) -> None:
    """DNS rebinding: the right address and capability, but a name that is not loopback."""
    client, state = control()
    answer = client.get(f"{state.prefix}/topology", headers={"Host": host})
    assert answer.status_code == 403 and answer.json()["error"] == "bad_host"


@pytest.mark.parametrize("host", ["127.0.0.1:39999", "localhost:39999", "[::1]:39999"])
def test_loopback_hosts_pass(host: str) -> None:
    client, state = control()
    assert client.get(f"{state.prefix}/topology", headers={"Host": host}).status_code == 200


def test_other_sites_are_refused_and_only_demo_pages_get_cors() -> None:
    client, state = control()
    evil = client.post(f"{state.prefix}/heal/syd", headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403 and evil.json()["error"] == "origin_not_allowed"
    other_port = client.get(f"{state.prefix}/topology", headers={"Origin": "http://127.0.0.1:1"})
    assert other_port.status_code == 403
    for origin in (PAGE, "http://localhost:40002"):
        ok = client.get(f"{state.prefix}/topology", headers={"Origin": origin})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == origin
    preflight = client.options(
        f"{state.prefix}/flags/suggest",
        headers={"Origin": PAGE, "Access-Control-Request-Method": "PUT"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == PAGE
    plain = client.get(f"{state.prefix}/topology")  # lightcone partition, curl: no Origin
    assert "access-control-allow-origin" not in plain.headers


def test_unknown_region_still_answers_404_behind_the_guard() -> None:
    client, state = control()
    answer = client.post(f"{state.prefix}/partition/xyz")
    assert answer.status_code == 404 and answer.json()["error"] == "unknown_region"


def test_the_status_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "demo" / "status.json"
    path.parent.mkdir()
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, '{"admin_token": "t"}\n')
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text() == '{"admin_token": "t"}\n'
    assert [p.name for p in path.parent.iterdir()] == ["status.json"]  # no temporary left
