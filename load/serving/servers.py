"""The servers under test: child processes logging to a file, found by their "listening on"."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from load.machine import process_cpu_s
from load.serving import BenchError

LISTENING = re.compile(r"listening on (http://[\d.]+:\d+)")
POLL_S = 0.005


def http_get(url: str, timeout_s: float = 2.0) -> tuple[int, bytes]:
    """Status and body of ``GET url``; status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


class Server:
    """A child process whose stderr goes to a log file; stopped by PID (TERM, then KILL)."""

    def __init__(self, name: str, args: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = log_path
        self.url = ""
        self._log = log_path.open("wb")
        self.spawned = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, *args],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
        self.pid = self.process.pid

    def pin(self, cpu: int | None) -> None:
        if cpu is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(self.pid, {cpu})

    def wait_listening(self, timeout_s: float) -> float:
        """Wait for the "listening on" line; sets :attr:`url`; returns seconds since spawn."""
        deadline = time.perf_counter() + timeout_s
        while True:
            match = LISTENING.search(self.log_path.read_text(errors="replace"))
            if match:
                self.url = match.group(1)
                return time.perf_counter() - self.spawned
            self._check_alive(deadline, "a 'listening on' line")
            time.sleep(POLL_S)

    def wait_ready(self, path: str, timeout_s: float) -> float:
        """Poll ``GET path`` until 200; returns seconds since spawn."""
        deadline = time.perf_counter() + timeout_s
        while True:
            if http_get(self.url + path, timeout_s=1.0)[0] == 200:
                return time.perf_counter() - self.spawned
            self._check_alive(deadline, f"{path} 200")
            time.sleep(POLL_S)

    def _check_alive(self, deadline: float, what: str) -> None:
        if self.process.poll() is not None:
            raise BenchError(f"{self.name} exited ({self.process.returncode}):\n{self.tail()}")
        if time.perf_counter() > deadline:
            raise BenchError(f"{self.name}: no {what} in time:\n{self.tail()}")

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def host_port(self) -> tuple[str, int]:
        parsed = urllib.parse.urlsplit(self.url)
        assert parsed.hostname is not None and parsed.port is not None
        return parsed.hostname, parsed.port

    def cpu_s(self) -> float:
        return process_cpu_s(self.pid)

    def stop(self, timeout_s: float = 8.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s``; reaps the process."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()
