"""The device rung in a real browser (headless chromium) on a real core and edge.

The page loads the edge's pack and answers keystrokes of one and two folded characters
itself, with no request to the edge (every HTTP request and websocket frame is counted); a
longer prefix goes to the edge; once the flag goes strict, the device rung is off and the core
answers (``core_trip``). The page's folding agrees with the edge's wherever it folds at all.
Through a real nginx PoP, the page asks over HTTP and a repeated keystroke is the PoP's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, Request, WebSocket, expect

from deploy.local.pop import running
from shared.folding import fold
from tests.helpers.browser import chromium, page_errors
from tests.helpers.nodes import Node, admin, start_core, start_edge
from tests.helpers.system import program

pytestmark = pytest.mark.e2e

CORPUS = """\
Moscow\t12000000\tМосква
Mumbai\t11000000\tBombay
Munich\t1500000\tMünchen
Tokyo\t9700000\t東京
São Paulo\t12400000
Saint Louis\t300000
Sydney\t5000000
Malmö\t300000
"""

DEADLINE_S = 10
POLL_S = 0.05

TEXTS = ["m", "Mo", "МО", "Москва", "st. l", "St ", "st", "東京", "São", "s-a", "  m", "É", "ö!"]
"""Texts whose page folding is checked against the edge's (``É``: in no term, so unsure)."""


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Node]]:
    tmp: Path = tmp_path_factory.mktemp("device")
    corpus = tmp / "corpus.tsv"
    corpus.write_text(CORPUS, encoding="utf-8")
    core = start_core(tmp, corpus=corpus)
    edge: Node | None = None
    try:
        edge = start_edge(tmp, core.url, "syd")
        yield core, edge
    finally:
        for node in [edge, core]:
            if node is not None:
                node.stop()


class Traffic:
    """What the page sends its edge: HTTP requests by path, and suggest messages."""

    def __init__(self, page: Page) -> None:
        self.paths: list[str] = []
        self.suggests: list[dict[str, Any]] = []
        self.http_suggests: list[str] = []
        page.on("request", self._request)
        page.on("websocket", self._socket)

    def _request(self, request: Request) -> None:
        url = urlsplit(request.url)
        self.paths.append(f"{url.scheme}://{url.netloc}{url.path}")
        q = parse_qs(url.query).get("q", [""])[0]
        if url.path == "/suggest" and q:
            self.http_suggests.append(q)

    def _socket(self, socket: WebSocket) -> None:
        def sent(payload: str | bytes) -> None:
            message = json.loads(payload)
            # Not the status probe, nor the empty query of a cleared box (the edge's top list).
            if message.get("type") == "suggest" and message.get("q"):
                self.suggests.append(message)

        socket.on("framesent", sent)

    def asked_the_edge(self) -> int:
        """Suggestions of some text asked of the edge: websocket messages and HTTP
        ``/suggest`` requests."""
        return len(self.suggests) + len(self.http_suggests)


def flag(core: Node, edge: Node, level: str) -> None:
    """Set the suggestion feature's level and wait until the edge has it (a deadline)."""
    with admin(core) as client:
        client.put("/admin/flags/suggest", json={"level": level}).raise_for_status()
    deadline = time.monotonic() + DEADLINE_S
    while httpx.get(f"{edge.url}/status").json()["flags"]["suggest"]["level"] != level:
        assert time.monotonic() < deadline, f"the edge is not {level} after {DEADLINE_S} s"
        time.sleep(POLL_S)


def typed(page: Page, text: str) -> None:
    search = page.get_by_test_id("search")
    search.fill("")
    search.press_sequentially(text, delay=20)


def test_the_device_answers_short_prefixes_until_the_flag_goes_strict(
    nodes: tuple[Node, Node],
) -> None:
    core, edge = nodes
    with chromium() as browser:
        page = browser.new_page()
        errors = page_errors(page)
        traffic = Traffic(page)
        page.goto(f"{edge.url}/")
        page.wait_for_function("state.pack !== null && state.level === 'tolerant'")
        assert traffic.paths.count(f"{edge.url}/suggest/pack") == 1
        rung = page.get_by_test_id("rung")
        first = page.get_by_test_id("suggestion").first

        # One and two characters, other names and native scripts included: the device.
        before = traffic.asked_the_edge()
        for text, top in [("m", "Moscow"), ("мо", "Moscow"), ("東京", "Tokyo"), ("sa", "São")]:
            typed(page, text)
            expect(first).to_contain_text(top)
            expect(rung).to_have_attribute("data-rung", "device")
        expect(page.get_by_test_id("suggest-meta")).to_contain_text("on this device")
        assert traffic.asked_the_edge() == before, traffic.suggests

        # Under a millisecond a keystroke, and the same folding as the edge's.
        took = page.evaluate(
            """() => { const t = performance.now();
                for (let i = 0; i < 1000; i++) deviceAnswer(i % 2 ? "Мо" : "sa");
                return (performance.now() - t) / 1000; }"""
        )
        assert took < 1.0, f"{took} ms a keystroke"
        folded = page.evaluate("(texts) => texts.map((t) => localFold(t, state.pack))", TEXTS)
        assert folded[TEXTS.index("É")] is None
        for text, got in zip(TEXTS, folded, strict=True):
            assert got is None or got == fold(text), text

        # A longer prefix, or a character the pack cannot fold for sure: the edge.
        typed(page, "mosc")
        expect(rung).to_have_attribute("data-rung", "edge")
        expect(first).to_contain_text("Moscow")
        assert traffic.asked_the_edge() == before + len("mosc") - 2  # "mos" and "mosc"
        typed(page, "É")
        expect(page.get_by_test_id("suggest-meta")).to_contain_text("round trip")
        assert traffic.suggests[-1]["q"] == "É"

        # Strict: no device rung; every keystroke waits for the core.
        flag(core, edge, "strict")
        expect(page.get_by_test_id("flag-suggest")).to_have_text("strict", timeout=10_000)
        asked = traffic.asked_the_edge()
        typed(page, "m")
        expect(rung).to_have_attribute("data-rung", "core")
        expect(first).to_contain_text("Moscow")
        assert traffic.asked_the_edge() == asked + 1
        page.wait_for_function("state.pack.level === 'strict'")  # the pack was checked again

        # Session: still no device rung; the page presents the newest bookmark it was given.
        flag(core, edge, "session")
        expect(page.get_by_test_id("flag-suggest")).to_have_text("session", timeout=10_000)
        typed(page, "m")
        expect(page.get_by_test_id("suggest-meta")).to_contain_text("session")
        typed(page, "mo")
        expect(rung).not_to_have_attribute("data-rung", "device")
        bookmark = page.evaluate("state.bookmark")
        assert bookmark and traffic.suggests[-1]["bookmark"] == bookmark
        assert not errors, errors


def test_through_a_pop_the_page_asks_over_http_and_the_pop_answers_again(
    nodes: tuple[Node, Node], tmp_path: Path
) -> None:
    program("nginx", "nginx-light")
    core, edge = nodes
    flag(core, edge, "tolerant")
    with chromium() as browser, running(edge.url, tmp_path) as pop:
        page = browser.new_page()
        errors = page_errors(page)
        traffic = Traffic(page)
        page.goto(f"{pop.url}/")
        page.wait_for_function("state.viaPop && state.pack !== null && state.level === 'tolerant'")
        rung = page.get_by_test_id("rung")
        first = page.get_by_test_id("suggestion").first
        typed(page, "мо")
        expect(rung).to_have_attribute("data-rung", "device")
        typed(page, "tokyo")
        expect(rung).to_have_attribute("data-rung", "edge")  # the PoP's first: a miss
        expect(first).to_contain_text("Tokyo")
        typed(page, "tokyo")
        expect(rung).to_have_attribute("data-rung", "pop")
        expect(first).to_contain_text("Tokyo")
        assert not traffic.suggests  # no suggestion over the websocket
        assert traffic.http_suggests == ["tok", "toky", "tokyo"] * 2  # "to": the device
        assert not errors, errors
