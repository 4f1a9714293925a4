"""Supervision: the one way lightcone runs background work, and drops what it cannot process.

Two promises, for every process (see docs/operations.md, "Supervision"):

* **No silent wedge.** Every background coroutine runs under :func:`supervise`. When it
  raises, the exception is logged with its traceback and counted in
  ``lightcone_task_crashes_total{task=...}``; then, by the task's policy, it is restarted
  after an exponential, jittered backoff (:data:`RESTART`), or it ends and its owner reacts
  (:data:`STOP`: e.g. a connection's writer ends its connection), or the process exits with
  :data:`EXIT_CODE` so that its own supervisor (Fly.io, ``lightcone up``) starts it afresh
  (:data:`EXIT`). Cancellation is never a crash: it goes straight through.
* **No poison pill.** A queue or stream that meets one item it cannot process (an
  unencodable string, a value that makes a handler raise) drops that item alone with
  :meth:`Drops.drop`: logged, counted in ``lightcone_items_dropped_total{where=...}``, and
  the stream moves on to the next item.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Literal, TypeVar

from prometheus_client import CollectorRegistry, Counter

logger = logging.getLogger(__name__)

T = TypeVar("T")

Policy = Literal["restart", "stop", "exit"]
RESTART: Policy = "restart"
STOP: Policy = "stop"
EXIT: Policy = "exit"

EXIT_CODE = 70
"""Exit status of a process whose essential task crashed (``EX_SOFTWARE``)."""

RESTART_MIN_S = 0.1
"""First restart delay cap after a crash (doubles per crash in a row, full jitter)."""

RESTART_MAX_S = 5.0
"""Longest restart delay: a task crashing in a loop costs at most one run per this."""

HEALTHY_S = 30.0
"""A run that lasted this long before crashing counts as a first crash again (backoff reset)."""


def backoff_s(attempt: int, *, min_s: float, max_s: float, jitter: float) -> float:
    """Delay before retry ``attempt`` (0-based): exponential, capped, with full jitter.

    Args:
        attempt: failures so far.
        min_s: the first delay's cap.
        max_s: the largest delay.
        jitter: a random number in [0, 1) (injected so tests are deterministic).
    """
    return float(jitter * min(max_s, min_s * 2.0 ** min(attempt, 32)))


def crash_counter(registry: CollectorRegistry) -> Counter:
    """``lightcone_task_crashes_total{task}``, defined once for every node's registry."""
    return Counter(
        "lightcone_task_crashes",
        "Background task crashes (logged with a traceback), by task",
        ["task"],
        registry=registry,
    )


async def supervise(
    name: str,
    factory: Callable[[], Awaitable[None]],
    crashes: Counter,
    *,
    policy: Policy = RESTART,
    min_s: float = RESTART_MIN_S,
    max_s: float = RESTART_MAX_S,
    jitter: Callable[[], float] = random.random,
) -> None:
    """Run ``await factory()`` until it returns, handling crashes by ``policy``.

    A normal return ends supervision. ``factory`` is called again for each restart, so it
    must build a fresh coroutine (pass the bound method, not a coroutine object).
    """
    attempt = 0
    while True:
        started = time.monotonic()
        try:
            await factory()
            return
        except Exception:
            logger.exception("task %s crashed", name)
            crashes.labels(name).inc()
        if policy == STOP:
            return
        if policy == EXIT:
            exit_process(f"task {name} crashed: exiting so that the process is restarted")
        if time.monotonic() - started >= HEALTHY_S:
            attempt = 0
        delay = backoff_s(attempt, min_s=min_s, max_s=max_s, jitter=jitter())
        attempt += 1
        logger.warning("restarting task %s in %.2f s", name, delay)
        await asyncio.sleep(delay)


def spawn(
    name: str,
    factory: Callable[[], Awaitable[None]],
    crashes: Counter,
    *,
    policy: Policy = RESTART,
) -> asyncio.Task[None]:
    """:func:`supervise` ``factory`` in a task of its own, named ``name``."""
    return asyncio.create_task(supervise(name, factory, crashes, policy=policy), name=name)


async def stop(*tasks: asyncio.Task[None]) -> None:
    """Cancel ``tasks`` and wait for them to end (for lifespans and sessions)."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def exit_process(reason: str) -> None:
    """Log ``reason`` and end the process at once with :data:`EXIT_CODE`."""
    logger.critical(reason)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(EXIT_CODE)


class Drops:
    """``lightcone_items_dropped_total{where}``: items a queue or stream dropped alone."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.counter = Counter(
            "lightcone_items_dropped",
            "Items a queue or stream could not process and dropped alone, by where",
            ["where"],
            registry=registry,
        )

    def drop(self, where: str, what: object, exc: BaseException | None = None) -> None:
        """Log (one line: the item and why) and count one dropped item; the caller moves on."""
        text = repr(what)
        if len(text) > 200:
            text = text[:200] + "..."
        why = f" ({exc!r})" if exc is not None else ""
        logger.error("%s: dropped an item it cannot process%s: %s", where, why, text)
        self.counter.labels(where).inc()

    def keep(self, where: str, items: Iterable[T], check: Callable[[T], object]) -> list[T]:
        """The ``items`` for which ``check`` does not raise; each other one is dropped alone."""
        kept: list[T] = []
        for item in items:
            try:
                check(item)
            except Exception as exc:
                self.drop(where, item, exc)
                continue
            kept.append(item)
        return kept
