"""``python -m load.bench_nodes --quick``: every phase runs and prints its table.

A smoke, not a benchmark: it never checks what the figures are.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.nodes import SMALL_CORPUS
from tests.helpers.postgres import require_postgres
from tests.helpers.redis import require_redis

pytestmark = pytest.mark.e2e

CASES = ("SQLite, 1 node", "PostgreSQL, 1 node", "PostgreSQL, 2 nodes")
ROW = re.compile(r"^\| (SQLite, 1 node|PostgreSQL, [12] nodes?) \| \*\*[\d,]+\*\* \|", re.M)


def test_bench_nodes_quick_prints_every_table(tmp_path: Path) -> None:
    require_postgres()
    require_redis()
    plot = tmp_path / "nodes.png"
    done = subprocess.run(
        [sys.executable, "-m", "load.bench_nodes", "--quick", "--corpus", str(SMALL_CORPUS)]
        + ["--plot", str(plot)],
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert {m.group(1) for m in ROW.finditer(out)} == set(CASES), out
    for heading in ("## Write → every edge", "## Cursor move → receive", "## Failover"):
        assert heading in out, out
    # Every write reached the edge of the other node; cursor moves crossed nodes.
    assert re.search(r"^\| edge on the other node \| 10 \|", out, re.M), out
    assert re.search(r"^\| across nodes \(edge of B\) \| [1-9]", out, re.M), out
    assert re.search(r"^\| kill -9 \| [\d.]+ \| [\d.]+ \| 0 of 1 \|", out, re.M), out
    assert re.search(r"^\| black hole \| [\d.]+ \| [\d.]+ \| 0 of 1 \|", out, re.M), out
    assert plot.stat().st_size > 0
