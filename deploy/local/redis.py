"""A throwaway Redis: ``redis-server`` from the installed Debian ``redis-server`` package, in a
folder of its own, on a free loopback port, without persistence.

``lightcone up --cores 2`` shares one between its core nodes as their broker, and the tests'
fixtures (``tests/helpers/redis.py``) are built on :class:`Server`. :meth:`Server.start`
returns once the server answers ``PING`` (a deadline, never a fixed sleep).

Where the program is missing, :class:`Server` raises :class:`RedisMissing`, whose message says
what to install.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from deploy.local.postgres import free_port

START_TIMEOUT_S = 15
"""Longest wait for a started server to answer (a busy 2-core machine: well under a second)."""

INSTALL = "apt-get install redis-server"
"""What brings ``redis-server`` on Debian and Ubuntu."""


class RedisMissing(RuntimeError):
    """Redis cannot run here; the message says what to install."""


def program() -> str:
    """The path of ``redis-server``.

    Raises:
        RedisMissing: it is not on the ``PATH``.
    """
    found = shutil.which("redis-server")
    if found is None:
        raise RedisMissing(f"redis-server is not installed: {INSTALL}")
    return found


class Server:
    """One ``redis-server`` in a new folder: loopback only, no persistence, no password.

    :meth:`stop` and :meth:`start` again keep the same port (a test of a broker that comes
    back); :meth:`remove` deletes the folder.
    """

    def __init__(self, parent: Path | None = None) -> None:
        self.program = program()
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        # Absolute: redis-server enters --dir before it opens --logfile.
        self.folder = Path(tempfile.mkdtemp(prefix="lightcone-redis-", dir=parent)).resolve()
        self.log = self.folder / "redis.log"
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the server and wait until it answers.

        Raises:
            RuntimeError: it exited or did not answer within :data:`START_TIMEOUT_S`
                (its log's tail included).
        """
        argv = [self.program, "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.folder)]
        argv += ["--logfile", str(self.log), "--protected-mode", "yes"]
        self._process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log.read_text()[-500:] if self.log.exists() else ""
                raise RuntimeError(f"redis-server did not start on {self.port}: {tail}")
            time.sleep(0.02)  # polling a condition with a deadline

    def stop(self) -> None:
        """Stop the server now (its clients see their connections cut)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=START_TIMEOUT_S)
            if self._process.stderr is not None:
                self._process.stderr.close()
            self._process = None

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _answers(port: int) -> bool:
    """Whether a Redis on ``port`` answers ``PING`` now."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def running(parent: Path | None = None) -> Iterator[Server]:
    """A started :class:`Server`, stopped and removed on the way out."""
    server = Server(parent)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        server.remove()
