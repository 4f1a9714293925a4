"""``lightcone up``: a core and several edges on this machine, as real processes.

Every node runs the same ``lightcone core`` / ``lightcone edge`` command Fly.io runs, on an
ephemeral loopback port. Start-up shows progress until every node is ready; Ctrl-C (or
SIGTERM) stops everything it started; a node that crashes is reported and the exit code
says so (1).
"""

from __future__ import annotations

import secrets
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from shared.supervisor import ChildFailed, Supervisor

DEFAULT_CORE = "iad"
DEFAULT_EDGES = ("iad", "lhr", "syd", "sin")


@dataclass(frozen=True)
class UpOptions:
    core: str = DEFAULT_CORE
    edges: tuple[str, ...] = DEFAULT_EDGES
    data_dir: Path = Path("lightcone-data") / "demo"


def say(text: str) -> None:
    print(text, flush=True)


def up(options: UpOptions) -> int:
    """Run the demo until interrupted; returns the process exit code."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    link_token, admin_token = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    tokens = {"LIGHTCONE_LINK_TOKEN": link_token, "LIGHTCONE_ADMIN_TOKEN": admin_token}
    total = 1 + len(options.edges)
    log_dir = options.data_dir / "logs"
    say(f"lightcone up: core {options.core}, edges {' '.join(options.edges)} (logs in {log_dir})")
    with Supervisor(log_dir) as supervisor:
        try:
            started = time.monotonic()
            core = supervisor.start(
                f"core-{options.core}",
                ["core", "--port", "0", "--data-dir", str(options.data_dir / "core")],
                {**tokens, "LIGHTCONE_REGION": options.core},
                ready="Application startup complete",
                timeout_s=120,
            )
            say(_progress(1, total, "core", options.core, started, core.url))
            edges = []
            for n, region in enumerate(options.edges, start=2):
                started = time.monotonic()
                edge = supervisor.start(
                    f"edge-{region}",
                    ["edge", "--port", "0", "--region", region, "--core-url", core.url],
                    tokens,
                    ready="loaded snapshot",
                    timeout_s=60,
                )
                edges.append(edge)
                say(_progress(n, total, "edge", region, started, edge.url))
        except ChildFailed as exc:
            say(f"lightcone up: {exc}")
            return 1
        say("")
        say("Try:")
        say(f"  curl '{edges[0].url}/suggest?q=sao+pa'")
        say(
            f"  curl -X PUT -H 'Authorization: Bearer {admin_token}' "
            f"{core.url}/admin/flags/suggest -d '{{\"stale_ok\": false}}'"
        )
        say("Ctrl-C stops everything.")
        crashed = supervisor.wait_any_exit(stop)
        if crashed is not None:
            code = crashed.process.returncode
            say(f"lightcone up: {crashed.name} exited with {code}; stopping the others")
            say("".join(crashed.lines[-10:]).rstrip())
            return 1
        say("lightcone up: stopping")
    say("lightcone up: stopped")
    return 0


def _progress(n: int, total: int, kind: str, region: str, started: float, url: str) -> str:
    took = time.monotonic() - started
    return f"[{n}/{total}] {kind} {region:>4}  ready in {took:4.1f} s  {url}"
