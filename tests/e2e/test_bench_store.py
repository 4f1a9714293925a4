"""``python -m load.bench_store``, tiny: every case runs and the table has its rows.

A smoke, not a benchmark: it never checks what the figures are.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.helpers.postgres import require_postgres

pytestmark = pytest.mark.e2e

ROW = re.compile(r"^\| (sqlite|postgres x1|postgres x2) \| (1|50) \| \*\*[\d,]+\*\* \|", re.M)


def test_bench_store_runs_every_case() -> None:
    require_postgres()
    done = subprocess.run(
        [sys.executable, "-m", "load.bench_store", "--seconds", "0.5", "--max-commits", "5"],
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {m.group(1, 2) for m in ROW.finditer(done.stdout)}
    assert rows == {(s, b) for s in ("sqlite", "postgres x1", "postgres x2") for b in ("1", "50")}
    assert "[6/6] postgres x2, batches of 50" in done.stdout
