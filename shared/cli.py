"""The ``lightcone`` command: ``core`` and ``edge`` run one node each, as Fly.io runs them."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx

from load.bench import add_bench_parser
from shared.config import ConfigError, from_environ
from shared.demo import DEFAULT_CORE, DEFAULT_EDGES, ROOM_AUTH, UpOptions, up
from shared.server import serve, setup_logging

LOG_LEVELS = ("debug", "info", "warning", "error")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lightcone", description=__doc__)
    parser.add_argument(
        "--log-level",
        default=os.environ.get("LIGHTCONE_LOG_LEVEL", "info").lower(),
        choices=LOG_LEVELS,
        help="log level [LIGHTCONE_LOG_LEVEL, info]",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    core = commands.add_parser("core", help="run the core region (the one writer)")
    core.add_argument("--host", help="address to listen on [LIGHTCONE_HOST, 127.0.0.1]")
    core.add_argument("--port", type=int, help="port, 0 for any free one [LIGHTCONE_PORT, 8081]")
    core.add_argument("--data-dir", type=Path, help="SQLite folder [LIGHTCONE_DATA_DIR]")
    core.add_argument("--corpus", type=Path, help="term<TAB>weight file [LIGHTCONE_CORPUS]")
    core.add_argument(
        "--restored-from",
        metavar="NAME",
        help="the data was restored from backup NAME: rotate the epoch once "
        "[LIGHTCONE_RESTORED_FROM]",
    )
    core.set_defaults(run=_core)

    edge = commands.add_parser("edge", help="run an edge node")
    edge.add_argument("--host", help="address to listen on [LIGHTCONE_HOST, 127.0.0.1]")
    edge.add_argument("--port", type=int, help="port, 0 for any free one [LIGHTCONE_PORT, 8080]")
    edge.add_argument("--region", help="region code [LIGHTCONE_REGION or FLY_REGION]")
    edge.add_argument("--core-url", help="the core's base URL [LIGHTCONE_CORE_URL]")
    edge.set_defaults(run=_edge)

    demo = commands.add_parser("up", help="run the local multi-node demo")
    demo.add_argument("--core", default=DEFAULT_CORE, help="the core's region [iad]")
    demo.add_argument(
        "--edges", default=",".join(DEFAULT_EDGES), help="edge regions, comma-separated"
    )
    demo.add_argument("--users", default="", help="user cities as region codes [the edges']")
    demo.add_argument(
        "--data-dir", type=Path, default=UpOptions.data_dir, help="state and logs of the demo"
    )
    demo.add_argument("--status-file", type=Path, help="where to write the topology as JSON")
    demo.add_argument(
        "--access-ms",
        type=float,
        default=UpOptions.access_rtt_ms,
        help="last-mile RTT added to every user entry [5]",
    )
    demo.add_argument("--jitter", action="store_true", help="add jitter toward the P95 RTT")
    demo.add_argument(
        "--room-auth",
        choices=ROOM_AUTH,
        default=UpOptions.room_auth,
        help="token: cursor joins need a room token, which the page gets from the demo [token]",
    )
    demo.set_defaults(run=_up)

    for verb, what in (("partition", "cut"), ("heal", "restore")):
        cmd = commands.add_parser(verb, help=f"{what} an edge's link to the core (demo only)")
        cmd.add_argument("region", help="the edge's region code")
        cmd.add_argument(
            "--status-file",
            type=Path,
            default=UpOptions.data_dir / "status.json",
            help="the running demo's status file",
        )
        cmd.set_defaults(run=_partition, verb=verb)
    add_bench_parser(commands)  # lightcone bench: load/bench.py

    args = parser.parse_args(argv)
    if args.log_level not in LOG_LEVELS:
        parser.error(f"LIGHTCONE_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
    setup_logging(args.log_level)
    try:
        return int(args.run(args) or 0)
    except ConfigError as exc:
        parser.exit(2, f"lightcone {args.command}: error: {exc}\n")
    return 2


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


def _core(args: argparse.Namespace) -> None:
    from core_region.app import create_app
    from core_region.settings import CoreSettings

    settings = from_environ(
        CoreSettings,
        os.environ,
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        corpus=args.corpus,
        restored_from=args.restored_from,
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.corpus is not None:
        _check_corpus(settings.corpus)
    serve(
        create_app(settings),
        name="core",
        host=settings.host,
        port=settings.port,
        ws_max_size=settings.max_link_message_bytes,
    )


def _check_corpus(path: Path) -> None:
    """Refuse a bad corpus before serving: a clear message and exit 2, not a traceback."""
    from core_region.suggest import corpus

    try:
        corpus.load(path)
    except (OSError, corpus.CorpusError) as exc:
        raise ConfigError(str(exc)) from None


def _edge(args: argparse.Namespace) -> None:
    from edge_node.app import create_app
    from edge_node.settings import EdgeSettings

    settings = from_environ(
        EdgeSettings,
        os.environ,
        host=args.host,
        port=args.port,
        region=args.region,
        core_url=args.core_url,
    )
    serve(
        create_app(settings),
        name=f"edge {settings.region}",
        host=settings.host,
        port=settings.port,
        ws_max_size=settings.max_frame_bytes,
        sndbuf=settings.socket_sndbuf,
    )


if __name__ == "__main__":
    sys.exit(main())
