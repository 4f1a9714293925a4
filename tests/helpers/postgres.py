"""A throwaway PostgreSQL for the tests: ``initdb`` + ``pg_ctl`` from the installed Debian
``postgresql`` package, in a temporary folder, listening on an ephemeral loopback port.

One cluster per test session (:func:`postgres`), a fresh database per test
(:func:`postgres_url`); a test that stops the server (a fault) takes a cluster of its own
(:func:`own_postgres`). Where the binaries are missing the tests that need them are skipped,
saying what to install; with ``LIGHTCONE_CI`` set they fail (:func:`tests.helpers.system.program`).
``pg_ctl -w`` returns once the server accepts connections (or has stopped): no test sleeps.

PostgreSQL refuses to run as root: under root (a CI container) the server runs as the
``postgres`` user the Debian package creates, in a folder of its own under the system's
temporary folder (pytest's is private to root).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.helpers.system import missing, program

START_TIMEOUT_S = 30
"""Longest ``pg_ctl start`` / ``stop`` wait (a busy 2-core machine: a few seconds)."""


def bindir() -> Path:
    """The folder of ``initdb`` and ``pg_ctl``: ``pg_config --bindir``, else the newest
    ``/usr/lib/postgresql/*/bin``, else the ``PATH``; skips (fails in CI) when absent."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(out.stdout.strip()))
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    candidates += [Path(p) for p in reversed(versions)]
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    return Path(program("initdb", "postgresql")).parent


def free_port() -> int:
    """A loopback port free now (PostgreSQL cannot be told to pick one itself)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_user() -> str | None:
    """Who runs the server: ``None`` (this user), or ``postgres`` when this user is root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        missing("PostgreSQL refuses root and there is no postgres user: apt-get install postgresql")
    return "postgres"


class Cluster:
    """One PostgreSQL server in a new temporary folder (trust authentication, loopback only);
    :meth:`remove` deletes the folder."""

    def __init__(self) -> None:
        self.bin = bindir()
        self.user = server_user()
        self.folder = Path(tempfile.mkdtemp(prefix="lightcone-pg-"))
        if self.user is not None:
            shutil.chown(self.folder, self.user, self.user)
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self.port = free_port()
        self._names = itertools.count(1)
        self._run(
            [self.bin / "initdb", "-D", self.data, "-U", "postgres", "-A", "trust"]
            + ["-E", "UTF8", "--locale=C", "--no-sync"]
        )

    def _run(self, args: Sequence[object]) -> None:
        argv = [str(a) for a in args]
        done = subprocess.run(argv, capture_output=True, text=True, user=self.user, check=False)
        if done.returncode:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()}")

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def start(self) -> None:
        """Start the server on :attr:`port` (the same one after a :meth:`stop`)."""
        options = f"-p {self.port} -h 127.0.0.1 -k {self.data} -c fsync=off"
        self._ctl("start", "-o", options, "-l", str(self.log))

    def stop(self) -> None:
        """Stop the server now (fast shutdown: open connections are cut)."""
        self._ctl("stop", "-m", "fast")

    def _ctl(self, *args: str) -> None:
        self._run([self.bin / "pg_ctl", "-D", self.data, "-w", "-t", str(START_TIMEOUT_S), *args])

    def url(self, database: str = "postgres", password: str = "") -> str:
        secret = f":{password}" if password else ""
        return f"postgresql://postgres{secret}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """The URL of a new, empty database."""
        name = f"test_{next(self._names)}"
        self._run(
            [self.bin / "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
            + [name]
        )
        return self.url(name)


def running() -> Iterator[Cluster]:
    cluster = Cluster()
    try:
        cluster.start()
        try:
            yield cluster
        finally:
            with contextlib.suppress(RuntimeError):  # a test may leave it stopped
                cluster.stop()
    finally:
        cluster.remove()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """The session's PostgreSQL (started on first use)."""
    yield from running()


@pytest.fixture
def postgres_url(postgres: Cluster) -> str:
    """A fresh database on the session's PostgreSQL."""
    return postgres.new_database()


@pytest.fixture
def own_postgres() -> Iterator[Cluster]:
    """A PostgreSQL of this test's own, which it may stop and start again."""
    yield from running()
