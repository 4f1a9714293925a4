"""The CLI refuses bad set-ups with a clear message and exit code 2, before serving."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploy.local.supervisor import LISTENING, Child, ChildFailed

pytestmark = pytest.mark.e2e


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_a_bad_corpus_is_refused_with_its_line_numbers(tmp_path: Path) -> None:
    """Bad corpus lines are listed with their numbers and the core does not start."""
    corpus = tmp_path / "terms.tsv"
    corpus.write_text("Good\t5\nno weight here\nBad\t-1\n", encoding="utf-8")
    result = run("core", "--port", "0", "--data-dir", str(tmp_path / "d"), "--corpus", str(corpus))
    assert result.returncode == 2
    assert "2 bad line(s), load refused" in result.stderr
    assert "line 2:" in result.stderr and "line 3:" in result.stderr


def test_tokens_are_required_off_loopback(tmp_path: Path) -> None:
    """Without tokens a node bound to every address refuses to start, naming the fix."""
    result = run("edge", "--host", "0.0.0.0", "--port", "0", "--core-url", "http://x:1")
    assert result.returncode == 2
    assert "LIGHTCONE_LINK_TOKEN" in result.stderr


def test_an_edge_needs_a_core_url() -> None:
    """A missing core URL is a configuration error, not a crash."""
    result = run("edge", "--port", "0")
    assert result.returncode == 2
    assert "LIGHTCONE_CORE_URL" in result.stderr


def test_a_child_that_exits_early_fails_its_wait_at_once(tmp_path: Path) -> None:
    """A supervised node that dies before its line is reported when it dies, not at the
    wait's deadline (the end of its log can be seen before its exit)."""
    started = time.monotonic()
    child = Child("edge", ["edge", "--port", "0"], {}, tmp_path / "edge.log")
    with pytest.raises(ChildFailed, match="exited with 2"):
        child.wait_for(LISTENING, 60)
    assert time.monotonic() - started < 30
    child.stop()
