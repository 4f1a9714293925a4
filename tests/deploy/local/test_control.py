"""The demo control API in process: Host, capability and Origin checks, CORS for the demo's
own pages only; and the status file's mode."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from deploy.local.control import DemoState, create_control_app
from deploy.local.cores import CoreNodes
from deploy.local.up import write_private

PAGE = "http://127.0.0.1:40001"  # an entry of the demo: a page it serves


def control() -> tuple[TestClient, DemoState]:
    state = DemoState(CoreNodes.elsewhere("http://127.0.0.1:40000"), "admin-token")
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


def test_core_nodes_are_listed_by_label() -> None:
    client, state = control()
    answer = client.get(f"{state.prefix}/core-nodes")
    assert answer.status_code == 200
    assert answer.json() == {
        "core_nodes": [
            {
                "kind": "core",
                "name": "core-1",
                "region": "",
                "url": "http://127.0.0.1:40000",
                "pid": None,
                "state": "running",
            }
        ]
    }


@pytest.mark.parametrize("verb", ["stop", "kill", "start"])
def test_core_node_actions_name_a_known_node_the_demo_runs(verb: str) -> None:
    client, state = control()
    unknown = client.post(f"{state.prefix}/core-nodes/core-9/{verb}")
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_core_node"
    assert "core-1" in unknown.json()["message"]
    elsewhere = client.post(f"{state.prefix}/core-nodes/core-1/{verb}")
    assert elsewhere.status_code == 409 and elsewhere.json()["error"] == "core_node_external"
    assert client.post(f"/core-nodes/core-1/{verb}").status_code == 404  # no capability


def test_a_core_node_that_does_not_answer_is_a_503() -> None:
    """The admin calls go to a running core node; one that does not answer is named."""
    client, state = control()
    answer = client.get(f"{state.prefix}/flags")
    assert answer.status_code == 503 and answer.json()["error"] == "core_node_unavailable"
    state.cores.nodes["core-1"].state = "stopped"
    answer = client.get(f"{state.prefix}/flags")
    assert answer.status_code == 503 and "no core node is running" in answer.json()["message"]
