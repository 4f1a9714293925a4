"""System programs that pip cannot install (Debian packages), for the tests that need them.

Where a program is missing the test is skipped, saying which package brings it; when
``LIGHTCONE_CI`` is set it fails instead: ``.ci/run`` installs every such package, so a
missing one there is a broken setup, not a reason to skip.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest


def program(name: str, package: str | None = None) -> str:
    """The path of ``name``; skips the test (fails it in CI) when it is not installed."""
    path = shutil.which(name)
    if path is None:
        missing(f"{name} is not installed: apt-get install {package or name}")
    return path


def missing(message: str) -> NoReturn:
    """Skip the test saying what is missing (fail it in CI, where nothing may be)."""
    if os.environ.get("LIGHTCONE_CI"):
        pytest.fail(message)
    pytest.skip(message)
