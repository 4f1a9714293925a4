"""Start, watch and stop local lightcone processes (the demo and the bench use it).

Each node is a real ``lightcone core`` / ``lightcone edge`` process on an ephemeral port, the
same command Fly.io runs. A reader thread per child follows its log, so the supervisor can
wait for a line ("listening on", "loaded snapshot") without polling, and keeps the log in a
file. Every child is stopped on exit: SIGTERM, then SIGKILL after a grace period.

A child stopped on purpose (:attr:`Child.on_purpose`: the demo's control API stops a core
node) is not a crash (:meth:`Supervisor.crashed`); :meth:`Supervisor.restart` runs its command
again, on the same port.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)

LISTENING = re.compile(r"listening on (http://\S+)")


class ChildFailed(Exception):
    """A child exited or did not reach a state in time; ``str()`` says which and shows its log."""


class Child:
    """One supervised process and the lines of its log."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        *,
        module: str = "shared.cli",
    ) -> None:
        """Run ``python -m <module> <args>`` (by default the ``lightcone`` CLI)."""
        self.name = name
        self.args = list(args)
        self.env = dict(env)
        self.module = module
        self.log_path = log_path
        self.on_purpose = False
        """Stopped or killed on purpose: its exit is no crash."""
        self.lines: list[str] = []
        self._eof = False  # the child closed its log: it is exiting
        self._changed = threading.Condition()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, **env},
            text=True,
            start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops the children
        )
        self._reader = threading.Thread(target=self._follow, name=f"log-{name}", daemon=True)
        self._reader.start()
        self.url = ""
        self.ready = ""
        """The log line that said it was ready (to wait for again after a restart)."""

    @property
    def pid(self) -> int:
        return self.process.pid

    def _follow(self) -> None:
        stream: IO[str] | None = self.process.stderr
        assert stream is not None
        with self.log_path.open("a", encoding="utf-8") as log:
            for line in stream:
                log.write(line)
                log.flush()
                with self._changed:
                    self.lines.append(line)
                    self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    def wait_for(self, pattern: re.Pattern[str] | str, timeout_s: float) -> re.Match[str]:
        """The first log line matching ``pattern``.

        Raises:
            ChildFailed: if the process exits first or ``timeout_s`` passes.
        """
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern

        def match() -> re.Match[str] | None:
            return next((m for line in self.lines if (m := regex.search(line))), None)

        with self._changed:
            self._changed.wait_for(lambda: match() or self._eof, timeout_s)
            found = match()
        if found is None and self._eof:
            # The log ended a moment before the exit is visible: wait for it, not the timeout.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5)
        if found is None:
            code = self.process.poll()
            state = "timed out" if code is None else f"exited with {code}"
            tail = "".join(self.lines[-15:])
            raise ChildFailed(f"{self.name} {state} before {regex.pattern!r}:\n{tail}")
        return found

    def stop(self, grace_s: float = 10.0) -> int:
        """SIGTERM, SIGKILL after ``grace_s``; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop in %.0f s: killing it", self.name, grace_s)
                self.process.kill()
                self.process.wait()
        self._release()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash would; reaps the process."""
        self.process.kill()
        self.process.wait()
        self._release()

    def _release(self) -> None:
        self._reader.join(5)
        if self.process.stderr is not None:
            self.process.stderr.close()


class Supervisor:
    """Owns a set of children; ``with Supervisor(...)`` stops them all on the way out."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[Child] = []

    def __enter__(self) -> Supervisor:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def start(
        self, name: str, args: Sequence[str], env: Mapping[str, str], ready: str, timeout_s: float
    ) -> Child:
        """Start a child and wait until it logs its address and then ``ready``."""
        child = Child(name, args, env, self.log_dir / f"{name}.log")
        self.children.append(child)
        return self._ready(child, ready, timeout_s)

    def _ready(self, child: Child, ready: str, timeout_s: float) -> Child:
        child.ready = ready
        child.url = child.wait_for(LISTENING, timeout_s).group(1)
        child.wait_for(ready, timeout_s)
        return child

    def restart(self, old: Child, timeout_s: float, port: str) -> Child:
        """Run a stopped child's command again with ``--port port`` (its log goes on in the
        same file); the new child takes the old one's place (and its turn in :meth:`stop_all`).

        Raises:
            ChildFailed: it exited or was not ready in time; it is then stopped, on purpose.
        """
        args = list(old.args)
        if "--port" in args:
            args[args.index("--port") + 1] = port
        child = Child(old.name, args, old.env, old.log_path, module=old.module)
        self.children[self.children.index(old)] = child
        try:
            return self._ready(child, old.ready, timeout_s)
        except ChildFailed:
            child.on_purpose = True
            child.stop()
            raise

    def crashed(self) -> Child | None:
        """A child that exited without being stopped on purpose, if any."""
        for child in self.children:
            if child.process.poll() is not None and not child.on_purpose:
                return child
        return None

    def stop_all(self) -> None:
        for child in reversed(self.children):
            started = time.monotonic()
            code = child.stop()
            logger.info(
                "stopped %s (exit %s, %.1f s)", child.name, code, time.monotonic() - started
            )
