"""A real nginx PoP (deploy.local.pop) in front of a real edge and core: a hit after a miss
(with the edge's ``Date``, so the data's true age is known), strict answers never from the
cache, ``304`` both ways (to the user and from the edge), websockets through, and with the
edge gone the PoP answers from its cache within ``stale-if-error`` and not after."""

from __future__ import annotations

import email.utils
import itertools
import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from deploy.local.pop import Pop, running
from edge_node.suggest.caching import true_age_ms
from shared.protocol import Suggest, Suggestions, encode
from tests.e2e.test_up import start_up, stop_up, until_ready
from tests.helpers.clients import reply
from tests.helpers.nodes import FAST_LINK, SMALL_CORPUS, Node, admin, start_core, start_edge
from tests.helpers.system import program
from tests.helpers.waiting import POLL_S

MAX_AGE_S, SIE_S = 2, 2
SHORT_CACHE = {
    **FAST_LINK,
    "LIGHTCONE_HTTP_CACHE_MAX_AGE_S": str(MAX_AGE_S),
    "LIGHTCONE_HTTP_CACHE_SWR_S": "0",  # an expired entry is revalidated while the user waits
    "LIGHTCONE_HTTP_CACHE_SIE_S": str(SIE_S),
}
"""Short cache settings: each test waits a few seconds at most."""

DEADLINE_S = 15
_queries = (f"s{n}" for n in itertools.count())


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Node, Pop]]:
    program("nginx", "nginx-light")
    tmp = tmp_path_factory.mktemp("pop")
    core = start_core(tmp, corpus=SMALL_CORPUS, env=FAST_LINK)
    edges: list[Node] = []
    try:
        edges.append(start_edge(tmp, core.url, "syd", env=SHORT_CACHE))
        with running(edges[0].url, tmp) as pop:
            yield core, edges[0], pop
    finally:
        for node in [*edges, core]:
            node.stop()
    for node in [core, *edges]:
        assert not node.errors(), node.errors()


def get(pop: Pop, q: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{pop.url}/suggest", params={"q": q}, headers=headers, timeout=10)


def test_a_hit_after_a_miss_keeps_the_edge_date_so_the_true_age_is_known(
    nodes: tuple[Node, Node, Pop],
) -> None:
    _, _, pop = nodes
    q = next(_queries)
    miss = get(pop, q)
    assert miss.status_code == 200 and miss.headers["x-cache-status"] == "MISS"
    assert "age" not in miss.headers
    deadline = time.monotonic() + DEADLINE_S
    while True:  # a hit at least a second after the edge answered (Date counts in seconds)
        hit = get(pop, q)
        assert hit.headers["x-cache-status"] == "HIT", "the entry expired before a later second"
        now = time.time()
        if now - email.utils.parsedate_to_datetime(hit.headers["date"]).timestamp() >= 1:
            break
        assert time.monotonic() < deadline
        time.sleep(POLL_S)
    assert hit.headers["date"] == miss.headers["date"]  # the edge's, not the PoP's
    assert hit.json()["age_ms"] == miss.json()["age_ms"]  # the body alone would lie ...
    assert true_age_ms(hit.json()["age_ms"], hit.headers["date"], now) >= (
        miss.json()["age_ms"] + 1000
    )  # ... the rule does not


def test_strict_answers_never_come_from_the_cache(nodes: tuple[Node, Node, Pop]) -> None:
    core, _, pop = nodes
    with admin(core) as core_admin:
        assert core_admin.put("/admin/flags/suggest", json={"stale_ok": False}).status_code == 200
        try:
            deadline = time.monotonic() + DEADLINE_S
            while get(pop, next(_queries)).json()["mode"] != "strict":
                assert time.monotonic() < deadline, "the edge did not switch to strict"
                time.sleep(POLL_S)
            q = next(_queries)
            answers = [get(pop, q) for _ in range(3)]
            assert [a.headers["x-cache-status"] for a in answers] == ["MISS"] * 3
            assert {a.headers["cache-control"] for a in answers} == {"no-store"}
        finally:
            core_admin.put("/admin/flags/suggest", json={"stale_ok": True})


def test_304_to_the_user_and_revalidation_with_the_edge(nodes: tuple[Node, Node, Pop]) -> None:
    _, _, pop = nodes
    q = next(_queries)
    first = get(pop, q)
    assert first.headers["x-cache-status"] == "MISS"
    cached = get(pop, q, **{"If-None-Match": first.headers["etag"]})
    assert cached.status_code == 304 and cached.headers["x-cache-status"] == "HIT"
    assert cached.headers["etag"] == first.headers["etag"]
    deadline = time.monotonic() + DEADLINE_S
    while (answer := get(pop, q)).headers["x-cache-status"] == "HIT":
        assert time.monotonic() < deadline
        time.sleep(POLL_S)
    # Expired: the PoP asked the edge with If-None-Match and got a 304, no body.
    assert answer.status_code == 200 and answer.headers["x-cache-status"] == "REVALIDATED"
    assert answer.json() == first.json()


async def test_websockets_go_through_the_pop(nodes: tuple[Node, Node, Pop]) -> None:
    _, _, pop = nodes
    async with connect(pop.url.replace("http://", "ws://") + "/ws") as ws:
        answer = await reply(ws, encode(Suggest(id="p", q="syd", limit=1)))
    assert isinstance(answer, Suggestions) and answer.id == "p"


def test_with_the_edge_gone_the_pop_answers_within_stale_if_error_and_not_after(
    nodes: tuple[Node, Node, Pop], tmp_path: Path
) -> None:
    core, _, _ = nodes
    edge = start_edge(tmp_path, core.url, "lhr", env=SHORT_CACHE)
    try:
        with running(edge.url, tmp_path) as pop:
            q = next(_queries)
            assert get(pop, q).headers["x-cache-status"] == "MISS"
            stored = time.monotonic()
            edge.stop()
            deadline = stored + MAX_AGE_S + SIE_S + 3  # + nginx's whole seconds, + slack
            while (answer := get(pop, q)).status_code == 200:
                assert answer.headers["x-cache-status"] in ("HIT", "STALE")
                assert time.monotonic() < deadline, "served past stale-if-error"
                time.sleep(POLL_S)
            failed_after = time.monotonic() - stored
    finally:
        edge.stop()
    assert answer.status_code == 502 and answer.headers["x-cache-status"] == "EXPIRED"
    assert failed_after >= MAX_AGE_S + SIE_S - 1  # served stale up to stale-if-error


async def test_up_pop_puts_a_pop_before_each_near_entry_and_stops_it(tmp_path: Path) -> None:
    """``lightcone up --pop``: each user city's entry to its nearest edge gains ``pop_url``,
    a second answer through it is a hit, and Ctrl-C stops every nginx."""
    program("nginx", "nginx-light")
    process = await start_up(tmp_path, "--pop", "--edges", "syd", "--users", "syd")
    assert process.stdout is not None
    try:
        lines = await until_ready(process.stdout)
        assert any(line.startswith("[pop] nginx  syd") for line in lines), lines
        topology: dict[str, Any] = json.loads((tmp_path / "status.json").read_text())
        entries = {e["kind"]: e for e in topology["entries"]}
        assert "pop_url" not in entries["central"]
        pop_url = entries["edge"]["pop_url"]
        async with httpx.AsyncClient(base_url=pop_url) as client:
            statuses = [
                (await client.get("/suggest", params={"q": "sao pa"})).headers["x-cache-status"]
                for _ in range(2)
            ]
        assert statuses == ["MISS", "HIT"]
        pids = [int(p.read_text()) for p in (tmp_path / "demo" / "pops").glob("*/nginx.pid")]
        assert len(pids) == 1
    finally:
        code, rest = await stop_up(process)
    assert code == 0, rest
    assert not list((tmp_path / "demo" / "pops").glob("*")), "a PoP folder was left behind"
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)


class _AgedOrigin(BaseHTTPRequestHandler):
    """An origin that says its answer is already 5 s old (``Age: 5``)."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Cache-Control", "public, max-age=30")
        self.send_header("Age", "5")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_nginx_replays_a_stored_age_unchanged_so_the_edge_sends_none(tmp_path: Path) -> None:
    """What nginx 1.22 does with an upstream ``Age`` and ``Date``: it neither adds nor updates
    an ``Age`` (a hit seconds later still says 5), and passes the origin's ``Date`` on."""
    program("nginx", "nginx-light")
    origin = ThreadingHTTPServer(("127.0.0.1", 0), _AgedOrigin)
    thread = threading.Thread(target=origin.serve_forever, daemon=True)
    thread.start()
    try:
        with running(f"http://127.0.0.1:{origin.server_port}", tmp_path) as pop:
            first = httpx.get(f"{pop.url}/x")
            deadline = time.monotonic() + DEADLINE_S
            while email.utils.formatdate(usegmt=True) == first.headers["date"]:
                assert time.monotonic() < deadline  # until a later second
                time.sleep(POLL_S)
            hit = httpx.get(f"{pop.url}/x")
    finally:
        origin.shutdown()
        origin.server_close()
        thread.join(5)
    assert (first.headers["x-cache-status"], hit.headers["x-cache-status"]) == ("MISS", "HIT")
    assert first.headers["age"] == hit.headers["age"] == "5"
    assert hit.headers["date"] == first.headers["date"] != email.utils.formatdate(usegmt=True)
