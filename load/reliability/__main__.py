"""``python -m load.reliability SCENARIO``: run one fault-injection benchmark.

Scenarios: ``kill9``, ``link-cuts``, ``storm``, ``soak`` (``--help`` on each). Each prints a
progress line every few seconds, checks its promises, writes ``results.json``,
``summary.md`` and the nodes' logs to ``--out`` (a new folder under /tmp by default), and
exits 1 if a promise was broken (something acknowledged lost, an edge stuck, RSS out of its
band), 0 if every promise held. ``--publish`` also copies the summary (and the soak's plot)
to ``docs/reliability/``, where ``docs/RELIABILITY.md`` links them.

The nodes run with their default settings. ``--fast-link`` gives every node a fast link
(heartbeats, link timeout, reconnect, staleness, strict deadline and breaker reset:
``FAST_LINK_ENV`` in :mod:`load.reliability.cluster`), for many more faults per minute;
``--node-env NAME=VALUE`` sets any other setting.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from deploy.local.supervisor import ChildFailed
from load.machine import ROOT, shown_path
from load.reliability.cluster import FAST_LINK_ENV, Cluster
from load.reliability.kill9 import run_kill9
from load.reliability.link_cuts import run_link_cuts
from load.reliability.run import Run, say
from load.reliability.soak import run_soak
from load.reliability.storm import run_storm

PUBLISHED = ROOT / "docs" / "reliability"
Scenario = Callable[[Run, Cluster, Any], Awaitable[None]]
SCENARIOS: dict[str, tuple[Scenario, str]] = {
    "kill9": (run_kill9, "SIGKILL the core under write load; nothing acknowledged is lost"),
    "link-cuts": (run_link_cuts, "cut and heal edge-core links under mixed load"),
    "storm": (run_storm, "restart the core under N edges; all back and current"),
    "soak": (run_soak, "mixed load and link cuts for minutes; RSS of every node in a band"),
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m load.reliability",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scenarios = top.add_subparsers(dest="scenario", required=True)
    for name, (run, help_text) in SCENARIOS.items():
        module = sys.modules[run.__module__]
        sub = scenarios.add_parser(
            name,
            help=help_text,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _common(sub)
        module.add_arguments(sub)
    return top


def _common(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--out", type=Path, help="results folder [a new one under /tmp]")
    sub.add_argument("--corpus", type=Path, help="the core's term<TAB>weight file [shipped]")
    sub.add_argument(
        "--node-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a LIGHTCONE_* setting for every node (repeatable)",
    )
    sub.add_argument(
        "--fast-link", action="store_true", help="fast heartbeats, deadlines and breaker (below)"
    )
    sub.add_argument("--progress-s", type=float, default=3.0, help="between progress lines [3]")
    sub.add_argument(
        "--max-minutes", type=float, default=30.0, help="stop and fail a run this long [30]"
    )
    sub.add_argument(
        "--publish", action="store_true", help="copy the summary (and plot) to docs/reliability/"
    )


def _env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.startswith("LIGHTCONE_"):
            raise SystemExit(f"--node-env wants LIGHTCONE_NAME=VALUE, not {pair!r}")
        env[name] = value
    return env


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


async def _main(args: argparse.Namespace, run: Run) -> int:
    env = {**(FAST_LINK_ENV if args.fast_link else {}), **_env(args.node_env)}
    cluster = Cluster(run.out, corpus=args.corpus, env=env)
    scenario, _ = SCENARIOS[args.scenario]
    try:
        async with asyncio.timeout(args.max_minutes * 60):
            await scenario(run, cluster, args)
    except TimeoutError:
        run.check("the run finishes", False, f"still running after {args.max_minutes:g} min")
    except (ChildFailed, httpx.HTTPError, OSError) as exc:
        run.check("the run finishes", False, f"{type(exc).__name__}: {exc}")
    finally:
        await cluster.close()
    return run.finish(cluster)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    out: Path = args.out or Path(tempfile.mkdtemp(prefix=f"lightcone-{args.scenario}-"))
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("logs", "core-data", "results.json", "summary.md"):
        path = out / stale
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    options = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    run = Run(args.scenario, out.resolve(), options)
    say(f"lightcone reliability: {args.scenario} → {shown_path(out)}")
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = asyncio.run(_main(args, run))
    except KeyboardInterrupt:
        say("interrupted: the nodes are stopped")
        return 130
    if args.publish:
        PUBLISHED.mkdir(parents=True, exist_ok=True)
        for source, name in (("summary.md", ".md"), (f"{args.scenario}.png", ".png")):
            if (out / source).exists():
                target = PUBLISHED / f"{args.scenario}{name}"
                shutil.copyfile(out / source, target)
                say(f"published {shown_path(target)}")
    return code


if __name__ == "__main__":
    sys.exit(main())
