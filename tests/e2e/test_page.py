"""The demo page in a real browser (headless chromium) against ``lightcone up``.

Suggestions per keystroke, a logged search, a second browser's cursor arriving through
another edge and the core (both pages join with room tokens from the demo), and the stale
marker through a partition and back after heal, with the link shown as the edge knows it:
``suspect`` once the core's heartbeats stop, ``down`` once the link times out.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from playwright.sync_api import Page, ViewportSize, expect

from tests.helpers.browser import chromium, page_errors
from tests.helpers.postgres import require_postgres
from tests.helpers.redis import require_redis

pytestmark = pytest.mark.e2e

FAST_LINK = {
    # Stale after 1 s instead of 3; a cut link is suspect after 0.6 s of silence (two
    # heartbeats), closed after 3 s (long enough for the 1 s status poll to show suspect),
    # and comes back fast.
    "LIGHTCONE_STALE_AFTER_MS": "1000",
    "LIGHTCONE_HEARTBEAT_S": "0.3",
    "LIGHTCONE_LINK_TIMEOUT_S": "3",
    "LIGHTCONE_RECONNECT_MAX_S": "0.5",
}
READY_LINE = "Ctrl-C stops everything"
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
UNREACHABLE = re.compile(r"\bunreachable\b")


def _follow(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)
    lines.put("")  # end of output


@contextlib.contextmanager
def running_demo(tmp_path: Path, *args: str) -> Iterator[dict[str, Any]]:
    """``lightcone up`` with a syd and an lhr edge (plus the central iad one) and a Sydney
    user, and ``args``; yields the status file's topology. Always stopped with SIGINT (killed
    on timeout)."""
    status_file = tmp_path / "status.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shared.cli",
            "up",
            "--edges",
            "syd,lhr",
            "--users",
            "syd",
            "--data-dir",
            str(tmp_path / "demo"),
            "--status-file",
            str(status_file),
            *args,
        ],
        env={**os.environ, **FAST_LINK},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_follow, args=(process.stdout, lines), daemon=True)
    reader.start()
    seen: list[str] = []
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while not seen or READY_LINE not in seen[-1]:
            try:
                seen.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"lightcone up not ready in 60 s: {seen}") from None
            assert seen[-1], f"lightcone up ended early: {''.join(seen)}"
        topology = json.loads(status_file.read_text())
        pids = [node["pid"] for node in topology["nodes"]]
        yield topology
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()  # and the nodes it started (each in its own session)
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            process.wait()
        reader.join(timeout=5)
        process.stdout.close()
    assert process.returncode == 0, "".join(seen)


def entry(topology: dict[str, Any], kind: str) -> dict[str, Any]:
    entries: list[dict[str, Any]] = topology["entries"]
    (found,) = [e for e in entries if e["user_region"] == "syd" and e["kind"] == kind]
    return found


def own_member_id(page: Page) -> str:
    me = page.locator("[data-testid=cursor].self")
    expect(me).to_have_count(1, timeout=10_000)
    member_id = me.get_attribute("data-member-id")
    assert member_id
    return member_id


def point_at(page: Page, fx: float, fy: float) -> tuple[int, int]:
    """Move the pointer over the canvas to fraction (fx, fy); returns the 0..10000 position."""
    box = page.get_by_test_id("canvas").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy, steps=6)
    return round(fx * 10000), round(fy * 10000)


def wait_for_cursor(page: Page, member_id: str, x: int, y: int) -> None:
    page.wait_for_function(
        """([id, x, y]) => {
            const c = document.querySelector(`[data-testid=cursor][data-member-id="${id}"]`);
            return c && Math.abs(c.dataset.x - x) <= 60 && Math.abs(c.dataset.y - y) <= 60;
        }""",
        arg=[member_id, x, y],
        timeout=10_000,
    )


def test_demo_page_in_a_browser(tmp_path: Path) -> None:
    started = time.monotonic()
    with chromium() as browser, running_demo(tmp_path) as topology:
        near, central = entry(topology, "edge"), entry(topology, "central")
        control = topology["control_url"]
        page = browser.new_context(viewport=VIEWPORT).new_page()
        errors = page_errors(page)
        page.goto(f"{near['url']}/")
        expect(page.get_by_test_id("node-region")).to_contain_text("syd", timeout=10_000)
        expect(page.get_by_test_id("link-state")).to_have_text("up", timeout=10_000)
        expect(page.get_by_test_id("link-heard")).to_contain_text("last heard from the core")
        expect(page.get_by_test_id("node-core")).to_have_text("core-1")
        expect(page.get_by_test_id("core-nodes")).to_contain_text("edges iad syd lhr")

        # Suggestions per keystroke, with the answer's freshness; Enter logs a search.
        search = page.get_by_test_id("search")
        search.press_sequentially("sao pa", delay=30)
        expect(page.get_by_test_id("suggestion").first).to_contain_text("São Paulo")
        expect(page.get_by_test_id("suggest-meta")).to_contain_text("tolerant · fresh · syd")
        search.press("Enter")
        expect(page.get_by_test_id("search-row").first).to_contain_text(
            "committed v", timeout=10_000
        )

        # A typo still finds the city, marked discreetly as a typo match.
        search.fill("")
        search.press_sequentially("sydny", delay=30)
        first = page.get_by_test_id("suggestion").first
        expect(first).to_contain_text("Sydney")
        expect(first.get_by_test_id("suggestion-match")).to_have_attribute(
            "title", "matched with a typo"
        )

        # Another name finds its city, and the page shows which name matched beside it.
        search.fill("")
        search.press_sequentially("москва", delay=30)
        first = page.get_by_test_id("suggestion").first
        expect(first.locator(".term")).to_have_text("Moscow")
        expect(first.get_by_test_id("suggestion-match")).to_have_text("Москва")

        # A second browser, in Sydney too but through the central edge (iad): its cursor
        # reaches the first page through the core, with its region badge.
        other = browser.new_context(viewport=VIEWPORT).new_page()
        other.on("pageerror", lambda exc: errors.append(str(exc)))
        other.goto(f"{central['url']}/")
        other_id = own_member_id(other)
        x, y = point_at(other, 0.62, 0.35)
        wait_for_cursor(page, other_id, x, y)
        remote = page.locator(f'[data-testid=cursor][data-member-id="{other_id}"]')
        expect(remote).to_contain_text("iad")
        x, y = point_at(other, 0.4, 0.7)
        wait_for_cursor(page, other_id, x, y)
        point_at(page, 0.25, 0.55)
        search.fill("")
        search.press_sequentially("sao pa", delay=30)  # for the screenshot
        expect(page.get_by_test_id("stale")).to_be_hidden()

        # Partition syd: the page shows the stale marker. The link is never shown "up" beside
        # STALE: it is suspect (silent), then down. The edge mesh still reaches iad: the
        # remote cursor keeps moving and the page says so; once the mesh legs are cut too,
        # the remote cursor is greyed.
        httpx.post(f"{control}/partition/syd").raise_for_status()
        link = page.get_by_test_id("link-state")
        expect(link).to_have_text("suspect", timeout=10_000)
        expect(page.get_by_test_id("link-heard")).to_have_class(re.compile(r"\bbad\b"))
        expect(page.get_by_test_id("stale")).to_be_visible(timeout=10_000)
        assert link.text_content() != "up"
        room_info = page.get_by_test_id("room-info")
        expect(room_info).to_contain_text("moves still flow directly with iad", timeout=10_000)
        x, y = point_at(other, 0.5, 0.5)
        wait_for_cursor(page, other_id, x, y)
        expect(remote).not_to_have_class(UNREACHABLE)
        httpx.post(f"{control}/mesh-partition/syd").raise_for_status()
        expect(remote).to_have_class(UNREACHABLE, timeout=10_000)
        expect(room_info).not_to_contain_text("directly")
        shot = tmp_path / "demo-page.png"
        page.screenshot(path=str(shot))
        print(f"screenshot of the demo page (partitioned): {shot}")
        expect(link).to_have_text("down", timeout=10_000)
        expect(page.get_by_test_id("stale-text")).to_contain_text("has not heard from the core")

        # Heal: the marker clears, the remote cursor is reachable again.
        httpx.post(f"{control}/mesh-heal/syd").raise_for_status()
        httpx.post(f"{control}/heal/syd").raise_for_status()
        expect(page.get_by_test_id("stale")).to_be_hidden(timeout=15_000)
        expect(page.get_by_test_id("link-state")).to_have_text("up", timeout=10_000)
        expect(remote).not_to_have_class(UNREACHABLE, timeout=10_000)
        expect(page.get_by_test_id("room-info")).not_to_contain_text("refused")
        assert not errors, errors
    print(f"demo page test took {time.monotonic() - started:.1f} s")


def test_the_page_stops_and_starts_a_core_node_and_shows_the_edge_move(tmp_path: Path) -> None:
    """With two core nodes, the page names the one its edge is on; stopping that one from
    the page moves the edge to the other, and the page starts it again."""
    require_postgres()
    require_redis()
    with (
        chromium() as browser,
        running_demo(tmp_path, "--cores", "2", "--store", "postgres") as topology,
    ):
        page = browser.new_context(viewport=VIEWPORT).new_page()
        errors = page_errors(page)
        page.goto(f"{entry(topology, 'edge')['url']}/")
        on = page.get_by_test_id("node-core")
        expect(on).to_have_text(re.compile(r"^core-[12]$"), timeout=10_000)
        expect(page.get_by_test_id("core-node")).to_have_count(2)
        first = on.text_content()
        other = "core-2" if first == "core-1" else "core-1"
        row = page.locator(f'[data-testid=core-node][data-name="{first}"]')
        expect(row.get_by_test_id("core-edges")).to_contain_text("syd", timeout=10_000)

        row.get_by_test_id("core-stop").click()
        expect(row.get_by_test_id("core-state")).to_have_text("stopped", timeout=15_000)
        expect(on).to_have_text(other, timeout=15_000)
        expect(page.get_by_test_id("link-state")).to_have_text("up", timeout=10_000)
        other_row = page.locator(f'[data-testid=core-node][data-name="{other}"]')
        expect(other_row.get_by_test_id("core-edges")).to_contain_text("syd", timeout=10_000)
        shot = tmp_path / "demo-page-cores.png"
        page.screenshot(path=str(shot))
        print(f"screenshot of the demo page (a core node stopped): {shot}")

        row.get_by_test_id("core-start").click()
        expect(row.get_by_test_id("core-state")).to_have_text("running", timeout=60_000)
        expect(row.get_by_test_id("core-stop")).to_be_visible()
        assert not errors, errors
