"""Wait for a condition with a deadline (never a bare sleep)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

POLL_S = 0.02
"""Between two checks of a condition that has no event to wait on (an HTTP answer)."""


async def eventually(check: Callable[[], Awaitable[T | None]], timeout_s: float, what: str) -> T:
    """The first truthy result of ``check()``, or AssertionError after ``timeout_s``."""
    last: object = None
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                last = await check()
                if last:
                    return last
                await asyncio.sleep(POLL_S)
    except TimeoutError:
        raise AssertionError(f"not within {timeout_s} s: {what} (last: {last!r})") from None


async def until_equal(
    get: Callable[[], Awaitable[T | None]], expected: T, timeout_s: float
) -> None:
    """Wait until ``await get()`` equals ``expected``."""

    async def check() -> bool:
        return await get() == expected

    await eventually(check, timeout_s, f"expected {expected!r}")
