"""Arguments of ``lightcone up``, ``lightcone partition`` and ``lightcone heal``.

:mod:`shared.cli` imports this module only when one of these commands runs, so the nodes'
commands need nothing of the local deployment.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import httpx

from deploy.local.up import DEFAULT_CORE, DEFAULT_EDGES, ROOM_AUTH, UpOptions, up


def configure(parser: argparse.ArgumentParser, command: str) -> None:
    """Add ``command``'s arguments to ``parser`` and the function that runs it."""
    if command == "up":
        _configure_up(parser)
        return
    parser.add_argument("region", help="the edge's region code")
    parser.add_argument(
        "--status-file",
        type=Path,
        default=UpOptions.data_dir / "status.json",
        help="the running demo's status file",
    )
    parser.set_defaults(run=_partition, verb=command)


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
        room_auth=args.room_auth,
        store=args.store,
    )
    return up(options)


def _partition(args: argparse.Namespace) -> int:
    try:
        control_url = json.loads(args.status_file.read_text())["control_url"]
    except (OSError, ValueError, KeyError) as exc:
        print(f"lightcone {args.verb}: no running demo ({args.status_file}: {exc})")
        return 1
    response = httpx.post(f"{control_url}/{args.verb}/{args.region}", timeout=5)
    print(f"lightcone {args.verb}: {response.json()}")
    return 0 if response.status_code == 200 else 1
