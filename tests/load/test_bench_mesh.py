"""load.bench_mesh's arithmetic, without starting the demo (the bench itself is no test)."""

from __future__ import annotations

from load.bench_mesh import Recorder, figures, own_sum_ms, report
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
