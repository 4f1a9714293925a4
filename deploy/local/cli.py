"""Arguments of ``lightcone up``, ``lightcone partition``, ``lightcone heal`` and
``lightcone core-node``.

:mod:`shared.cli` imports this module only when one of these commands runs, so the nodes'
commands need nothing of the local deployment.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import httpx

from deploy.local.cores import MAX_CORES, core_of
from deploy.local.up import DEFAULT_CORE, DEFAULT_EDGES, ROOM_AUTH, UpOptions, up

STATUS_TIMEOUT_S = 2
"""Longest wait for one edge's ``/status`` (``lightcone core-node list``)."""


def configure(parser: argparse.ArgumentParser, command: str) -> None:
    """Add ``command``'s arguments to ``parser`` and the function that runs it."""
    if command == "up":
        _configure_up(parser)
        return
    if command == "core-node":
        _configure_core_node(parser)
    else:
        parser.add_argument("region", help="the edge's region code")
        parser.set_defaults(run=_partition, verb=command)
    parser.add_argument(
        "--status-file",
        type=Path,
        default=UpOptions.data_dir / "status.json",
        help="the running demo's status file",
    )


def _configure_core_node(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=("list", "stop", "start"),
        help="list the core nodes (state, and which edges are on each), stop one, start it again",
    )
    parser.add_argument("name", nargs="?", help="the core node (core-1, core-2, ...)")
    parser.add_argument(
        "--kill", action="store_true", help="stop: SIGKILL, as a crash, instead of SIGTERM"
    )
    parser.set_defaults(run=_core_node, verb="core-node")


def _configure_up(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--core", default=DEFAULT_CORE, help="the core's region [iad]")
    parser.add_argument(
        "--edges", default=",".join(DEFAULT_EDGES), help="edge regions, comma-separated"
    )
    parser.add_argument("--users", default="", help="user cities as region codes [the edges']")
    parser.add_argument(
        "--data-dir", type=Path, default=UpOptions.data_dir, help="state and logs of the demo"
    )
    parser.add_argument("--status-file", type=Path, help="where to write the topology as JSON")
    parser.add_argument(
        "--access-ms",
        type=float,
        default=UpOptions.access_rtt_ms,
        help="last-mile RTT added to every user entry [5]",
    )
    parser.add_argument("--jitter", action="store_true", help="add jitter toward the P95 RTT")
    parser.add_argument(
        "--no-mesh",
        action="store_true",
        help="no edge mesh: tolerant cursor moves between edges all go through the core",
    )
    parser.add_argument(
        "--room-auth",
        choices=ROOM_AUTH,
        default=UpOptions.room_auth,
        help="token: cursor joins need a room token, which the page gets from the demo [token]",
    )
    parser.add_argument(
        "--store",
        default=UpOptions.store,
        metavar="sqlite|postgres|URL",
        help="the core's store: sqlite (a file under --data-dir), postgres (a throwaway "
        "PostgreSQL cluster; needs Debian's postgresql package) or a postgresql:// URL [sqlite]",
    )
    parser.add_argument(
        "--cores",
        type=int,
        default=UpOptions.cores,
        help=f"core nodes (1 to {MAX_CORES}) on one store; more than one needs --store "
        "postgres or a URL, and a broker [1]",
    )
    parser.add_argument(
        "--broker",
        default=UpOptions.broker,
        metavar="URL",
        help="redis:// URL the core nodes share; default with --cores 2 or more: a throwaway "
        "redis-server (needs Debian's redis-server package)",
    )
    parser.add_argument(
        "--pop",
        action="store_true",
        help="put a caching nginx PoP in front of each user city's nearest edge (needs "
        "Debian's nginx-light); each entry of the status file gains pop_url",
    )
    parser.set_defaults(run=_up)


def _codes(text: str) -> tuple[str, ...]:
    return tuple(r.strip() for r in text.split(",") if r.strip())


def _up(args: argparse.Namespace) -> int:
    options = UpOptions(
        core=args.core,
        edges=_codes(args.edges),
        users=_codes(args.users),
        data_dir=args.data_dir,
        status_file=args.status_file,
        access_rtt_ms=args.access_ms,
        jitter=args.jitter,
        mesh=not args.no_mesh,
        room_auth=args.room_auth,
        store=args.store,
        cores=args.cores,
        broker=args.broker,
        pop=args.pop,
    )
    return up(options)


def _topology(args: argparse.Namespace) -> dict[str, Any] | None:
    """The running demo's status file, or ``None`` (said why)."""
    try:
        topology: dict[str, Any] = json.loads(args.status_file.read_text())
        topology["control_url"]
    except (OSError, ValueError, KeyError) as exc:
        print(f"lightcone {args.verb}: no running demo ({args.status_file}: {exc})")
        return None
    return topology


def _partition(args: argparse.Namespace) -> int:
    topology = _topology(args)
    if topology is None:
        return 1
    try:
        response = httpx.post(f"{topology['control_url']}/{args.verb}/{args.region}", timeout=5)
    except httpx.HTTPError as exc:
        return _unreachable(args, exc)
    print(f"lightcone {args.verb}: {response.json()}")
    return 0 if response.status_code == 200 else 1


def _unreachable(args: argparse.Namespace, exc: httpx.HTTPError) -> int:
    print(f"lightcone {args.verb}: the demo's control API did not answer ({exc!r}); is it running?")
    return 1


def _core_node(args: argparse.Namespace) -> int:
    topology = _topology(args)
    if topology is None:
        return 1
    try:
        return _core_node_action(args, topology)
    except httpx.HTTPError as exc:
        return _unreachable(args, exc)


def _core_node_action(args: argparse.Namespace, topology: dict[str, Any]) -> int:
    control_url = topology["control_url"]
    if args.action == "list":
        nodes = httpx.get(f"{control_url}/core-nodes", timeout=5).json()["core_nodes"]
        on = _edges_on(topology)
        for node in nodes:
            edges = " ".join(on.get(node["name"], [])) or "-"
            pid = node["pid"] or "-"
            print(
                f"{node['name']:<7} {node['state']:<8} {node['url']}  pid {pid:<8} edges: {edges}"
            )
        if "?" in on:
            print(f"not linked to any core node now: {' '.join(on['?'])}")
        return 0
    if not args.name:
        print(f"lightcone core-node {args.action}: which core node? (e.g. core-1)")
        return 2
    verb = "kill" if args.action == "stop" and args.kill else args.action
    # Starting waits until the node is ready (tens of seconds at most).
    response = httpx.post(f"{control_url}/core-nodes/{args.name}/{verb}", timeout=130)
    answer = response.json()
    if response.status_code != 200:
        print(f"lightcone core-node {args.action}: {answer['message']}")
        return 1
    print(f"lightcone core-node {args.action}: {answer['name']} {answer['state']}")
    return 0


def _edges_on(topology: dict[str, Any]) -> dict[str, list[str]]:
    """Core node label → the regions of the edges on it now, from each edge's ``/status``
    (``?``: edges that answer none or no status)."""
    on: dict[str, list[str]] = {}
    with httpx.Client(timeout=STATUS_TIMEOUT_S) as client:
        for edge in topology["nodes"]:
            if edge["kind"] != "edge":
                continue
            try:
                status = client.get(f"{edge['url']}/status").json()
                linked = status["link"] in ("up", "suspect")
                name = core_of(edge, status["core"]) if linked else None
            except (httpx.HTTPError, ValueError, KeyError):
                name = None
            on.setdefault(name or "?", []).append(edge["region"])
    return on
