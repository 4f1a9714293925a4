"""The ``lightcone`` command: ``core`` and ``edge`` run one node each, as Fly.io runs them."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from shared.config import ConfigError, from_environ
from shared.demo import DEFAULT_CORE, DEFAULT_EDGES, UpOptions, up
from shared.server import serve, setup_logging


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lightcone", description=__doc__)
    parser.add_argument("--log-level", default=os.environ.get("LIGHTCONE_LOG_LEVEL", "info"))
    commands = parser.add_subparsers(dest="command", required=True)

    core = commands.add_parser("core", help="run the core region (the one writer)")
    core.add_argument("--host", help="address to listen on [LIGHTCONE_HOST, 127.0.0.1]")
    core.add_argument("--port", type=int, help="port, 0 for any free one [LIGHTCONE_PORT, 8081]")
    core.add_argument("--data-dir", type=Path, help="SQLite folder [LIGHTCONE_DATA_DIR]")
    core.add_argument("--corpus", type=Path, help="term<TAB>weight file [LIGHTCONE_CORPUS]")
    core.set_defaults(run=_core)

    edge = commands.add_parser("edge", help="run an edge node")
    edge.add_argument("--host", help="address to listen on [LIGHTCONE_HOST, 127.0.0.1]")
    edge.add_argument("--port", type=int, help="port, 0 for any free one [LIGHTCONE_PORT, 8080]")
    edge.add_argument("--region", help="region code [LIGHTCONE_REGION or FLY_REGION]")
    edge.add_argument("--core-url", help="the core's base URL [LIGHTCONE_CORE_URL]")
    edge.set_defaults(run=_edge)

    demo = commands.add_parser("up", help="run the local multi-node demo")
    demo.add_argument("--core", default=DEFAULT_CORE, help="the core's region code [iad]")
    demo.add_argument(
        "--edges", default=",".join(DEFAULT_EDGES), help="comma-separated edge regions"
    )
    demo.add_argument(
        "--data-dir", type=Path, default=UpOptions.data_dir, help="state and logs of the demo"
    )
    demo.set_defaults(run=_up)

    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    try:
        return int(args.run(args) or 0)
    except ConfigError as exc:
        parser.exit(2, f"lightcone {args.command}: error: {exc}\n")
    return 2


def _up(args: argparse.Namespace) -> int:
    edges = tuple(r.strip() for r in args.edges.split(",") if r.strip())
    return up(UpOptions(core=args.core, edges=edges, data_dir=args.data_dir))


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
    )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    serve(
        create_app(settings),
        name="core",
        host=settings.host,
        port=settings.port,
        ws_max_size=settings.max_link_message_bytes,
    )


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
