"""The ``lightcone`` command: ``core`` and ``edge`` run one node each, as Fly.io runs them.

Each command's module is imported only when that command runs (:data:`COMMANDS`): the nodes'
image ships neither ``load/`` (``bench``) nor :mod:`deploy.local` (``up``, ``partition``,
``heal``, ``core-node``). A command whose modules are not installed says which, and how to
install them, and exits with :data:`MISSING_MODULES_EXIT`, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from shared.config import ConfigError, from_environ
from shared.server import serve, setup_logging

if TYPE_CHECKING:
    from core_region.settings import CoreSettings

LOG_LEVELS = ("debug", "info", "warning", "error")

DESCRIPTION = (
    "Real-time features at the edge. 'lightcone core' and 'lightcone edge' run one node "
    "each, as Fly.io runs them; 'lightcone up' runs a core and edges on this machine with "
    "simulated distance; 'lightcone bench' runs the load comparison."
)

MISSING_MODULES_EXIT = 3
"""Exit code of a command whose modules are not installed (:class:`MissingModules`)."""

Configure = Callable[[argparse.ArgumentParser, str], None]
"""Adds a command's arguments to its parser and sets ``run`` (called with the command name)."""


@dataclass(frozen=True, slots=True)
class Command:
    """One ``lightcone`` sub-command, described without importing it."""

    help: str
    configure: str
    """``module:function`` (a :data:`Configure`), imported only when the command runs."""
    needs: tuple[str, ...] = ()
    """Top-level modules it imports that an installation may lack (the nodes' image ships only
    ``shared``, ``edge_node`` and ``core_region``; a plain ``pip install`` has no extras)."""
    install: str = ""
    """How to install :attr:`needs`, for the message."""

    def load(self) -> Configure:
        """Import the command's ``configure``.

        Raises:
            MissingModules: a module of :attr:`needs` is not installed.
        """
        missing = [name for name in self.needs if importlib.util.find_spec(name) is None]
        if missing:
            raise MissingModules(missing, self.install)
        module, function = self.configure.split(":")
        try:
            configure: Configure = getattr(importlib.import_module(module), function)
        except ModuleNotFoundError as exc:
            root = (exc.name or "").split(".")[0]
            if root not in self.needs:
                raise
            raise MissingModules([root], self.install) from None
        return configure


class MissingModules(Exception):
    """A command's modules are not installed; ``str()`` names them and how to install them."""

    def __init__(self, missing: list[str], install: str) -> None:
        super().__init__(
            f"needs {', '.join(missing)}, which this installation lacks. Install with: {install}"
        )


_LOCAL = "pip install -e . (in a checkout of the repository; the nodes' image has no deploy/)"


COMMANDS = {
    "core": Command("run the core region (the one writer)", "shared.cli:configure_core"),
    "edge": Command("run an edge node", "shared.cli:configure_edge"),
    "up": Command(
        "run the local multi-node demo", "deploy.local.cli:configure", ("deploy",), _LOCAL
    ),
    "partition": Command(
        "cut an edge's link to the core (demo only)",
        "deploy.local.cli:configure",
        ("deploy",),
        _LOCAL,
    ),
    "heal": Command(
        "restore an edge's link to the core (demo only)",
        "deploy.local.cli:configure",
        ("deploy",),
        _LOCAL,
    ),
    "core-node": Command(
        "list, stop or start a core node of the demo (demo only)",
        "deploy.local.cli:configure",
        ("deploy",),
        _LOCAL,
    ),
    "bench": Command(
        "run the locust comparison (edge vs central, tolerant vs strict)",
        "load.bench:configure",
        ("load", "locust", "matplotlib", "numpy"),
        "pip install 'lightcone[load]' (in a checkout: pip install -e '.[load]')",
    ),
}
"""Every sub-command, in the order ``lightcone --help`` lists them."""


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="lightcone", description=DESCRIPTION)
    parser.add_argument(
        "--log-level",
        default=os.environ.get("LIGHTCONE_LOG_LEVEL", "info").lower(),
        choices=LOG_LEVELS,
        help="log level [LIGHTCONE_LOG_LEVEL, info]",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    chosen = _chosen(args_list)
    for name, command in COMMANDS.items():
        sub = commands.add_parser(name, help=command.help, description=command.help)
        if name != chosen:
            continue
        try:
            configure = command.load()
        except MissingModules as exc:
            parser.exit(MISSING_MODULES_EXIT, f"lightcone {name}: {exc}\n")
        configure(sub, name)
        sub.description = plain_text(sub.description or command.help)

    args = parser.parse_args(args_list)
    if args.log_level not in LOG_LEVELS:
        parser.error(f"LIGHTCONE_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
    setup_logging(args.log_level)
    try:
        return int(args.run(args) or 0)
    except ConfigError as exc:
        parser.exit(2, f"lightcone {args.command}: error: {exc}\n")
    return 2


class _Lenient(argparse.ArgumentParser):
    """A parser that raises on a usage error instead of printing it and exiting."""

    def error(self, message: str) -> NoReturn:
        raise argparse.ArgumentError(None, message)


def _chosen(argv: list[str]) -> str | None:
    """The command ``argv`` names, found without knowing the commands' own options (``None``
    when there is none: the full parse then reports the error)."""
    pre = _Lenient(add_help=False)
    pre.add_argument("--log-level")
    pre.add_argument("command", nargs="?")
    try:
        known, _ = pre.parse_known_args(argv)
    except argparse.ArgumentError:
        return None
    return str(known.command) if known.command in COMMANDS else None


_ROLE = re.compile(r":[a-z]+:`~?\.?([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")
_EMPHASIS = re.compile(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])")


def plain_text(doc: str) -> str:
    """``doc`` (a docstring in reST) as plain text for ``--help``: roles, literals and
    emphasis unmarked (``:class:`X```, ````x```` and ``*x*`` read X, x and x)."""
    return _EMPHASIS.sub(r"\1", _LITERAL.sub(r"\1", _ROLE.sub(r"\1", doc)))


def configure_core(parser: argparse.ArgumentParser, command: str) -> None:
    """``lightcone core``'s arguments (each overrides its setting)."""
    parser.add_argument("--host", help="address to listen on [LIGHTCONE_HOST, 127.0.0.1]")
    parser.add_argument("--port", type=int, help="port, 0 for any free one [LIGHTCONE_PORT, 8081]")
    parser.add_argument("--data-dir", type=Path, help="SQLite folder [LIGHTCONE_DATA_DIR]")
    parser.add_argument(
        "--store",
        metavar="URL",
        help="postgresql://user:pass@host:port/db to keep the data in PostgreSQL; "
        "empty: SQLite under --data-dir [LIGHTCONE_STORE]",
    )
    parser.add_argument(
        "--broker",
        metavar="URL",
        help="redis://host:port/db shared by several core nodes on one store [LIGHTCONE_BROKER]",
    )
    parser.add_argument("--corpus", type=Path, help="term<TAB>weight file [LIGHTCONE_CORPUS]")
    parser.add_argument(
        "--restored-from",
        metavar="NAME",
        help="the data was restored from backup NAME: rotate the epoch once "
        "[LIGHTCONE_RESTORED_FROM]",
    )
    parser.set_defaults(run=_core)


def configure_edge(parser: argparse.ArgumentParser, command: str) -> None:
    """``lightcone edge``'s arguments (each overrides its setting)."""
    parser.add_argument("--host", help="address to listen on [LIGHTCONE_HOST, 127.0.0.1]")
    parser.add_argument("--port", type=int, help="port, 0 for any free one [LIGHTCONE_PORT, 8080]")
    parser.add_argument("--region", help="region code [LIGHTCONE_REGION or FLY_REGION]")
    parser.add_argument(
        "--core-url",
        help="the core's base URL, or several core nodes' URLs, comma-separated "
        "[LIGHTCONE_CORE_URL]",
    )
    parser.set_defaults(run=_edge)


def _core(args: argparse.Namespace) -> None:
    from core_region.app import create_app
    from core_region.settings import CoreSettings

    settings = from_environ(
        CoreSettings,
        os.environ,
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        store=args.store,
        broker=args.broker,
        corpus=args.corpus,
        restored_from=args.restored_from,
    )
    if not settings.store:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    _check_store(settings)
    if settings.corpus is not None:
        _check_corpus(settings.corpus)
    serve(
        create_app(settings),
        name="core",
        host=settings.host,
        port=settings.port,
        ws_max_size=settings.max_link_message_bytes,
    )


def _check_store(settings: CoreSettings) -> None:
    """Refuse to serve when the store cannot be reached, its keys were made by a newer fold,
    or (PostgreSQL) another core node holds it or the nodes on it build another stream: one
    line naming it (without its password) and exit 2, not a traceback. Opening the store
    applies the migrations it lacks and re-keys keys of an older fold."""
    import asyncio
    import time

    from core_region.node import claim, node_lease
    from core_region.store import Store
    from core_region.suggest.feature import join, stream_key
    from shared.errors import StoreUnavailable

    async def probe() -> None:
        store = await Store.open(settings.store_location)
        try:  # the node claims it again when it starts: the same process, its own lease
            if not settings.store:
                return
            lease = node_lease(settings, time.time())
            await claim(store, lease)
            await join(store, stream_key(settings), lease.node_id)
        finally:
            await store.close()

    try:
        asyncio.run(probe())
    except StoreUnavailable as exc:
        raise ConfigError(str(exc)) from None


def _check_corpus(path: Path) -> None:
    """Refuse a bad corpus before serving: a clear message and exit 2, not a traceback."""
    from core_region.suggest import corpus

    try:
        corpus.check(path)  # kept for the core's seed: parsed once
    except (OSError, corpus.CorpusError) as exc:
        raise ConfigError(str(exc)) from None


def _edge(args: argparse.Namespace) -> None:
    from edge_node import memory
    from edge_node.app import create_app
    from edge_node.settings import EdgeSettings

    memory.configure()  # snapshots' memory goes back to the system when freed

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
