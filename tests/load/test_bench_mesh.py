"""load.bench_mesh's arithmetic, without starting the demo (the bench itself is no test), and
``lightcone bench``'s mesh phase: its flag, its estimate and its part of the report."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from load.bench import MESH_START_S, MESH_SWITCH_S, mesh_estimate_s
from load.bench_mesh import Pair, Recorder, figures, own_sum_ms, report
from load.plan import Plan, add_arguments, plan_from
from load.report import build
from load.report.data import Bench
from load.report.markdown import markdown
from load.report.tables import mesh_table
from shared.protocol import Moves, Position


def test_the_own_sum_of_sydney_singapore_is_the_issue_s_65_ms() -> None:
    assert own_sum_ms("syd", "sin", 5.0) == 65.0


def test_samples_count_only_in_their_phase_and_both_directions_pool() -> None:
    recorder = Recorder(["syd", "sin"])
    recorder.moved(0, 1)  # between phases: never counted
    recorder.phase = "mesh"
    recorder.moved(0, 2)
    recorder.moved(1, 3)
    recorder.shown(1, Moves("r", [Position("a", 1, 0), Position("a", 2, 0)]))
    recorder.shown(0, Moves("r", [Position("b", 3, 1)]))
    recorder.shown(1, Moves("r", [Position("b", 3, 1)]))  # its own move: not a delivery
    recorder.phase = "core"
    recorder.shown(1, Moves("r", [Position("a", 2, 0)]))  # sent while measuring the mesh
    (pair,) = figures(["syd", "sin"], recorder, 5.0)
    assert pair.samples == {"mesh": 2, "core": 0}
    assert pair.target_ms == 75.0 and pair.fiber_one_way_ms < pair.direct_one_way_ms
    assert "| Sydney ↔ Singapore |" in report([pair])


# --- the mesh phase of ``lightcone bench``: its flag and its part of the report -------------


def plan(*args: str) -> Plan:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return plan_from(parser.parse_args(list(args)))


def test_the_bench_runs_the_mesh_phase_unless_quick_or_told_not_to() -> None:
    assert plan().mesh == "on" and plan().mesh_phases == 6  # a mesh and a core part per repeat
    assert plan("--quick").mesh == "off" and plan("--quick").mesh_phases == 0
    assert plan("--quick", "--mesh").mesh == "on"
    assert plan("--no-mesh").mesh == "off"
    only = plan("--mesh", "only", "--repeats", "1")
    assert only.scenarios == () and only.mesh_phases == 2
    # the estimate at the start counts the phase: its own demo, each part and its switch
    assert mesh_estimate_s(plan("--quick")) == 0
    assert mesh_estimate_s(only) == MESH_START_S + 2 * (8 + MESH_SWITCH_S)


@pytest.mark.parametrize(
    "args",
    [
        ["--mesh", "sometimes"],
        ["--repeats", "11"],  # more rounds than the mesh phase takes
        ["--mesh", "only", "--edges", "syd"],
    ],
)
def test_bad_mesh_choices_are_refused(args: list[str]) -> None:
    with pytest.raises((ValueError, SystemExit)):
        plan(*args)


def test_many_repeats_without_the_mesh_phase_are_fine() -> None:
    assert plan("--repeats", "11", "--no-mesh").repeats == 11


def mesh_results(pairs: list[Pair]) -> dict[str, Any]:
    """results.json of ``lightcone bench --mesh only`` (what the report reads of it)."""
    return {
        "command": ["lightcone", "bench", "--mesh", "only"],
        "environment": {"date_utc": "2026-11-30 12:00"},
        "wall_s": 60.0,
        "topology": {},
        "runs": [],
        "mesh": {
            "core": "iad",
            "edges": ["syd", "sin"],
            "seconds": 8,
            "rounds": 2,
            "hz": 20.0,
            "tick_ms": 25,
            "margin_ms": 10.0,
            "pairs": [asdict(p) for p in pairs],
        },
    }


def test_the_report_carries_the_mesh_table_and_plot(tmp_path: Path) -> None:
    met = Pair("syd", "sin", 31.5, 47.5, 65.0, {"mesh": 600, "core": 610})
    met.p50_ms, met.p99_ms = {"mesh": 67.6, "core": 232.9}, {"mesh": 83.3, "core": 247.4}
    missed = Pair("lhr", "iad", 29.6, 39.0, 56.5, {"mesh": 5, "core": 0})
    missed.p50_ms, missed.p99_ms = {"mesh": 80.0}, {"mesh": 90.0}
    (tmp_path / "results.json").write_text(json.dumps(mesh_results([met, missed])))

    lines = build(tmp_path)

    report = (tmp_path / "report.md").read_text()
    assert "## Tolerant cursors between edges: the mesh against the core's relay" in report
    assert (
        "| Sydney ↔ Singapore | 31.5 | 47.5 | 65.0 | 67.6 / 83.3 (600) | 232.9 / 247.4 (610) "
        "| yes |" in report
    )
    assert "| London ↔ Ashburn | 29.6 | 39.0 | 56.5 | 80.0 / 90.0 (5) | — | no |" in report
    assert "lightcone bench --mesh only" in report
    assert "![mesh_vs_core.png](plots/mesh_vs_core.png)" in report
    assert (tmp_path / "plots" / "mesh_vs_core.png").read_bytes()[:4] == b"\x89PNG"
    assert [line.split()[-1] for line in lines] == ["met", "MISSED"]
    assert "core relay 232.9" in lines[0] and "core relay —" in lines[1]


def test_a_mesh_phase_that_did_not_run_says_why(tmp_path: Path) -> None:
    results = mesh_results([])
    results["mesh"] = {"skipped": "the mesh needs at least two edge regions"}
    (tmp_path / "results.json").write_text(json.dumps(results))
    bench = Bench(tmp_path)
    assert mesh_table(bench) == []
    assert "Not measured: the mesh needs at least two edge regions." in markdown(bench, [])
