"""The demo's control API: topology, partitions, core nodes, flags and room tokens, for
``lightcone partition``, ``lightcone core-node`` and the demo page. It runs inside
``lightcone up`` on a loopback port and only there.

The page never holds the admin token: flag changes and room tokens go through this API, which
forwards them to the core's admin API (of the first running core node) with the token
``lightcone up`` generated.

Who may call it (:class:`Guard`, checked in this order before anything else runs):

1. ``Host`` must be a loopback name (``127.0.0.1``, ``localhost``, ``[::1]``), else 403
   ``bad_host``: a web page that re-points its own name at 127.0.0.1 (DNS rebinding) is
   refused.
2. The path must start with ``/c/<capability>``, a random secret ``lightcone up`` makes and
   writes only to its status file (mode 0600) and to its edges' environment
   (``LIGHTCONE_DEMO_CONTROL_URL``), else 404 ``not_found``: a page that cannot read either
   cannot name a route.
3. ``Origin``, when sent, must be one of the demo's own pages (its edges and entries, on a
   loopback name), else 403 ``origin_not_allowed``: another site's page cannot ``POST`` here,
   not even blind. CORS answers those origins only.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from deploy.local.cores import STATES, CoreNodes
from deploy.local.latency import LatencyProxy
from edge_node.origins import host_name, is_loopback_name, loopback_origins
from shared import openapi
from shared.errors import Forbidden, LightconeError, NotFound, Unavailable
from shared.http import EXCEPTION_HANDLERS, json_body

MAX_BODY_BYTES = 1024
"""Largest request body (flag changes and room-token requests are a few dozen bytes)."""


@dataclass
class DemoState:
    """What the control API acts on: the core nodes, each edge region's link proxies (one per
    core node), and the topology."""

    cores: CoreNodes
    admin_token: str
    capability: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    """The secret path segment every route is under (``/c/<capability>/...``)."""
    links: dict[str, list[LatencyProxy]] = field(default_factory=dict)
    legs: dict[str, list[LatencyProxy]] = field(default_factory=dict)
    """Each edge region's mesh legs (one per peer; none with --no-mesh)."""
    topology: dict[str, Any] = field(default_factory=dict)
    _client: httpx.AsyncClient | None = None

    @property
    def prefix(self) -> str:
        return f"/c/{self.capability}"

    def origins(self) -> frozenset[str]:
        """The demo's own pages: every edge, user entry and PoP, by each loopback name."""
        urls = [n["url"] for n in self.topology.get("nodes", []) if n.get("kind") == "edge"]
        urls += [e["url"] for e in self.topology.get("entries", [])]
        urls += [e["pop_url"] for e in self.topology.get("entries", []) if e.get("pop_url")]
        return loopback_origins(p for u in urls if (p := urlsplit(u).port) is not None)

    def client(self) -> httpx.AsyncClient:
        """One client for the API's lifetime: making one costs tens of ms of CPU on the loop
        that also runs every latency proxy."""
        if self._client is None:
            headers = {"Authorization": f"Bearer {self.admin_token}"}
            self._client = httpx.AsyncClient(headers=headers, timeout=5)
        return self._client

    def core_url(self) -> str:
        """The first running core node's URL (every node answers the admin API).

        Raises:
            Unavailable: ``core_node_unavailable``: none runs.
        """
        urls = self.cores.urls()
        if not urls:
            raise Unavailable(
                "no core node is running: start one (lightcone core-node start NAME)",
                code="core_node_unavailable",
            )
        return urls[0]

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def link(self, region: str) -> list[LatencyProxy]:
        """The edge's link proxies, one per core node."""
        if region not in self.links:
            known = ", ".join(sorted(self.links))
            raise NotFound(f"no edge in region {region!r}; edges: {known}", code="unknown_region")
        return self.links[region]

    def mesh_legs(self, region: str) -> list[LatencyProxy]:
        """The edge's mesh legs, one per peer."""
        self.link(region)  # an unknown region: 404
        return self.legs.get(region, [])

    def partitions(self) -> dict[str, bool]:
        """Whether each edge is cut off: its links to every core node cut."""
        return {
            region: all(p.is_cut for p in proxies) for region, proxies in sorted(self.links.items())
        }


def create_control_app(state: DemoState) -> Starlette:
    async def topology(request: Request) -> Response:
        public = {k: v for k, v in state.topology.items() if k != "admin_token"}
        mesh_cut = {
            r: bool(ps) and all(p.is_cut for p in ps) for r, ps in sorted(state.legs.items())
        }
        return JSONResponse(
            {**public, "partitions": state.partitions(), "mesh_partitions": mesh_cut}
        )

    def cutting(
        proxies: Callable[[str], list[LatencyProxy]], cut: bool
    ) -> Callable[[Request], Awaitable[Response]]:
        """An endpoint that cuts (or heals) every proxy ``proxies(region)`` names."""

        async def endpoint(request: Request) -> Response:
            region = request.path_params["region"]
            for proxy in proxies(region):
                if cut:
                    proxy.cut()
                else:
                    proxy.heal()
            return JSONResponse({"region": region, "partitioned": cut})

        return endpoint

    async def core_nodes(request: Request) -> Response:
        return JSONResponse({"core_nodes": state.cores.views()})

    async def stop_core_node(request: Request) -> Response:
        node = await state.cores.stop(request.path_params["name"])
        return JSONResponse(node.view())

    async def kill_core_node(request: Request) -> Response:
        node = await state.cores.stop(request.path_params["name"], kill=True)
        return JSONResponse(node.view())

    async def start_core_node(request: Request) -> Response:
        node = await state.cores.start(request.path_params["name"])
        return JSONResponse(node.view())

    async def flags(request: Request) -> Response:
        return await _forward(state, "GET", "/admin/flags", None)

    async def set_flag(request: Request) -> Response:
        body = await json_body(request, MAX_BODY_BYTES)
        # Escaped: the feature is outside text, and a '?', '/' or control character must not
        # reshape the core's URL.
        path = f"/admin/flags/{quote(request.path_params['feature'], safe='')}"
        return await _forward(state, "PUT", path, body)

    async def room_token(request: Request) -> Response:
        body = await json_body(request, MAX_BODY_BYTES)
        return await _forward(state, "POST", "/admin/room-tokens", body)

    routes = [
        Route("/topology", topology),
        Route("/partition/{region}", cutting(state.link, True), methods=["POST"]),
        Route("/heal/{region}", cutting(state.link, False), methods=["POST"]),
        Route("/mesh-partition/{region}", cutting(state.mesh_legs, True), methods=["POST"]),
        Route("/mesh-heal/{region}", cutting(state.mesh_legs, False), methods=["POST"]),
        Route("/core-nodes", core_nodes),
        Route("/core-nodes/{name}/stop", stop_core_node, methods=["POST"]),
        Route("/core-nodes/{name}/kill", kill_core_node, methods=["POST"]),
        Route("/core-nodes/{name}/start", start_core_node, methods=["POST"]),
        Route("/flags", flags),
        Route("/flags/{feature}", set_flag, methods=["PUT"]),
        Route("/room-token", room_token, methods=["POST"]),
        openapi.route(lambda: openapi_document(MAX_BODY_BYTES)),
    ]
    middleware = [
        Middleware(Guard, state=state),
        Middleware(_DemoCors, state=state),
    ]
    return Starlette(routes=routes, middleware=middleware, exception_handlers=EXCEPTION_HANDLERS)


class Guard:
    """ASGI middleware: Host, capability and Origin checks (module docstring), then the app
    sees the path below ``/c/<capability>``."""

    def __init__(self, app: ASGIApp, state: DemoState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            self.check(scope["path"], Headers(scope=scope))
        except LightconeError as exc:
            await JSONResponse(exc.to_json(), exc.status)(scope, receive, send)
            return
        root = scope.get("root_path", "") + self.state.prefix
        await self.app({**scope, "root_path": root}, receive, send)

    def check(self, path: str, headers: Headers) -> None:
        """Raises Forbidden or NotFound unless the request may go ahead."""
        host = headers.get("host", "")
        if not is_loopback_name(host_name(host)):
            raise Forbidden(f"host {host!r} is not a loopback name", code="bad_host")
        segment = path.removeprefix("/c/").split("/", 1)[0]
        given = segment if path.startswith("/c/") else ""
        if not hmac.compare_digest(given.encode(), self.state.capability.encode()):
            raise NotFound("not found", code="not_found")
        origin = headers.get("origin")
        if origin is not None and origin.lower() not in self.state.origins():
            raise Forbidden(
                f"origin {origin!r} is not a page of this demo", code="origin_not_allowed"
            )


class _DemoCors(CORSMiddleware):
    """CORS for the demo's own pages only (their ports are known once the edges run)."""

    def __init__(self, app: ASGIApp, state: DemoState) -> None:
        super().__init__(app, allow_methods=["GET", "POST", "PUT"], allow_headers=["content-type"])
        self.state = state

    def is_allowed_origin(self, origin: str) -> bool:
        return origin.lower() in self.state.origins()


async def _forward(state: DemoState, method: str, path: str, body: Any) -> Response:
    url = state.core_url()
    try:
        answer = await state.client().request(method, f"{url}{path}", json=body)
    except httpx.TransportError as exc:
        raise Unavailable(
            f"the core node at {url} did not answer: {exc!r}", code="core_node_unavailable"
        ) from exc
    return Response(answer.content, answer.status_code, media_type="application/json")


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signals to its host process (``lightcone up``)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def embedded(app: Starlette) -> tuple[EmbeddedServer, socket.socket]:
    """A server for ``app`` and its listening socket on a free loopback port."""
    sock = socket.create_server(("127.0.0.1", 0))
    # Warnings only: its start and stop lines would interleave with the demo's progress.
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="off", log_level="warning"
    )
    return EmbeddedServer(config), sock


def openapi_document(max_body_bytes: int) -> dict[str, Any]:
    """The demo's control API (``lightcone up`` only; docs/protocol.md §10). Every path is
    below ``/c/<capability>``, behind the Host, capability and Origin checks."""
    region = [openapi.path_param("region")]
    cut = openapi.obj({"region": {"type": "string"}, "partitioned": {"type": "boolean"}})
    forwarded = "the core's answer, forwarded"
    token_body, token_answer, token_errors = openapi.room_token_schemas()

    def cuts(summary: str, answer: str) -> openapi.Operation:
        responses = {
            "200": openapi.json_answer(cut, answer),
            **openapi.error_answers({404: "unknown_region"}),
        }
        return openapi.operation(summary, responses, parameters=region)

    core_node = openapi.obj(
        {
            "kind": {"type": "string", "const": "core"},
            "name": {"type": "string"},
            "region": {"type": "string"},
            "url": {"type": "string"},
            "pid": {"type": ["integer", "null"]},
            "state": {"type": "string", "enum": list(STATES)},
        }
    )
    name = [openapi.path_param("name")]

    def acts(summary: str, answer: str, errors: dict[int, str]) -> openapi.Operation:
        responses = {
            "200": openapi.json_answer(core_node, answer),
            **openapi.error_answers(
                {404: "unknown_core_node", 409: "core_node_external", **errors}
            ),
        }
        return openapi.operation(summary, responses, parameters=name)

    paths: dict[str, dict[str, openapi.Operation]] = {
        "/topology": {
            "get": openapi.operation(
                "The demo's topology and partitions",
                {"200": openapi.json_answer({"type": "object"}, "OK")},
            )
        },
        "/partition/{region}": {"post": cuts("Cut an edge's link", "cut")},
        "/heal/{region}": {"post": cuts("Heal an edge's link", "healed")},
        "/mesh-partition/{region}": {"post": cuts("Cut an edge's mesh legs", "cut")},
        "/mesh-heal/{region}": {"post": cuts("Heal an edge's mesh legs", "healed")},
        "/core-nodes": {
            "get": openapi.operation(
                "The core nodes and their states",
                {
                    "200": openapi.json_answer(
                        openapi.obj({"core_nodes": {"type": "array", "items": core_node}}), "OK"
                    )
                },
            )
        },
        "/core-nodes/{name}/stop": {
            "post": acts("Stop a core node (SIGTERM), on purpose", "stopped", {})
        },
        "/core-nodes/{name}/kill": {
            "post": acts("Crash a core node (SIGKILL), on purpose", "crashed", {})
        },
        "/core-nodes/{name}/start": {
            "post": acts(
                "Start a stopped core node again (same port and settings); answers once ready",
                "running",
                {503: "core_node_unavailable"},
            )
        },
        "/flags": {
            "get": openapi.operation(
                "Every feature's flag (forwarded)",
                {
                    "200": openapi.json_answer(openapi.FLAGS, forwarded),
                    **openapi.error_answers({503: "core_node_unavailable"}),
                },
            )
        },
        "/flags/{feature}": {
            "put": openapi.operation(
                "Set a feature's flag (forwarded)",
                {
                    "200": openapi.json_answer(openapi.FLAG, forwarded),
                    **openapi.error_answers(
                        {
                            400: "bad_json, bad_flag, bad_max_age_ms",
                            404: "not_found",
                            413: "payload_too_large",
                        }
                    ),
                },
                parameters=[openapi.path_param("feature")],
                requestBody=openapi.request_body(openapi.FLAG_BODY, max_body_bytes),
            )
        },
        "/room-token": {
            "post": openapi.operation(
                "Mint a room token for the page (forwarded)",
                {
                    "200": openapi.json_answer(token_answer, forwarded),
                    **openapi.error_answers(token_errors),
                },
                requestBody=openapi.request_body(token_body, max_body_bytes),
            )
        },
    }
    doc = openapi.document("lightcone demo control", paths, {})
    guard = openapi.error_answers(
        {403: "bad_host, origin_not_allowed", 404: "not_found (no capability)"}
    )
    for operations in doc["paths"].values():
        for operation in operations.values():
            for status, response in guard.items():
                operation["responses"].setdefault(status, response)
    doc["servers"] = [
        {
            "url": "/c/{capability}",
            "variables": {"capability": {"default": "capability", "description": "secret"}},
        }
    ]
    return doc
