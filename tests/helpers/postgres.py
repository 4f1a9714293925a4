"""The tests' throwaway PostgreSQL: pytest fixtures on :mod:`deploy.local.postgres`.

One cluster per test session (:func:`postgres`), a fresh database per test
(:func:`postgres_url`); a test that stops the server (a fault) takes a cluster of its own
(:func:`own_postgres`). Where the binaries (or, under root, the ``postgres`` user) are
missing the tests that need them are skipped, saying what to install; with ``LIGHTCONE_CI``
set they fail (:func:`tests.helpers.system.missing`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from deploy.local.postgres import (
    Cluster,
    PostgresMissing,
    bindir,
    free_port,
    running,
    server_user,
)
from tests.helpers.system import missing

__all__ = [
    "Cluster",
    "free_port",
    "own_postgres",
    "postgres",
    "postgres_url",
    "require_postgres",
]


def require_postgres() -> None:
    """Skip (fail in CI) unless a cluster can run here: for tests whose process under test
    starts its own (``lightcone up --store postgres``, ``load.bench_store``)."""
    try:
        bindir()
        server_user()
    except PostgresMissing as exc:
        missing(str(exc))


def _running() -> Iterator[Cluster]:
    """A started cluster for a fixture; skips (fails in CI) where PostgreSQL is missing."""
    with contextlib.ExitStack() as stack:
        try:
            cluster = stack.enter_context(running())
        except PostgresMissing as exc:
            missing(str(exc))
        yield cluster


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """The session's PostgreSQL (started on first use)."""
    yield from _running()


@pytest.fixture
def postgres_url(postgres: Cluster) -> str:
    """A fresh database on the session's PostgreSQL."""
    return postgres.new_database("test")


@pytest.fixture
def own_postgres() -> Iterator[Cluster]:
    """A PostgreSQL of this test's own, which it may stop and start again."""
    yield from _running()
