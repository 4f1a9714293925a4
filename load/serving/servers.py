"""The servers under test: child processes logging to a file, found by their "listening on"."""

from __future__ import annotations

import contextlib
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from deploy.local.supervisor import LISTENING, Child, ChildFailed
from load.machine import process_cpu_s
from load.serving import BenchError

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


class Server(Child):
    """A server under test (:class:`deploy.local.supervisor.Child`), timed from its spawn."""

    def __init__(self, name: str, args: list[str], log_path: Path, env: dict[str, str]) -> None:
        """``args`` start with ``-m MODULE``, as on a ``python`` command line."""
        if args[:1] != ["-m"]:
            raise ValueError("Server args must start with '-m MODULE'.")
        self.spawned = time.perf_counter()
        super().__init__(name, args[2:], env, log_path, module=args[1])

    def pin(self, cpu: int | None) -> None:
        if cpu is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(self.pid, {cpu})

    def wait_listening(self, timeout_s: float) -> float:
        """Wait for the "listening on" line; sets :attr:`url`; returns seconds since spawn."""
        try:
            self.url = self.wait_for(LISTENING, timeout_s).group(1)
        except ChildFailed as exc:
            raise BenchError(str(exc)) from None
        return time.perf_counter() - self.spawned

    def wait_ready(self, path: str, timeout_s: float) -> float:
        """Poll ``GET path`` until 200; returns seconds since spawn (the cold-start figure,
        so it polls every few ms rather than waiting on a log line)."""
        deadline = time.perf_counter() + timeout_s
        while True:
            if http_get(self.url + path, timeout_s=1.0)[0] == 200:
                return time.perf_counter() - self.spawned
            if self.process.poll() is not None:
                raise BenchError(f"{self.name} exited ({self.process.returncode}):\n{self.tail()}")
            if time.perf_counter() > deadline:
                raise BenchError(f"{self.name}: no {path} 200 in time:\n{self.tail()}")
            time.sleep(POLL_S)

    def tail(self, lines: int = 15) -> str:
        return "".join(self.lines[-lines:])

    def host_port(self) -> tuple[str, int]:
        parsed = urllib.parse.urlsplit(self.url)
        assert parsed.hostname is not None and parsed.port is not None
        return parsed.hostname, parsed.port

    def cpu_s(self) -> float:
        return process_cpu_s(self.pid)
