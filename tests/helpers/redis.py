"""The tests' throwaway Redis: pytest fixtures on :mod:`deploy.local.redis`.

One server per test session (:func:`redis_server`); a test that stops the server (a fault)
takes one of its own (:func:`own_redis`). A test on the session's server uses its own
database number or key names, so tests do not see each other's keys. Where ``redis-server`` is
missing the tests that need it are skipped, saying what to install; with ``LIGHTCONE_CI`` set
they fail (:func:`tests.helpers.system.missing`).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator

import pytest

from deploy.local.redis import RedisMissing, Server, program, running
from tests.helpers.system import missing

__all__ = ["Server", "own_redis", "redis_server", "redis_url", "require_redis"]

_databases = itertools.cycle(range(1, 16))


def require_redis() -> None:
    """Skip (fail in CI) unless ``redis-server`` can run here: for tests whose process under
    test starts its own (``lightcone up --cores 2``)."""
    try:
        program()
    except RedisMissing as exc:
        missing(str(exc))


def _running() -> Iterator[Server]:
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(running())
        except RedisMissing as exc:
            missing(str(exc))
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Server]:
    """The session's Redis (started on first use)."""
    yield from _running()


@pytest.fixture
def redis_url(redis_server: Server) -> str:
    """A URL on the session's Redis, with a database number of its own (1..15, reused in
    turn: a test flushes nothing, so keys it writes are namespaced by what it starts)."""
    return f"redis://127.0.0.1:{redis_server.port}/{next(_databases)}"


@pytest.fixture
def own_redis() -> Iterator[Server]:
    """A Redis of this test's own, which it may stop and start again."""
    yield from _running()
