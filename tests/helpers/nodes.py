"""Real ``lightcone core`` / ``lightcone edge`` processes on ephemeral ports, for e2e tests.

Each node runs the installed CLI in a subprocess with ``--port 0``; a reader thread follows
its log and signals when the "listening on" line (with the bound port) and later lines
appear, so tests wait on conditions, never on fixed sleeps. Every node is stopped (and its
PID reaped) by the fixture that started it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

import httpx

_LISTENING = re.compile(r"listening on (http://\S+)")

ADMIN_TOKEN = "test-admin-token"
LINK_TOKEN = "test-link-token"


class Node:
    """A running lightcone process and its log."""

    def __init__(self, args: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self.lines: list[str] = []
        self._changed = threading.Condition()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, **env}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shared.cli", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=full_env,
            text=True,
        )
        self._reader = threading.Thread(target=self._follow, daemon=True)
        self._reader.start()
        match = self.wait_for_line(_LISTENING, 30)
        self.url = match.group(1)

    def _follow(self) -> None:
        assert self.process.stderr is not None
        with self.log_path.open("a") as log:
            for line in self.process.stderr:
                log.write(line)
                log.flush()
                with self._changed:
                    self.lines.append(line)
                    self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_line(self, pattern: re.Pattern[str] | str, timeout_s: float) -> re.Match[str]:
        """The first log line matching ``pattern``, waiting up to ``timeout_s``."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        seen = 0

        def found() -> re.Match[str] | None:
            nonlocal seen
            for line in self.lines[seen:]:
                if m := regex.search(line):
                    return m
            seen = len(self.lines)
            return None

        with self._changed:
            result = self._changed.wait_for(
                lambda: found() or self.process.poll() is not None, timeout_s
            )
        if isinstance(result, re.Match):
            return result
        tail = "".join(self.lines[-20:])
        raise AssertionError(f"no log line like {regex.pattern!r} within {timeout_s} s:\n{tail}")

    def errors(self) -> list[str]:
        return [line for line in self.lines if " ERROR " in line or "Traceback" in line]

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; reaps the process."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close()

    def _close(self) -> None:
        self._reader.join(5)
        if self.process.stderr is not None:
            self.process.stderr.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self._close()


def start_core(
    tmp: Path, *, corpus: Path | None = None, env: Mapping[str, str] | None = None
) -> Node:
    args = ["core", "--port", "0", "--data-dir", str(tmp / "core-data")]
    if corpus is not None:
        args += ["--corpus", str(corpus)]
    base = {"LIGHTCONE_ADMIN_TOKEN": ADMIN_TOKEN, "LIGHTCONE_LINK_TOKEN": LINK_TOKEN}
    node = Node(args, {**base, **(env or {})}, tmp / "core.log")
    node.wait_for_line("Application startup complete", 60)
    return node


def start_edge(
    tmp: Path, core_url: str, region: str, *, env: Mapping[str, str] | None = None
) -> Node:
    args = ["edge", "--port", "0", "--region", region, "--core-url", core_url]
    base = {"LIGHTCONE_LINK_TOKEN": LINK_TOKEN}
    node = Node(args, {**base, **(env or {})}, tmp / f"edge-{region}.log")
    node.wait_for_line("loaded snapshot", 30)
    with httpx.Client() as client:
        assert client.get(f"{node.url}/readyz").status_code == 200
    return node


def admin(core: Node) -> httpx.Client:
    """An HTTP client for the core's admin API."""
    return httpx.Client(base_url=core.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
