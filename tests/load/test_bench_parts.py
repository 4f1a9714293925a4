"""The pure parts of ``lightcone bench``: its matrix, the flags of a run, what it reads from an
edge's ``/metrics``, and how the report files a cut run's answers and their errors."""

from __future__ import annotations

import argparse
import csv
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from load.plan import MODES, Scenario, add_arguments, plan_from
from load.report.data import Bench, error_code
from load.topology import flag_bodies, read_counts


def plan_of(*args: str) -> list[str]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return [s.name for s in plan_from(parser.parse_args(list(args))).scenarios]


def test_full_matrix_has_every_level_rung_and_cut() -> None:
    names = plan_of()
    for level in MODES:
        for target in ("edge", "central", "pop"):
            assert f"suggest-{target}-{level}" in names
        assert f"suggest-edge-{level}-cut" in names
    # cursors have tolerant and strict only; the device sits in front of the edge
    assert [n for n in names if n.startswith("cursors-")] == [
        "cursors-edge-tolerant",
        "cursors-central-tolerant",
        "cursors-edge-strict",
        "cursors-central-strict",
    ]
    assert [n for n in names if n.startswith("device-")] == [
        "device-edge-tolerant",
        "device-edge-strict",
    ]
    # a PoP caches tolerant and bounded answers only: no cut runs through it at other levels
    assert [n for n in names if n.startswith("suggest-pop") and n.endswith("-cut")] == [
        "suggest-pop-tolerant-cut",
        "suggest-pop-bounded-cut",
    ]


def test_quick_keeps_every_level_at_the_edge_and_one_cut() -> None:
    names = plan_of("--quick")
    assert [n for n in names if n.startswith("suggest-edge-") and not n.endswith("cut")] == [
        f"suggest-edge-{level}" for level in MODES
    ]
    assert [n for n in names if n.endswith("-cut")] == ["suggest-edge-bounded-cut"]
    assert "suggest-central-strict" not in names and "device-edge-strict" not in names
    # explicit choices still win
    assert plan_of("--quick", "--modes", "strict", "--features", "suggest", "--cuts", "none") == [
        "suggest-edge-strict",
        "suggest-central-strict",
        "suggest-pop-strict",
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["--modes", "eventual"],
        ["--targets", "moon"],
        ["--cuts", "tolerant,sometimes"],
        ["--features", "cursors", "--targets", "pop"],
        ["--search-share", "1.5"],
    ],
)
def test_bad_choices_are_refused(args: list[str]) -> None:
    with pytest.raises(ValueError):
        plan_of(*args)


def test_flags_of_a_run() -> None:
    assert flag_bodies("suggest", "bounded") == {
        "suggest": {"level": "bounded"},
        "cursors": {"level": "tolerant"},
    }
    assert flag_bodies("device", "strict") == {
        "suggest": {"level": "strict"},
        "cursors": {"level": "strict"},
    }
    assert flag_bodies("cursors", "strict")["suggest"] == {"level": "strict"}


METRICS = """\
# HELP lightcone_request_seconds HTTP request latency
# TYPE lightcone_request_seconds histogram
lightcone_request_seconds_bucket{le="0.001",route="/suggest"} 3.0
lightcone_request_seconds_count{route="/suggest"} 7.0
lightcone_request_seconds_sum{route="/suggest"} 0.01
lightcone_request_seconds_count{route="/status"} 2.0
# HELP lightcone_ws_message_seconds Websocket request latency
# TYPE lightcone_ws_message_seconds histogram
lightcone_ws_message_seconds_count{type="suggest"} 5.0
lightcone_ws_message_seconds_count{type="join"} 1.0
# HELP lightcone_edge_core_round_trips_total Reads that waited for the core
# TYPE lightcone_edge_core_round_trips_total counter
lightcone_edge_core_round_trips_total{feature="suggest",level="strict"} 4.0
lightcone_edge_core_round_trips_total{feature="suggest",level="session"} 1.0
"""


def test_counts_read_from_an_edges_metrics() -> None:
    assert read_counts(METRICS) == {
        "http /suggest": 7.0,
        "ws suggest": 5.0,
        "round_trips": 5.0,
        "round_trips strict": 4.0,
        "round_trips session": 1.0,
    }


def test_no_round_trip_yet_is_zero_and_no_counter_is_unknown() -> None:
    declared = "\n".join(METRICS.splitlines()[:-2]) + "\n"
    assert read_counts(declared)["round_trips"] == 0.0
    assert "round_trips" not in read_counts(METRICS.split("# HELP lightcone_edge")[0])


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (
            "CatchResponseError: HTTP 503 core_unreachable: the core is gone",
            "HTTP 503 core_unreachable",
        ),
        ("ServerError: strict_timeout: no answer", "strict_timeout"),
        ("WrongMode: answered tolerant, expected strict", "WrongMode"),
        ("", "error"),
    ],
)
def test_error_codes(error: str, code: str) -> None:
    assert error_code(error) == code


def write_folder(out: Path, rows: list[tuple[float, str, float, int, str]]) -> None:
    """A bench folder of one cut run: the cut from 1 s to 3 s after the test started."""
    run_dir = out / "runs" / "01-suggest-edge-bounded-cut-r1"
    run_dir.mkdir(parents=True)
    with gzip.open(run_dir / "raw.csv.gz", "wt", newline="") as f:
        w = csv.writer(f)
        w.writerow(("t_s", "kind", "city", "peer", "ms", "ok", "error", "rung"))
        for t, city, ms, ok, error in rows:
            w.writerow((t, "suggest_http", city, city, ms, ok, error, "edge" if ok else ""))
    entry: dict[str, Any] = {"user_city": "Sydney", "rtt_ms": 5.0, "fiber_floor_ms": 0.0}
    results = {
        "topology": {
            "core_region": "iad",
            "nodes": [{"kind": "edge", "region": "syd", "link_rtt_ms": 200.0}],
            "entries": [
                {**entry, "user_region": "syd", "target_region": "syd", "kind": "edge"},
                {**entry, "user_region": "syd", "target_region": "iad", "kind": "central"},
                {**entry, "user_region": "iad", "target_region": "iad", "kind": "edge"},
                {**entry, "user_region": "iad", "target_region": "iad", "kind": "central"},
            ],
        },
        "runs": [
            {
                **vars(Scenario("suggest", "edge", "bounded", cut=True)),
                "n": 1,
                "repeat": 1,
                "dir": str(run_dir.relative_to(out)),
                "counters": {"test_started_at": 100.0},
                "cut": {
                    "region": "syd",
                    "cities": ["syd"],
                    "cut_at": 101.0,
                    "healed_at": 103.0,
                    "relink_s": 1.5,
                },
            }
        ],
    }
    (out / "results.json").write_text(json.dumps(results))


def test_a_cut_runs_answers_are_filed_by_when_they_were_sent(tmp_path: Path) -> None:
    write_folder(
        tmp_path,
        [
            (0.5, "syd", 5.0, 1, ""),  # before
            (1.1, "syd", 200.0, 1, ""),  # sent at 0.9 s: before the cut, answered during it
            (1.5, "syd", 5.0, 1, ""),  # during
            (2.5, "syd", 50.0, 0, "CatchResponseError: HTTP 503 core_unreachable: cut off"),
            (2.6, "iad", 5.0, 1, ""),  # during, in a city the cut does not touch
            (3.5, "syd", 5.0, 1, ""),  # after
        ],
    )
    cut = Bench(tmp_path).cuts[("edge", "bounded")]
    assert cut.region == "syd" and cut.seconds == [2.0] and cut.relink_s == [1.5]
    assert len(cut.parts[("before", True)].ok) == 2
    during = cut.parts[("during", True)]
    assert (len(during.ok), during.failed) == (1, 1)
    assert dict(during.errors) == {"HTTP 503 core_unreachable": 1}
    assert len(cut.parts[("during", False)].ok) == 1
    assert len(cut.parts[("after", True)].ok) == 1
