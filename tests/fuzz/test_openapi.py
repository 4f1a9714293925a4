"""The OpenAPI documents: each matches its app's routes, is served, and holds under fuzzing.

schemathesis drives every documented operation with data generated from the document
(valid, and invalid where the operation takes input) and checks each answer: no 5xx, a
documented status, the documented content type (JSON on every error) and body schema.
The edge and core run in process (the edge linked to a real core); the demo control API runs
on a real loopback server, as ``lightcone up`` runs it, forwarding to the real core.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import schemathesis.checks as checks
from hypothesis import Phase, given, strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.python import asgi
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.testclient import TestClient

from core_region.app import api_document as core_document, create_app as create_core
from core_region.settings import CoreSettings
from deploy.local.control import (
    MAX_BODY_BYTES,
    DemoState,
    create_control_app,
    embedded,
    openapi_document,
)
from deploy.local.cores import CoreNodes
from deploy.local.latency import LatencyProxy
from edge_node.app import api_document, create_app as create_edge
from edge_node.settings import EdgeSettings
from shared.config import from_environ
from tests.fuzz.conftest import wait_until_ready
from tests.fuzz.settings import examples
from tests.helpers.nodes import ADMIN_TOKEN, LINK_TOKEN, SMALL_CORPUS, Node

TOKENS = {"LIGHTCONE_ADMIN_TOKEN": ADMIN_TOKEN, "LIGHTCONE_LINK_TOKEN": LINK_TOKEN}
EDGE = from_environ(
    EdgeSettings, TOKENS, core_url="http://127.0.0.1:1", region="fuzz", min_version_wait_ms=20
)
CORE = from_environ(CoreSettings, TOKENS, corpus=SMALL_CORPUS)
DOCS = {
    "edge": api_document(create_edge(EDGE).state.node),
    "core": core_document(create_core(CORE).state.node),
    "control": openapi_document(MAX_BODY_BYTES),
}
CONTROL = DemoState(
    CoreNodes.elsewhere("http://127.0.0.1:1"), ADMIN_TOKEN, capability="fuzz-capability"
)
"""The control API's state for the route checks (its capability is fixed, not secret)."""

CHECKS = [
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


# --- the documents match the routes --------------------------------------------------------


def _apps(tmp: Path) -> dict[str, Starlette]:
    return {
        "edge": create_edge(EDGE),
        "core": create_core(dataclasses.replace(CORE, data_dir=tmp)),
        "control": create_control_app(CONTROL),
    }


def _routes(routes: list[BaseRoute]) -> tuple[set[tuple[str, str]], set[str], set[str]]:
    """(path, method) of each HTTP route, mount prefixes, websocket paths."""
    operations, mounts, websockets = set(), set(), set()
    for route in routes:
        if isinstance(route, Route):
            methods = (route.methods or set()) - {"HEAD"}
            operations |= {(route.path_format, m.lower()) for m in methods}
        elif isinstance(route, Mount):
            mounts.add(f"{route.path}/")
        elif isinstance(route, WebSocketRoute):
            websockets.add(route.path_format)
    return operations, mounts, websockets


@pytest.mark.parametrize("name", sorted(DOCS))
def test_every_route_is_documented_and_every_documented_operation_is_a_route(
    name: str, tmp_path: Path
) -> None:
    app = _apps(tmp_path)[name]
    doc = DOCS[name]
    routes, mounts, websockets = _routes(app.routes)
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    under_mounts = {(p, m) for p, m in documented if any(p.startswith(x) for x in mounts)}
    assert documented - under_mounts == routes
    for prefix in mounts:
        assert (prefix, "get") in under_mounts or any(
            p.startswith(prefix) and p != prefix for p, _ in under_mounts
        ), f"mount {prefix} is not documented"
    assert set(doc["x-websockets"]) == websockets


@pytest.mark.parametrize("name", sorted(DOCS))
def test_each_node_serves_its_document(name: str, tmp_path: Path) -> None:
    # No lifespan: the document needs none. The control API is below its capability and
    # answers loopback names only.
    client = TestClient(_apps(tmp_path)[name], base_url="http://127.0.0.1")
    answer = client.get(f"{CONTROL.prefix if name == 'control' else ''}/openapi.json")
    assert answer.status_code == 200
    assert answer.json() == DOCS[name]


def test_real_nodes_serve_their_documents(fuzz_core: Node, fuzz_edge: Node) -> None:
    """The processes the CLI starts serve the same documents, and schemathesis loads them."""
    for name, node in (("core", fuzz_core), ("edge", fuzz_edge)):
        schema = schemathesis.openapi.from_url(f"{node.url}/openapi.json")
        assert schema.raw_schema == DOCS[name]


# --- schemathesis ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def targets(fuzz_core: Node, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Where each document's operations are sent: an ASGI app, or a base URL."""
    edge = create_edge(dataclasses.replace(EDGE, core_url=fuzz_core.url))
    core = create_core(dataclasses.replace(CORE, data_dir=tmp_path_factory.mktemp("fuzz-api")))
    with _control_server(fuzz_core) as control_url:
        yield {"edge": {"app": edge}, "core": {"app": core}, "control": {"base_url": control_url}}


def _start(app: Starlette) -> None:
    """Start ``app``'s lifespan (schemathesis ends it after each test) and wait until ready."""
    with asgi.get_client(app) as client:  # type: ignore[arg-type]
        wait_until_ready(client.get)


class _control_server:
    """The demo control API on a loopback port, served by uvicorn in a thread of its own."""

    def __init__(self, core: Node) -> None:
        self.core = core
        self.started = threading.Event()

    def __enter__(self) -> str:
        self.thread = threading.Thread(target=asyncio.run, args=(self._serve(),))
        self.thread.start()
        assert self.started.wait(30), "the control API did not start"
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    async def _serve(self) -> None:
        state = DemoState(CoreNodes.elsewhere(self.core.url), ADMIN_TOKEN)
        host, port = self.core.url.rsplit("/", 1)[-1].rsplit(":", 1)
        state.links["fuzz"] = [LatencyProxy(host, int(port), name="fuzz")]
        self.server, sock = embedded(create_control_app(state))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}{state.prefix}"
        self.started.set()  # the socket already listens: early requests wait in its backlog
        try:
            await self.server.serve(sockets=[sock])
        finally:
            await state.close()


def _operations() -> list[tuple[str, str, GenerationMode]]:
    cases = []
    for name, doc in sorted(DOCS.items()):
        schema = schemathesis.openapi.from_dict(doc)
        for result in schema.get_all_operations():
            operation = result.ok()  # type: ignore[union-attr]
            parameters = doc["paths"][operation.path][operation.method].get("parameters", [])
            # Invalid data exists only for a body, a query, or a bounded path parameter.
            negatable = bool(operation.body) or any(
                p["in"] == "query" or set(p["schema"]) - {"type"} for p in parameters
            )
            modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if negatable else [])
            cases += [(name, operation.label, mode) for mode in modes]
    return cases


SCHEMAS = {name: schemathesis.openapi.from_dict(doc) for name, doc in DOCS.items()}


def _marked(cases: list[tuple[str, str, GenerationMode]]) -> list[Any]:
    """Each case, with the known failures marked (none today)."""
    known: dict[tuple[str, str], Any] = {}
    return [
        pytest.param(*case, marks=[known[case[:2]]] if case[:2] in known else []) for case in cases
    ]


@pytest.mark.parametrize(("name", "label", "mode"), _marked(_operations()))
def test_every_operation_answers_as_documented(
    targets: dict[str, Any],
    name: str,
    label: str,
    mode: GenerationMode,
    request: pytest.FixtureRequest,
) -> None:
    target = targets[name]
    if "app" in target:
        _start(target["app"])
    operation = SCHEMAS[name].find_operation_by_label(label)
    assert operation is not None
    responses = DOCS[name]["paths"][operation.path][operation.method]["responses"]

    failing = any(m.name == "xfail" for m in request.node.iter_markers())
    phases = [Phase.generate] if failing else [p for p in Phase if p is not Phase.explain]

    @examples(40, phases=phases)  # a known failure is not shrunk: it only has to show
    @given(case=operation.as_strategy(mode), authorized=st.booleans())
    def answers_as_documented(case: Case[Any], authorized: bool) -> None:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"} if authorized else {}
        response = case.call(headers=headers, **target)
        # No 5xx but a documented 503: "a guarantee that cannot be kept now" (not ready, core
        # unreachable, strict deadline, outbox full) is an answer, not a crash.
        status = response.status_code
        assert status < 500 or (status == 503 and "503" in responses), case.as_curl_command()
        case.validate_response(response, checks=CHECKS)

    answers_as_documented()
