"""What one ``lightcone bench`` run does: its options, scenarios and sizes (:class:`Plan`).

The matrix (:func:`matrix`): every feature at every target and level it has, each a
:class:`Scenario`:

* ``suggest`` (people typing into a suggestion box, over HTTP and the websocket) at the
  ``edge`` (the user's nearest edge), ``central`` (the edge in the core's region) and ``pop``
  (HTTP only, through the nginx PoP in front of the nearest edge: ``lightcone up --pop``), at
  every level of :data:`MODES`;
* ``cursors`` at the edge and central, tolerant and strict (the levels cursors have);
* ``device`` (people typing, with the on-device pack answering one- and two-character
  prefixes: :class:`load.users.SuggestDeviceUser`) at the edge, tolerant and strict;
* the same ``suggest`` runs once more with one edge's link to the core cut for
  ``--cut-s`` seconds in the middle of the run (``--cuts``: which levels), at the edge and,
  for the levels a PoP may cache, through the PoP: availability during a partition.

``--quick`` keeps every level at the edge and tolerant elsewhere, and one cut run.

After the matrix, the **mesh** phase (``--mesh``, :mod:`load.bench_mesh`): tolerant cursors
between every pair of edge regions, over the edge mesh and over the core's relay, in a
``lightcone up`` of its own; rounds of a mesh and a core phase of ``--duration`` seconds
each, ``--repeats`` rounds. Left out by ``--quick`` (``--quick --mesh`` asks for it) and by
``--no-mesh``; ``--mesh only`` runs nothing else.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FEATURES = ("suggest", "cursors", "device")
TARGETS = ("edge", "central", "pop")
MODES = ("tolerant", "bounded", "session", "strict")
"""The levels, in the report's column order: weakest first (``shared.protocol.link.LEVELS``
lists them strongest first)."""
SUPPORTED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "suggest": (TARGETS, MODES),
    "cursors": (("edge", "central"), ("tolerant", "strict")),
    "device": (("edge",), ("tolerant", "strict")),
}
"""Each feature's (targets, levels): cursors have tolerant and strict only, and the PoP
caches HTTP answers (no websockets through it); the device rung sits in front of the edge."""
CUT_TARGETS = {"edge": MODES, "pop": ("tolerant", "bounded")}
"""Where cut runs go, and at which levels: through the PoP only at the levels it caches."""
DEFAULT_USERS = ("syd", "lhr", "sin", "iad")
SEARCH_SHARE = 0.2
"""Default share of typed queries that end in a search (``POST /search``) and a
read-your-writes read, in every suggestion run (HTTP users) so that levels compare on the
same read-mostly mix: about one write per 30 keystrokes."""
PACK_REFRESH_S = 5.0
"""How often a device user asks for a newer pack (a conditional ``GET``: a 304 while the
pack is current)."""
MESH = ("on", "off", "only")
"""``--mesh``: the mesh phase after the locust runs, none, or the mesh phase alone."""
ZIPF_S = 1.0
"""Default exponent of the query mix: the k-th most popular city name is typed with weight
``1 / k**s`` (a Zipf mix, so a PoP's cache has popular prefixes to keep)."""


@dataclass(frozen=True)
class Scenario:
    feature: str
    target: str
    mode: str
    cut: bool = False

    @property
    def name(self) -> str:
        return f"{self.feature}-{self.target}-{self.mode}" + ("-cut" if self.cut else "")


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
    cut_s: int = 6
    search_share: float = SEARCH_SHARE
    zipf_s: float = ZIPF_S
    mesh: str = "off"
    """One of :data:`MESH`."""

    def order(self) -> list[tuple[int, Scenario]]:
        """(repeat, scenario) in run order: the scenario order reversed every other repeat."""
        runs = []
        for repeat in range(self.repeats):
            scenarios = self.scenarios if repeat % 2 == 0 else tuple(reversed(self.scenarios))
            runs += [(repeat, s) for s in scenarios]
        return runs

    def run_s(self, scenario: Scenario) -> int:
        """A run's length: cut runs add the cut to the healthy part around it."""
        return self.duration_s + (self.cut_s if scenario.cut else 0)

    def without(self, drop: set[Scenario]) -> Plan:
        return dataclasses.replace(
            self, scenarios=tuple(s for s in self.scenarios if s not in drop)
        )

    @property
    def mesh_phases(self) -> int:
        """The mesh phase's measured parts (a mesh and a core part per repeat); 0 without it."""
        return 0 if self.mesh == "off" else 2 * self.repeats

    @property
    def needs_pop(self) -> bool:
        return any(s.target == "pop" for s in self.scenarios)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, help="report folder [a new folder under /tmp]")
    parser.add_argument("--quick", action="store_true", help="a smoke run of about a minute")
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
        "--suggest-users",
        type=int,
        help="locust users in suggest runs, half HTTP (all HTTP through the PoP) [80; quick 16]",
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
        "--features", default=",".join(FEATURES), help="subset of suggest,cursors,device [all]"
    )
    parser.add_argument(
        "--targets", default=",".join(TARGETS), help="subset of edge,central,pop [all]"
    )
    parser.add_argument(
        "--modes",
        "--levels",
        dest="modes",
        help="subset of tolerant,bounded,session,strict [all; quick: all at the edge, "
        "tolerant elsewhere]",
    )
    parser.add_argument(
        "--cuts",
        help="levels run once more with an edge's link cut mid-run, or 'none' [all; quick bounded]",
    )
    parser.add_argument(
        "--cut-s", type=int, help="seconds the link stays cut in a cut run [6; quick 1]"
    )
    parser.add_argument(
        "--search-share",
        type=float,
        default=SEARCH_SHARE,
        help=f"share of typed queries ending in a search, suggestion runs [{SEARCH_SHARE}]",
    )
    parser.add_argument(
        "--zipf-s",
        type=float,
        default=ZIPF_S,
        help=f"Zipf exponent of the query mix (0: uniform) [{ZIPF_S:g}]",
    )
    parser.add_argument(
        "--mesh",
        nargs="?",
        const="on",
        choices=MESH,
        help="after the locust runs, tolerant cursors per edge pair over the mesh and the "
        "core's relay (--repeats rounds of --duration s each way); 'only': that alone "
        "[on; quick off]",
    )
    parser.add_argument(
        "--no-mesh",
        dest="mesh",
        action="store_const",
        const="off",
        help="leave the mesh phase out (--mesh off)",
    )
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
    mesh = pick(args.mesh, "on", "off")
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
        scenarios=() if mesh == "only" else _scenarios(args),
        cut_s=pick(args.cut_s, 6, 1),
        search_share=args.search_share,
        zipf_s=args.zipf_s,
        mesh=mesh,
    )
    if plan.duration_s < 1 or plan.repeats < 1 or plan.cut_s < 1:
        raise ValueError("--duration, --repeats and --cut-s must be at least 1")
    if plan.suggest_users < 2 or plan.cursor_users < 2 or plan.room_size < 2:
        raise ValueError("--suggest-users, --cursor-users and --room-size must be at least 2")
    if not 0 <= plan.search_share <= 1 or plan.zipf_s < 0:
        raise ValueError("--search-share must be in 0..1 and --zipf-s at least 0")
    if mesh != "off":
        from load.bench_mesh import HZ, MAX_ROUNDS, MAX_SECONDS, check_sizes

        try:
            check_sizes(plan.duration_s, plan.repeats, HZ)
        except ValueError:
            raise ValueError(
                f"the mesh phase takes --repeats 1..{MAX_ROUNDS} and --duration "
                f"1..{MAX_SECONDS:g} (--no-mesh leaves it out)"
            ) from None
    if mesh == "only" and len(edges) < 2:
        raise ValueError("--mesh only: the mesh needs at least two --edges")
    return plan


def _scenarios(args: argparse.Namespace) -> tuple[Scenario, ...]:
    """The chosen part of the matrix: per feature and level, its targets side by side."""
    quick = args.quick
    features, targets = (
        _pick("feature", args.features, FEATURES),
        _pick("target", args.targets, TARGETS),
    )
    modes = _pick("mode", args.modes or ",".join(MODES), MODES)
    cuts = (
        ()
        if args.cuts == "none"
        else _pick("cut", args.cuts or ("bounded" if quick else ",".join(MODES)), MODES)
    )
    found = []
    for feature in features:
        feature_targets, feature_modes = SUPPORTED[feature]
        for mode in modes:
            for target in targets:
                if target not in feature_targets or mode not in feature_modes:
                    continue
                if (
                    quick
                    and args.modes is None
                    and mode != "tolerant"
                    and (target != "edge" or feature == "device")
                ):
                    continue
                found.append(Scenario(feature, target, mode))
    if "suggest" in features:
        for mode in cuts:
            for target in targets:
                if mode in CUT_TARGETS.get(target, ()) and not (quick and target != "edge"):
                    found.append(Scenario("suggest", target, mode, cut=True))
    if not found:
        raise ValueError("no scenario left: these features, targets and levels do not meet")
    return tuple(found)


def _pick(kind: str, text: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    chosen = _codes(text)
    if not chosen or set(chosen) - set(allowed):
        raise ValueError(f"--{kind}s: pick from {','.join(allowed)}")
    return tuple(c for c in allowed if c in chosen)


def _codes(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())
