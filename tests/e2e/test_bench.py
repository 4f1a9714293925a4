"""``lightcone bench --quick``: the real path (topology, locust per scenario, report), small.

A smoke, not a benchmark: it checks that every scenario produced numbers and that the plots
are images, never what the numbers are.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
QUICK = [
    "suggest-edge-tolerant",
    "suggest-central-tolerant",
    "suggest-pop-tolerant",
    "suggest-edge-bounded",
    "suggest-edge-session",
    "suggest-edge-strict",
    "cursors-edge-tolerant",
    "cursors-central-tolerant",
    "cursors-edge-strict",
    "device-edge-tolerant",
    "suggest-edge-bounded-cut",
]
"""The quick matrix: every level at the edge, tolerant elsewhere, one cut run."""
NUMBERS = re.compile(r"\*\*\d+\.\d\*\* / \d+\.\d / \d+\.\d")


def run_bench(out: Path, timeout_s: float = 120) -> tuple[int, str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shared.cli",
            "bench",
            "--quick",
            "--edges",
            "iad,syd",
            "--users",
            "syd,iad",
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # on timeout, the whole group (lightcone up, locust) goes
    )
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
        pytest.fail(f"lightcone bench --quick took over {timeout_s:.0f} s:\n{output}")
    return process.returncode, output


def test_quick_bench_reports_every_scenario_with_plots(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    code, output = run_bench(out)
    assert code == 0, output
    results: dict[str, Any] = json.loads((out / "results.json").read_text())

    # every scenario ran; only the PoP may be skipped, where nginx is missing (not in CI)
    skipped = {name for s in results["skipped"] for name in s["scenarios"]}
    for s in results["skipped"]:
        assert s["why"] in output and "nginx" in s["why"], s
    ran = [r["scenario"] for r in results["runs"]]
    assert sorted(ran) == sorted(set(QUICK) - skipped), output

    # progress: one line per run, with elapsed / estimated total
    progress = [line for line in output.splitlines() if re.match(rf"\[\s*\d+/{len(ran)}\]", line)]
    assert len(progress) == len(ran), output
    assert all(re.search(r"\d+:\d\d / ~\d+:\d\d", line) for line in progress)

    # --quick leaves the mesh phase out (it starts a demo of its own)
    assert results["plan"]["mesh"] == "off" and results["mesh"] == {}
    assert "[mesh " not in output and "mesh phase" not in output

    assert "admin_token" not in results["topology"]
    assert "control_url" not in results["topology"]
    for run in results["runs"]:
        run_dir = out / run["dir"]
        assert (run_dir / "locust_stats.csv").exists()
        assert (run_dir / "locust.html").stat().st_size > 0
        assert (run_dir / "raw.csv.gz").exists()
        assert run["counters"]["wrong_mode"] == 0, run
        assert run["samples"] > 0, run
        assert run["edge_counts"]["http /suggest"] >= 0, run
        if run["cut"]:
            assert run["cut"]["cut_at"] < run["cut"]["healed_at"], run

    report = (out / "report.md").read_text()
    for city in ("Sydney", "Ashburn"):
        for heading in (
            "### Suggestions over HTTP",
            "### Suggestions over the websocket",
            "### Cursors: a move seen by another member in the same city",
        ):
            table = report.split(heading, 1)[1].split("\n\n", 2)[1]
            rows = [line for line in table.splitlines() if line.startswith(f"| {city}")]
            # p50 / p95 / p99 under tolerant at the edge and central, and strict at the edge
            assert len(rows) >= 2 and len(NUMBERS.findall(rows[0])) >= 2, table
            assert len(NUMBERS.findall(rows[1])) >= 1, table
    assert "## Rungs: who answered" in report
    assert "## Expectations" in report
    assert "## Load generator and machine" in report
    assert "lightcone bench --quick" in report
    if "suggest-pop-tolerant" in ran:
        assert "hit ratio" in report
    if "suggest-edge-bounded-cut" in ran:
        assert "## Availability during a link cut" in report
    if "device-edge-tolerant" in ran:
        assert "### The device rung" in report

    plots = sorted((out / "plots").glob("*.png"))
    assert {p.name for p in plots} >= {
        "by_city_suggest_http.png",
        "by_city_suggest_ws.png",
        "by_city_cursor_same.png",
        "cdf_suggest_http.png",
        "cdf_suggest_ws.png",
        "cdf_cursor_same.png",
    }
    for plot in plots:
        assert plot.read_bytes()[:8] == PNG_SIGNATURE, plot
        image = matplotlib.image.imread(plot)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100, plot
        assert f"plots/{plot.name}" in report

    # every process it started is gone
    for node in results["topology"]["nodes"]:
        with pytest.raises(ProcessLookupError):
            os.kill(node["pid"], 0)
