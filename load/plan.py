"""What one ``lightcone bench`` run does: its options, scenarios and sizes (:class:`Plan`)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FEATURES = ("suggest", "cursors")
TARGETS = ("edge", "central")
MODES = ("tolerant", "strict")
DEFAULT_USERS = ("syd", "lhr", "sin", "iad")


@dataclass(frozen=True)
class Scenario:
    feature: str
    target: str
    mode: str

    @property
    def name(self) -> str:
        return f"{self.feature}-{self.target}-{self.mode}"


@dataclass(frozen=True)
class Plan:
    core: str
    edges: tuple[str, ...]
    users: tuple[str, ...]
    duration_s: int
    repeats: int
    suggest_users: int
    cursor_users: int
    move_hz: float
    room_size: int
    codec: str
    access_ms: float | None
    jitter: bool
    html: str
    scenarios: tuple[Scenario, ...]

    def order(self) -> list[tuple[int, Scenario]]:
        """(repeat, scenario) in run order: the scenario order reversed every other repeat."""
        runs = []
        for repeat in range(self.repeats):
            scenarios = self.scenarios if repeat % 2 == 0 else tuple(reversed(self.scenarios))
            runs += [(repeat, s) for s in scenarios]
        return runs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, help="report folder [a new folder under /tmp]")
    parser.add_argument("--quick", action="store_true", help="a smoke run of about 30 s")
    parser.add_argument("--core", default="iad", help="the core's region [iad]")
    parser.add_argument("--edges", default="iad,lhr,syd,sin", help="edge regions [iad,lhr,syd,sin]")
    parser.add_argument(
        "--users",
        default=",".join(DEFAULT_USERS),
        help="user cities as region codes [syd,lhr,sin,iad]",
    )
    parser.add_argument("--duration", type=int, help="seconds per locust run [8; quick 2]")
    parser.add_argument("--repeats", type=int, help="runs of each scenario [3; quick 1]")
    parser.add_argument(
        "--suggest-users", type=int, help="locust users in suggest runs, half HTTP [80; quick 16]"
    )
    parser.add_argument(
        "--cursor-users", type=int, help="locust users in cursor runs [16; quick 8]"
    )
    parser.add_argument("--move-hz", type=float, default=30.0, help="cursor moves per second [30]")
    parser.add_argument("--room-size", type=int, default=8, help="members per cursor room [8]")
    parser.add_argument("--codec", choices=("msgpack", "json"), default="msgpack")
    parser.add_argument("--access-ms", type=float, help="last-mile RTT of user entries [up's: 5]")
    parser.add_argument("--jitter", action="store_true", help="proxies add jitter toward P95")
    parser.add_argument(
        "--features", default=",".join(FEATURES), help="subset of suggest,cursors [both]"
    )
    parser.add_argument("--targets", default=",".join(TARGETS), help="subset of edge,central")
    parser.add_argument("--modes", default=",".join(MODES), help="subset of tolerant,strict")
    parser.add_argument(
        "--html",
        choices=("all", "first", "none"),
        default="all",
        help="locust HTML reports (~1 MB each): every run, first repeat only, or none [all]",
    )


def plan_from(args: argparse.Namespace) -> Plan:
    """The plan of ``args``; ``--quick`` changes the defaults, explicit values still win.

    Raises:
        ValueError: an option out of range or an unknown feature/target/mode/region.
    """
    quick = args.quick

    def pick(value: Any, full: Any, small: Any) -> Any:
        return value if value is not None else (small if quick else full)

    from deploy.local import geography

    edges, users = _codes(args.edges), _codes(args.users)
    for code in (args.core, *edges, *users):
        geography.region(code)
    plan = Plan(
        core=args.core,
        edges=edges,
        users=users or DEFAULT_USERS,
        duration_s=pick(args.duration, 8, 2),
        repeats=pick(args.repeats, 3, 1),
        suggest_users=pick(args.suggest_users, 80, 16),
        cursor_users=pick(args.cursor_users, 16, 8),
        move_hz=args.move_hz,
        room_size=args.room_size,
        codec=args.codec,
        access_ms=args.access_ms,
        jitter=args.jitter,
        html=args.html,
        scenarios=_scenarios(args),
    )
    if plan.duration_s < 1 or plan.repeats < 1:
        raise ValueError("--duration and --repeats must be at least 1")
    if plan.suggest_users < 2 or plan.cursor_users < 2 or plan.room_size < 2:
        raise ValueError("--suggest-users, --cursor-users and --room-size must be at least 2")
    return plan


def _scenarios(args: argparse.Namespace) -> tuple[Scenario, ...]:
    """The chosen subset of the matrix, edge and central of one mode next to each other."""
    chosen = {
        "feature": _codes(args.features),
        "target": _codes(args.targets),
        "mode": _codes(args.modes),
    }
    for kind, allowed in (("feature", FEATURES), ("target", TARGETS), ("mode", MODES)):
        bad = set(chosen[kind]) - set(allowed)
        if bad or not chosen[kind]:
            raise ValueError(f"--{kind}s: pick from {','.join(allowed)}")
    return tuple(
        Scenario(f, t, m)
        for f in FEATURES
        if f in chosen["feature"]
        for m in MODES
        if m in chosen["mode"]
        for t in TARGETS
        if t in chosen["target"]
    )


def _codes(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())
