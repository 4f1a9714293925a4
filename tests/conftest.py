"""Fixtures for every tier. The environment is isolated: no LIGHTCONE_ or FLY_ variable leaks in."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(("LIGHTCONE_", "FLY_")) and name != "LIGHTCONE_CI":
            monkeypatch.delenv(name)
    yield
