"""Hostile text and hostile JSON through the HTTP doors: query strings and bodies.

schemathesis (test_openapi.py) generates from the documents, whose strings never hold lone
surrogates, NFKD expanders or deep nesting; this tier sends exactly those classes:

* ``/suggest`` and ``/search`` with the hostile text of :mod:`tests.fuzz.wire` (expanders,
  controls, long runs), then a plain search must still commit: the write path is not wedged;
* the same with a lone surrogate in every string (JSON escapes, valid UTF-8 on the wire);
* JSON bodies nested deeper than the parser's recursion limit, on every route that reads one
  (edge ``/search``, core admin, demo control).

Property: every answer is below 500 with a JSON ``{error, message}`` body when it is an error.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from hypothesis import Phase, example, given
from starlette.testclient import TestClient

from core_region.app import create_app as create_core
from core_region.settings import CoreSettings
from deploy.local.control import DemoState, create_control_app
from deploy.local.cores import CoreNodes
from edge_node.app import create_app as create_edge
from edge_node.settings import EdgeSettings
from shared.config import from_environ
from tests.fuzz.conftest import wait_until_ready
from tests.fuzz.settings import examples
from tests.fuzz.wire import hostile_text
from tests.helpers.nodes import ADMIN_TOKEN, FAST_LINK, LINK_TOKEN, SMALL_CORPUS, Node, start_core

TOKENS = {"LIGHTCONE_ADMIN_TOKEN": ADMIN_TOKEN, "LIGHTCONE_LINK_TOKEN": LINK_TOKEN}
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

_ids = itertools.count()


def assert_answered(response: httpx2.Response) -> None:
    """Below 500, and an error is JSON ``{error, message}``."""
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error", "message"}, body


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Node]:
    """A core of its own: hostile searches must not reach the other fuzz tests' core."""
    node = start_core(tmp_path, corpus=SMALL_CORPUS, env=FAST_LINK)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def edge(core: Node) -> Iterator[TestClient]:
    settings = from_environ(EdgeSettings, TOKENS, core_url=core.url, region="fuzz")
    with TestClient(create_edge(settings), raise_server_exceptions=False) as client:
        wait_until_ready(client.get)  # the first snapshot comes over a real link
        yield client
        committed = client.post("/search", json={"id": "after-the-fuzz", "q": "Sydney"})
        assert committed.status_code == 200, "the edge's write path is wedged"


def post_json(client: TestClient, path: str, body: object, **kw: object) -> httpx2.Response:
    """POST/PUT ``body`` as JSON with every non-ASCII character escaped (lone surrogates too)."""
    method = str(kw.pop("method", "POST"))
    content = json.dumps(body, ensure_ascii=True)
    headers = {"content-type": "application/json", **AUTH}
    return client.request(method, path, content=content, headers=headers)


@examples(60)
@given(id_=hostile_text(surrogates=False), q=hostile_text(surrogates=False))
def test_hostile_text_in_queries_and_searches(edge: TestClient, id_: str, q: str) -> None:
    assert_answered(edge.get("/suggest", params={"q": q}))
    assert_answered(post_json(edge, "/search", {"id": f"{next(_ids)}{id_}", "q": q}))


@examples(20, phases=[Phase.explicit, Phase.generate])
@example(id_="\udfff-1", q="paris")  # the request
@given(id_=hostile_text(surrogates=True), q=hostile_text(surrogates=True))
def test_lone_surrogates_in_searches(edge: TestClient, id_: str, q: str) -> None:
    """Refused at the door (4xx), not accepted and dropped downstream."""
    answer = post_json(edge, "/search", {"id": id_, "q": q})
    assert_answered(answer)
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)


@pytest.fixture
def bodies(edge: TestClient, core: Node, tmp_path: Path) -> Iterator[dict[str, TestClient]]:
    """Every app that reads a JSON body: an in-process edge, core and control API."""
    (tmp_path / "own-core").mkdir()
    settings = from_environ(
        CoreSettings, TOKENS, corpus=SMALL_CORPUS, data_dir=tmp_path / "own-core"
    )
    state = DemoState(CoreNodes.elsewhere(core.url), ADMIN_TOKEN)
    with (
        TestClient(create_core(settings), raise_server_exceptions=False) as core_client,
        TestClient(
            create_control_app(state),
            base_url=f"http://127.0.0.1{state.prefix}",  # a loopback Host, below the capability
            raise_server_exceptions=False,
        ) as control,
    ):
        yield {"edge": edge, "core": core_client, "control": control}
        assert control.portal is not None
        control.portal.call(state.close)


ROUTES = [
    pytest.param("edge", "POST", "/search"),
    pytest.param("core", "PUT", "/admin/flags/suggest"),
    pytest.param("core", "PUT", "/admin/terms/x"),
    pytest.param("control", "PUT", "/flags/suggest"),  # its 1 KiB bound is too small to nest
]


@pytest.mark.parametrize(("app", "method", "path"), ROUTES)
@pytest.mark.parametrize("depth", [1100, 2000])
def test_deeply_nested_bodies_are_refused(
    bodies: dict[str, TestClient], app: str, method: str, path: str, depth: int
) -> None:
    """Not a hypothesis test: hypothesis raises the interpreter's recursion limit while it
    runs, which hides this class (the node's own limit is the default 1000)."""
    body = "[" * depth + "]" * depth
    headers = {"content-type": "application/json", **AUTH}
    assert_answered(bodies[app].request(method, path, content=body, headers=headers))
