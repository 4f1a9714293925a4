"""A throwaway PostgreSQL: ``initdb`` + ``pg_ctl`` from the installed Debian ``postgresql``
package, in a folder of its own, listening on a free loopback port with trust authentication.

``lightcone up --store postgres`` runs the core on one, ``python -m load.bench_store`` measures
one, and the tests' fixtures (``tests/helpers/postgres.py``) are built on :class:`Cluster`.
``pg_ctl -w`` returns once the server accepts connections (or has stopped): nobody sleeps.

PostgreSQL refuses to run as root: under root (a CI container) the server runs as the
``postgres`` user the Debian package creates, in a folder under the system's temporary folder
(a folder under root's home may not be reachable by that user).

Where the programs (or, under root, the ``postgres`` user) are missing, :class:`Cluster`
raises :class:`PostgresMissing`, whose message says what to install.
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

START_TIMEOUT_S = 30
"""Longest ``pg_ctl start`` / ``stop`` wait (a busy 2-core machine: a few seconds)."""

DEBIAN_BINDIRS = "/usr/lib/postgresql/*/bin"
"""Where Debian's ``postgresql-NN`` packages put ``initdb`` and ``pg_ctl`` (not on ``PATH``)."""

INSTALL = "apt-get install postgresql"
"""What brings the programs (and the ``postgres`` user) on Debian and Ubuntu."""


class PostgresMissing(RuntimeError):
    """PostgreSQL cannot run here; the message says what to install."""


def bindir(pattern: str = DEBIAN_BINDIRS) -> Path:
    """The folder of ``initdb`` and ``pg_ctl``: ``pg_config --bindir``, else the newest
    folder matching ``pattern``, else the ``PATH``.

    Raises:
        PostgresMissing: none has both programs.
    """
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(out.stdout.strip()))
    versions = sorted(glob.glob(pattern), key=lambda p: int(Path(p).parent.name))
    candidates += [Path(p) for p in reversed(versions)]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    raise PostgresMissing(f"PostgreSQL's initdb and pg_ctl are not installed: {INSTALL}")


def free_port() -> int:
    """A loopback port free now (PostgreSQL cannot be told to pick one itself)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_user() -> str | None:
    """Who runs the server: ``None`` (this user), or ``postgres`` when this user is root.

    Raises:
        PostgresMissing: root, and there is no ``postgres`` user.
    """
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresMissing(
            f"PostgreSQL refuses to run as root and there is no postgres user: {INSTALL}"
        ) from None
    return "postgres"


class Cluster:
    """One PostgreSQL server in a new folder (trust authentication, loopback only).

    ``parent`` is where the folder goes (default: the system's temporary folder; always
    there under root, see the module docstring). :meth:`remove` deletes it.

    Raises:
        PostgresMissing: the programs or the ``postgres`` user are missing.
        RuntimeError: ``initdb`` failed (its message included).
    """

    def __init__(self, parent: Path | None = None) -> None:
        self.bin = bindir()
        self.user = server_user()
        if parent is not None and self.user is None:
            parent.mkdir(parents=True, exist_ok=True)
        else:
            parent = None
        self.folder = Path(tempfile.mkdtemp(prefix="lightcone-pg-", dir=parent))
        if self.user is not None:
            shutil.chown(self.folder, self.user, self.user)
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self.port = free_port()
        self._names = itertools.count(1)
        try:
            self._run(
                [self.bin / "initdb", "-D", self.data, "-U", "postgres", "-A", "trust"]
                + ["-E", "UTF8", "--locale=C", "--no-sync"]
            )
        except BaseException:
            self.remove()
            raise

    def _run(self, args: Sequence[object]) -> None:
        argv = [str(a) for a in args]
        done = subprocess.run(argv, capture_output=True, text=True, user=self.user, check=False)
        if done.returncode:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()}")

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def start(self, *, fsync: bool = False) -> None:
        """Start the server on :attr:`port` (the same one after a :meth:`stop`).

        ``fsync`` off (the default) suits throwaway data: commits do not wait for the disk.
        A benchmark of commits turns it on, as a real server runs.
        """
        options = f"-p {self.port} -h 127.0.0.1 -k {self.data} -c fsync={'on' if fsync else 'off'}"
        self._ctl("start", "-o", options, "-l", str(self.log))

    def stop(self) -> None:
        """Stop the server now (fast shutdown: open connections are cut)."""
        self._ctl("stop", "-m", "fast")

    def _ctl(self, *args: str) -> None:
        self._run([self.bin / "pg_ctl", "-D", self.data, "-w", "-t", str(START_TIMEOUT_S), *args])

    @property
    def pid(self) -> int | None:
        """The running server's process id (the first line of ``postmaster.pid``), or
        ``None`` when it is not running."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.data / "postmaster.pid").read_text().splitlines()[0])
        return None

    def url(self, database: str = "postgres", password: str = "") -> str:
        secret = f":{password}" if password else ""
        return f"postgresql://postgres{secret}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create the empty database ``name``; returns its URL."""
        self._run(
            [self.bin / "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
            + [name]
        )
        return self.url(name)

    def new_database(self, prefix: str = "db") -> str:
        """The URL of a new, empty database (``<prefix>_1``, ``<prefix>_2``, ...)."""
        return self.create_database(f"{prefix}_{next(self._names)}")


@contextlib.contextmanager
def running(parent: Path | None = None, *, fsync: bool = False) -> Iterator[Cluster]:
    """A started :class:`Cluster`, stopped and removed on the way out (whatever happens
    inside, a server that is already stopped included)."""
    cluster = Cluster(parent)
    try:
        cluster.start(fsync=fsync)
        try:
            yield cluster
        finally:
            with contextlib.suppress(RuntimeError):  # it may be stopped already
                cluster.stop()
    finally:
        cluster.remove()
