"""HTTP caching of ``GET /suggest``: the pure header rules, then the edge app in process —
tolerant answers cacheable with a weak ETag and a 304 on ``If-None-Match``; strict answers
(a real core behind the in-process edge) ``no-store``, their 304 only after the round trip."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from edge_node.app import create_app
from edge_node.settings import EdgeSettings
from edge_node.suggest import caching
from edge_node.suggest.caching import CachePolicy, cache_control, etag, matches, true_age_ms
from shared import snapshot
from shared.config import from_environ
from shared.snapshot import Entry
from tests.edge_node.test_app import unreachable_core
from tests.helpers.nodes import FAST_LINK, LINK_TOKEN, SMALL_CORPUS, Node, admin, start_core
from tests.helpers.proxy_thread import ProxyThread
from tests.helpers.waiting import POLL_S

DEADLINE_S = 15
POLICY = CachePolicy(max_age_s=2, stale_while_revalidate_s=3, stale_if_error_s=10)


# --- the pure rules ------------------------------------------------------------------------


def test_tolerant_is_public_with_its_stale_extensions() -> None:
    assert cache_control("tolerant", None, POLICY) == (
        "public, max-age=2, stale-while-revalidate=3, stale-if-error=10"
    )


def test_tolerant_with_no_max_age_is_not_cached() -> None:
    assert cache_control("tolerant", None, CachePolicy(0, 3, 10)) == "no-cache"


@pytest.mark.parametrize("mode", ["strict", "session"])
def test_strict_and_session_are_never_stored(mode: str) -> None:
    assert cache_control(mode, 0, POLICY) == "no-store"


def test_bounded_max_age_shrinks_with_age_and_has_no_stale_extension() -> None:
    """What is left of the bound, less a whole second for caches' clocks, capped by the
    tolerant max-age; under two seconds left: not stored."""
    long = CachePolicy(max_age_s=60, stale_while_revalidate_s=3, stale_if_error_s=10)
    ages = [cache_control("bounded", left, long) for left in (9_000, 5_500, 3_000, 1_999, 0)]
    assert ages == [
        "public, max-age=8",
        "public, max-age=4",
        "public, max-age=2",
        "no-cache",
        "no-cache",
    ]
    assert cache_control("bounded", 9_000, POLICY) == "public, max-age=2"


def test_the_etag_is_weak_and_names_epoch_version_level_limit_and_query() -> None:
    base = etag("e1", 7, "tolerant", 5, "syd")
    assert base.startswith('W/"7-') and base == etag("e1", 7, "tolerant", 5, "syd")
    others = {
        etag("e2", 7, "tolerant", 5, "syd"),
        etag("e1", 8, "tolerant", 5, "syd"),
        etag("e1", 7, "strict", 5, "syd"),
        etag("e1", 7, "tolerant", 6, "syd"),
        etag("e1", 7, "tolerant", 5, "sy"),
    }
    assert base not in others and len(others) == 5
    assert etag("", 1, "tolerant", 5, "São \ud800") != base  # any text, even a lone surrogate


def test_if_none_match_is_compared_weakly_in_lists_and_star() -> None:
    tag = etag("e1", 7, "tolerant", 5, "syd")
    assert matches(tag, tag)
    assert matches(tag.removeprefix("W/"), tag)
    assert matches(f'"other", {tag}', tag)
    assert matches("*", tag)
    assert not matches(None, tag) and not matches("", tag) and not matches('"other"', tag)


def test_the_true_age_adds_the_time_since_the_date() -> None:
    date = email.utils.formatdate(1_000_000_000, usegmt=True)
    assert true_age_ms(250, date, 1_000_000_003.5) == 3_750
    assert true_age_ms(250, date, 999_999_999.0) == 250  # a clock behind: never younger


# --- the edge in process -------------------------------------------------------------------

ENTRIES = [Entry("sydney", "Sydney", 500), Entry("sydenham", "Sydenham", 30)]


@pytest.fixture
def client() -> Iterator[TestClient]:
    settings = from_environ(EdgeSettings, {}, core_url=unreachable_core(), region="syd")
    app = create_app(settings)
    hot = snapshot.hot_lists(ENTRIES, threshold=2, depth=5)
    blob = snapshot.build(ENTRIES, version=3, hot=hot, hot_threshold=2, depth=5)
    with TestClient(app) as client:
        app.state.node.features["suggest"].replica.load(snapshot.parse(blob), "epoch-a")
        yield client


def test_a_tolerant_answer_is_cacheable_and_revalidates_to_a_304(client: TestClient) -> None:
    first = client.get("/suggest", params={"q": "syd", "limit": 2})
    assert first.status_code == 200
    assert first.headers["cache-control"] == (
        "public, max-age=1, stale-while-revalidate=2, stale-if-error=10"
    )
    assert first.headers["etag"].startswith('W/"3-')  # version 3
    assert first.headers["vary"] == caching.VARY
    assert "age" not in first.headers  # Date is the server's (uvicorn): see tests/e2e/test_pop.py
    again = client.get(
        "/suggest",
        params={"q": "syd", "limit": 2},
        headers={"If-None-Match": first.headers["etag"]},
    )
    assert again.status_code == 304 and again.content == b""
    for name in ("etag", "cache-control", "vary"):
        assert again.headers[name] == first.headers[name]
    other = client.get(
        "/suggest",
        params={"q": "syd", "limit": 1},
        headers={"If-None-Match": first.headers["etag"]},
    )
    assert other.status_code == 200 and other.headers["etag"] != first.headers["etag"]


def test_error_answers_carry_no_cache_headers(client: TestClient) -> None:
    """A 400 has no ETag, Cache-Control or Last-Modified: no cache stores it."""
    bad = client.get("/suggest", params={"q": "syd", "limit": 0})
    assert bad.status_code == 400
    assert not {"etag", "cache-control", "last-modified", "expires"} & set(bad.headers)


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    node = start_core(tmp_path_factory.mktemp("caching"), corpus=SMALL_CORPUS, env=FAST_LINK)
    try:
        yield node
    finally:
        node.stop()


def mode_of(client: TestClient) -> str | None:
    """The mode of an answer now (``None``: a strict read failed, the link is down)."""
    response = client.get("/suggest", params={"q": "syd"})
    if response.status_code == 503:
        return None
    assert response.status_code == 200, response.text
    mode: str = response.json()["mode"]
    return mode


def until_mode(client: TestClient, mode: str) -> None:
    """Poll (with a deadline) until the edge answers in ``mode``."""
    deadline = time.monotonic() + DEADLINE_S
    while mode_of(client) != mode:
        assert time.monotonic() < deadline, f"the edge did not switch to {mode}"
        time.sleep(POLL_S)


def test_strict_and_session_are_no_store_and_bounded_max_age_shrinks_with_age(
    core: Node,
) -> None:
    """The feature strict, an edge in process linked to a real core through a proxy: strict
    and session answers are ``no-store`` (a strict 304 after the round trip); a bounded one
    (per request, 5 s) is ``public`` with a max-age that shrinks as the data ages once the
    link is cut, down to ``no-cache``, then 503 past the bound."""
    host, port = core.url.removeprefix("http://").rsplit(":", 1)
    link = ProxyThread(host, int(port))
    settings = from_environ(
        EdgeSettings,
        # The link is dropped 5 s into a cut: after the bound ran out (a dropped link fails a
        # bounded read at once).
        {**FAST_LINK, "LIGHTCONE_LINK_TIMEOUT_S": "5", "LIGHTCONE_LINK_TOKEN": LINK_TOKEN},
        core_url=link.url,
        http_cache_max_age_s=60,  # not the cap of the bounded max-age here
    )
    try:
        with TestClient(create_app(settings)) as client, admin(core) as core_admin:
            until_ready(client)
            assert core_admin.put("/admin/flags/suggest", json={"stale_ok": False}).is_success
            try:
                until_mode(client, "strict")
                strict_and_session(client)
                bounded = {"q": "syd", "consistency": "bounded", "max_age_ms": "5000"}
                assert client.get("/suggest", params=bounded).headers["cache-control"] == (
                    "public, max-age=3"  # 5 s less its age and the link's RTT, less 1 s
                )
                link.cut()
                seen: list[str] = []
                deadline = time.monotonic() + DEADLINE_S
                while (answer := client.get("/suggest", params=bounded)).status_code == 200:
                    if not seen or seen[-1] != answer.headers["cache-control"]:
                        seen.append(answer.headers["cache-control"])
                    assert time.monotonic() < deadline, seen
                    time.sleep(POLL_S)
                # The age grows, and so does the round trip the edge must assume (its pings
                # go unanswered): what is left of the bound shrinks twice as fast.
                assert seen == [
                    "public, max-age=3",
                    "public, max-age=2",
                    "public, max-age=1",
                    "no-cache",
                ]
                assert answer.status_code == 503  # past the bound, and the core out of reach
                link.heal()
            finally:
                core_admin.put("/admin/flags/suggest", json={"stale_ok": True})
            until_mode(client, "tolerant")
    finally:
        link.close()


def strict_and_session(client: TestClient) -> None:
    first = client.get("/suggest", params={"q": "syd"})
    assert first.json()["mode"] == "strict"
    assert first.headers["cache-control"] == "no-store"
    tag = first.headers["etag"]
    again = client.get("/suggest", params={"q": "syd"}, headers={"If-None-Match": tag})
    assert again.status_code == 304
    assert again.headers["cache-control"] == "no-store" and again.headers["etag"] == tag
    assert again.headers["lightcone-bookmark"]
    session = client.get("/suggest", params={"q": "syd", "consistency": "session"})
    assert session.json()["mode"] == "session"
    assert session.headers["cache-control"] == "no-store"
    assert session.headers["etag"] != tag  # another level, another tag


def until_ready(client: TestClient) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "the in-process edge did not load a snapshot"
        time.sleep(POLL_S)
