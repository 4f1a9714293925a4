"""Fixtures for every tier. The environment is isolated: no LIGHTCONE_ or FLY_ variable leaks in."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

pytest_plugins = ["tests.helpers.postgres", "tests.helpers.redis"]
"""Fixtures of a throwaway PostgreSQL (``postgres``, ``postgres_url``, ``own_postgres``) and
Redis (``redis_server``, ``redis_url``, ``own_redis``)."""

# Hypothesis profiles. ``ci`` (the default) is reproducible: the same examples every run, no
# example database. ``deep`` hunts longer with fresh examples: ``--hypothesis-profile=deep``
# (tests/fuzz/settings.py scales the fuzz tier's counts by its max_examples).
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("deep", max_examples=1000, derandomize=False, database=None)
settings.load_profile("ci")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(("LIGHTCONE_", "FLY_")) and name != "LIGHTCONE_CI":
            monkeypatch.delenv(name)
    yield
