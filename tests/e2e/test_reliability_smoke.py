"""``python -m load.reliability kill9``, tiny: the fault-injection benchmark still runs.

A smoke, not the benchmark: one SIGKILL of the core under a handful of writes, on the small
corpus with a fast link. It checks that the run reports its promises and lost nothing, and
that every process it started is gone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.nodes import SMALL_CORPUS

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

RUN_TIMEOUT_S = 60


def test_kill9_smoke_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "kill9"
    args = [sys.executable, "-m", "load.reliability", "kill9", "--out", str(out)]
    args += ["--corpus", str(SMALL_CORPUS), "--kills", "1", "--warmup", "1", "--down", "1"]
    args += ["--between", "1", "--http-writers", "1", "--ws-writers", "1", "--progress-s", "1"]
    args += ["--fast-link"]
    process = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # on timeout, the run and every node it started go together
    )
    try:
        output, _ = process.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"kill9 smoke took over {RUN_TIMEOUT_S} s:\n{output}")
    assert process.returncode == 0, output
    assert "kill 1: SIGKILL core" in output
    assert "writes" in output  # the progress lines

    results = json.loads((out / "results.json").read_text())
    writes = results["figures"]["writes"]
    assert writes["ids_attempted"] > 0 and writes["acknowledged_committed"] > 0, writes
    assert writes["lost_committed"] == writes["lost_queued"] == 0, writes
    assert [p["held"] for p in results["promises"]] == [True, True], results["promises"]
    assert results["figures"]["kills"][0]["recovered_s"] is not None
    assert "| promise | held | figure |" in (out / "summary.md").read_text()

    logs = sorted(p.name for p in (out / "logs").glob("*.log"))
    assert logs == ["core-2.log", "core.log", "edge-lhr.log", "edge-syd.log"]
    for log in (out / "logs").glob("*.log"):
        pid_lines = [line for line in log.read_text().splitlines() if "Started server" in line]
        for line in pid_lines:
            pid = int(line.rsplit("[", 1)[1].split("]", 1)[0])
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
