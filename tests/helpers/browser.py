"""Headless Chromium for browser tests: Debian's ``chromium`` driven by Playwright.

Playwright never downloads a browser here (no ``playwright install``): it launches the
system's chromium by path. Without chromium the test is skipped, or fails when
``LIGHTCONE_CI`` is set (CI installs it, so a missing browser there is a broken setup).
The sync API is used: it cannot run inside an asyncio loop, so browser tests are plain
sync tests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from playwright.sync_api import Browser, Page, sync_playwright

from tests.helpers.system import program

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """The system chromium's path; skips the test (fails it in CI) when there is none."""
    return program("chromium")


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """A headless chromium, closed on exit."""
    path = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def page_errors(page: Page) -> list[str]:
    """The uncaught script errors of ``page``, as they happen (a test asserts none)."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors
