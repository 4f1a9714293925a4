"""``python -m load.bench_typos``, tiny: every query set runs and has its row.

A smoke, not a benchmark: it never checks what the figures are.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def test_bench_typos_prints_a_row_per_set() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "load.bench_typos", "--rounds", "1", "--count", "5"],
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line.split()[0] for line in done.stdout.splitlines()[2:]]
    assert rows == ["exact", "one", "two"]
