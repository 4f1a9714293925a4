"""A throwaway PoP: one ``nginx`` (Debian's ``nginx-light``) with ``proxy_cache`` in front of
one user entry of the demo, in a folder of its own (config, pid, logs, cache and temp files), on
a free loopback port, started and stopped by its PID.

``lightcone up --pop`` puts one in front of each user city's entry to its nearest edge (user →
PoP → latency proxy → regional edge → core); the PoP sits with the user, so nothing delays the
user → PoP leg. The tests (``tests/e2e/test_pop.py``) and ``python -m load.bench_pop`` use
:class:`Pop` directly. :meth:`Pop.start` returns once nginx answers (a deadline, never a fixed
sleep). Where the program is missing, :class:`Pop` raises :class:`NginxMissing`, whose message
says what to install.

What the cache does is decided by the edge's answers, not here: ``GET /suggest`` says
``Cache-Control`` by level (:mod:`edge_node.suggest.caching`), every other answer says nothing
and is not stored (no ``proxy_cache_valid``). The choices, in :func:`config`:

* ``proxy_cache_use_stale`` is **off**: its parameters win over the answers'
  ``stale-while-revalidate`` / ``stale-if-error`` and have no time limit, so with it a PoP could
  serve an entry for ever while the edge is down. Off, the edge's settings bound every stale
  answer (``LIGHTCONE_HTTP_CACHE_SWR_S``, ``..._SIE_S``).
* ``proxy_cache_background_update on``: within ``stale-while-revalidate`` the user gets the
  stale entry at once (``X-Cache-Status: STALE``, or ``UPDATING`` while a refresh is on its way)
  and one subrequest refreshes it, so a hot key never makes users wait on its expiry.
* ``proxy_cache_lock`` is **off**: nginx cannot tell from a request whether its answer will be
  stored, so a lock would queue identical strict and session reads behind one another (each
  waits for the one before, then goes to the edge anyway). Without it only a key's very first
  miss can reach the edge several times at once; its refreshes are one background update.
* ``proxy_cache_revalidate on``: an expired entry is refreshed with ``If-None-Match``, and the
  edge's ``304`` (``X-Cache-Status: REVALIDATED``) costs no body.
* ``proxy_pass_header Date``: the user sees the edge's ``Date`` (when the answer was made), from
  the cache too, so ``age_ms + (now - Date)`` is the data's true age (docs/protocol.md).
* Bounds: :data:`KEYS_ZONE_MB` of keys (about 8,000 per MB), at most :data:`MAX_SIZE_MB` of
  answers on disk (nginx's cache manager evicts the least recently used beyond it), entries
  unused for :data:`INACTIVE` dropped whatever their freshness.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from deploy.local.postgres import free_port

START_TIMEOUT_S = 15
"""Longest wait for a started nginx to accept connections (well under a second here)."""

STOP_TIMEOUT_S = 10
"""Longest wait for nginx to exit after SIGTERM before it is killed."""

INSTALL = "apt-get install nginx-light"
"""What brings ``nginx`` on Debian and Ubuntu."""

KEYS_ZONE_MB = 1
"""Shared memory for cache keys: about 8,000 keys (answers) per megabyte."""

MAX_SIZE_MB = 64
"""Most disk the cached answers may take (an answer is about 1 KB)."""

INACTIVE = "10m"
"""An entry nobody asked for this long is removed, fresh or not."""

CONNECT_TIMEOUT_S = 2
"""Longest wait to connect to the edge entry; then the PoP answers stale within
``stale-if-error``, or 502."""

READ_TIMEOUT_S = 5
"""Longest wait for the edge's answer: over a strict read's deadline at the edge
(``LIGHTCONE_STRICT_TIMEOUT_MS``, 1.5 s) plus the farthest user's RTT; then as above (504)."""

WS_READ_TIMEOUT_S = 3600
"""A websocket may be idle this long through the PoP (the page's rooms and suggestions)."""


class NginxMissing(RuntimeError):
    """nginx cannot run here; the message says what to install."""


def program() -> str:
    """The path of ``nginx`` (on the ``PATH`` or in ``/usr/sbin``, where Debian puts it).

    Raises:
        NginxMissing: it is not installed.
    """
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if found is None:
        raise NginxMissing(f"nginx is not installed: {INSTALL}")
    return found


def config(folder: Path, port: int, upstream: str) -> str:
    """The nginx configuration of a PoP on ``port`` in front of ``upstream`` (host:port)."""
    # Run as root (a container), nginx's workers would switch to nobody and could not write
    # the cache in this user's folder: keep them as this user.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    tmp = folder / "tmp"
    return f"""{user}worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format pop '$remote_addr [$time_local] "$request" $status $body_bytes_sent '
                   '$upstream_cache_status $request_time';
    access_log {folder}/access.log pop;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    proxy_cache_path {folder}/cache levels=1:2 keys_zone=pop:{KEYS_ZONE_MB}m
                     max_size={MAX_SIZE_MB}m inactive={INACTIVE} use_temp_path=off;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
    upstream edge {{ server {upstream}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        # Here, not per location: a location with a proxy_set_header of its own would inherit
        # none of these.
        proxy_http_version 1.1;
        proxy_set_header Host $http_host;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_pass_header Date;
        add_header X-Cache-Status $upstream_cache_status always;
        location /ws {{
            proxy_pass http://edge;
            proxy_read_timeout {WS_READ_TIMEOUT_S}s;
            proxy_send_timeout {WS_READ_TIMEOUT_S}s;
        }}
        location / {{
            proxy_pass http://edge;
            proxy_connect_timeout {CONNECT_TIMEOUT_S}s;
            proxy_read_timeout {READ_TIMEOUT_S}s;
            proxy_cache pop;
            proxy_cache_revalidate on;
            proxy_cache_background_update on;
            proxy_cache_lock off;
            proxy_cache_use_stale off;
        }}
    }}
}}
"""


class Pop:
    """One nginx PoP in a new folder under ``parent``, in front of ``upstream_url``
    (``http://host:port``). :meth:`stop` and :meth:`start` again keep the port and the
    cache; :meth:`remove` deletes the folder."""

    def __init__(self, upstream_url: str, parent: Path | None = None, name: str = "pop") -> None:
        self.program = program()
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix=f"lightcone-{name}-", dir=parent)).resolve()
        self.port = free_port()
        self.upstream = upstream_url.removeprefix("http://").rstrip("/")
        self.conf = self.folder / "nginx.conf"
        self.error_log = self.folder / "error.log"
        for sub in ("cache", "tmp"):
            (self.folder / sub).mkdir()
        self.conf.write_text(config(self.folder, self.port, self.upstream))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start nginx (its master process in the foreground, ``daemon off``) and wait until
        it accepts connections.

        Raises:
            RuntimeError: it exited or did not listen within :data:`START_TIMEOUT_S` (its
                error log's tail included).
        """
        argv = [self.program, "-p", str(self.folder), "-c", str(self.conf)]
        argv += ["-e", str(self.error_log)]
        self._process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _listening(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                stderr = self._process.stderr.read().decode() if self._process.stderr else ""
                self.stop()
                tail = self.error_log.read_text()[-500:] if self.error_log.exists() else ""
                raise RuntimeError(f"nginx did not start on {self.port}: {stderr}{tail}")
            time.sleep(0.02)  # polling a condition with a deadline

    def stop(self) -> None:
        """Stop nginx by its PID: SIGTERM (fast shutdown, workers included), SIGKILL after
        :data:`STOP_TIMEOUT_S`."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=STOP_TIMEOUT_S)
        if self._process.stderr is not None:
            self._process.stderr.close()
        self._process = None

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def running(upstream_url: str, parent: Path | None = None, name: str = "pop") -> Iterator[Pop]:
    """A started :class:`Pop`, stopped and removed on the way out."""
    pop = Pop(upstream_url, parent, name)
    try:
        pop.start()
        yield pop
    finally:
        pop.stop()
        pop.remove()
