"""``lightcone core-node`` without a running demo: one clear line, exit code 1 or 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy.local.cores import core_of
from deploy.local.postgres import free_port
from shared.cli import main


def test_no_status_file_says_there_is_no_running_demo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = tmp_path / "status.json"
    assert main(["core-node", "list", "--status-file", str(status)]) == 1
    assert "lightcone core-node: no running demo" in capsys.readouterr().out


def test_a_control_api_that_does_not_answer_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A status file left by a ``lightcone up`` that was killed: no traceback."""
    status = tmp_path / "status.json"
    status.write_text(json.dumps({"control_url": f"http://127.0.0.1:{free_port()}/c/x"}))
    for argv in (["core-node", "list"], ["core-node", "stop", "core-1"], ["partition", "syd"]):
        assert main([*argv, "--status-file", str(status)]) == 1
        assert "control API did not answer" in capsys.readouterr().out


def test_stop_and_start_need_a_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = tmp_path / "status.json"
    status.write_text(json.dumps({"control_url": "http://127.0.0.1:1/c/x"}))
    assert main(["core-node", "start", "--status-file", str(status)]) == 2
    assert "which core node? (e.g. core-1)" in capsys.readouterr().out


def test_an_edge_is_on_the_core_node_whose_url_its_status_names() -> None:
    edge = {"core_links": {"core-2": "http://127.0.0.1:2", "core-1": "http://127.0.0.1:1"}}
    assert core_of(edge, "http://127.0.0.1:1") == "core-1"
    assert core_of(edge, "http://127.0.0.1:3") is None
    assert core_of(edge, None) is None
    assert core_of({}, "http://127.0.0.1:1") is None
