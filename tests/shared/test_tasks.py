"""Supervision: a crashed task is logged, counted and restarted (or stopped, or the process
exits); a poison item is dropped alone."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import textwrap

import pytest
from prometheus_client import CollectorRegistry

from shared.tasks import EXIT_CODE, STOP, Drops, crash_counter, spawn, stop, supervise


def crashes_of(registry: CollectorRegistry, task: str) -> float:
    value = registry.get_sample_value("lightcone_task_crashes_total", {"task": task})
    return value or 0.0


async def test_a_crashed_task_is_logged_counted_and_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two crashes, then a clean return: two tracebacks, two counts, three runs."""
    registry = CollectorRegistry()
    runs: list[int] = []

    async def flaky() -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            raise ValueError(f"boom {len(runs)}")

    with caplog.at_level(logging.ERROR, logger="shared.tasks"):
        await supervise("flaky", flaky, crash_counter(registry), jitter=lambda: 0.0)
    assert runs == [0, 1, 2]
    assert crashes_of(registry, "flaky") == 2
    crashed = [r for r in caplog.records if r.getMessage() == "task flaky crashed"]
    assert len(crashed) == 2 and all(r.exc_info for r in crashed)


async def test_restarts_back_off() -> None:
    """The delay before each restart grows (full jitter at its top here): 0.01, 0.02, 0.04."""
    registry = CollectorRegistry()
    loop = asyncio.get_running_loop()
    starts: list[float] = []

    async def crashing() -> None:
        starts.append(loop.time())
        if len(starts) < 4:
            raise RuntimeError("again")

    await supervise(
        "crashing", crashing, crash_counter(registry), min_s=0.01, max_s=1.0, jitter=lambda: 0.999
    )
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert gaps == sorted(gaps)
    assert gaps[0] >= 0.009 and gaps[2] >= 0.039


async def test_the_stop_policy_ends_after_one_crash() -> None:
    """policy=STOP: logged and counted, not restarted (the owner reacts)."""
    registry = CollectorRegistry()
    runs: list[int] = []

    async def once() -> None:
        runs.append(1)
        raise KeyError("x")

    task = spawn("once", once, crash_counter(registry), policy=STOP)
    await task
    assert runs == [1] and crashes_of(registry, "once") == 1


async def test_cancellation_is_not_a_crash() -> None:
    """Cancelling a supervised task ends it at once, uncounted."""
    registry = CollectorRegistry()
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    task = spawn("forever", forever, crash_counter(registry))
    await started.wait()
    await stop(task)
    assert task.cancelled()
    assert crashes_of(registry, "forever") == 0


def test_the_exit_policy_ends_the_process_non_zero() -> None:
    """policy=EXIT: the process exits with EXIT_CODE so its own supervisor restarts it."""
    code = textwrap.dedent(
        """
        import asyncio
        from prometheus_client import CollectorRegistry
        from shared.tasks import EXIT, crash_counter, supervise

        async def broken():
            raise RuntimeError("essential task broke")

        asyncio.run(supervise("essential", broken, crash_counter(CollectorRegistry()), policy=EXIT))
        print("not reached")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == EXIT_CODE
    assert "not reached" not in done.stdout
    assert "task essential crashed: exiting" in done.stderr


def test_keep_drops_each_poison_item_alone(caplog: pytest.LogCaptureFixture) -> None:
    """Items whose check raises are dropped one by one, logged and counted; the rest kept."""
    registry = CollectorRegistry()
    drops = Drops(registry)
    with caplog.at_level(logging.ERROR, logger="shared.tasks"):
        kept = drops.keep("test", ["a", "\udfff", "b", "c\ud800"], lambda s: s.encode())
    assert kept == ["a", "b"]
    assert registry.get_sample_value("lightcone_items_dropped_total", {"where": "test"}) == 2
    assert len([r for r in caplog.records if "dropped an item" in r.getMessage()]) == 2
