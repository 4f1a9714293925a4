"""The demo's control API: topology, partitions and flags, for ``lightcone partition`` and the
demo page. It runs inside ``lightcone up`` on a loopback port and only there.

The page never holds the admin token: flag changes go through this API, which forwards them
to the core's admin API with the token ``lightcone up`` generated.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared import openapi
from shared.errors import NotFound
from shared.http import EXCEPTION_HANDLERS, json_body
from shared.proxy import LatencyProxy

MAX_BODY_BYTES = 1024
"""Largest body of a control request (a flag change)."""


@dataclass
class DemoState:
    """What the control API acts on: one link proxy per edge region, and the topology."""

    core_url: str
    admin_token: str
    links: dict[str, LatencyProxy] = field(default_factory=dict)
    topology: dict[str, Any] = field(default_factory=dict)
    _client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        """One client for the API's lifetime: making one costs tens of ms of CPU on the loop
        that also runs every latency proxy."""
        if self._client is None:
            headers = {"Authorization": f"Bearer {self.admin_token}"}
            self._client = httpx.AsyncClient(base_url=self.core_url, headers=headers, timeout=5)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def link(self, region: str) -> LatencyProxy:
        if region not in self.links:
            known = ", ".join(sorted(self.links))
            raise NotFound(f"no edge in region {region!r}; edges: {known}", code="unknown_region")
        return self.links[region]

    def partitions(self) -> dict[str, bool]:
        return {region: proxy.is_cut for region, proxy in sorted(self.links.items())}


def create_control_app(state: DemoState) -> Starlette:
    async def topology(request: Request) -> Response:
        public = {k: v for k, v in state.topology.items() if k != "admin_token"}
        return JSONResponse({**public, "partitions": state.partitions()})

    async def partition(request: Request) -> Response:
        region = request.path_params["region"]
        state.link(region).cut()
        return JSONResponse({"region": region, "partitioned": True})

    async def heal(request: Request) -> Response:
        region = request.path_params["region"]
        state.link(region).heal()
        return JSONResponse({"region": region, "partitioned": False})

    async def flags(request: Request) -> Response:
        return await _forward(state, "GET", "/admin/flags", None)

    async def set_flag(request: Request) -> Response:
        body = await json_body(request, MAX_BODY_BYTES)
        path = f"/admin/flags/{request.path_params['feature']}"
        return await _forward(state, "PUT", path, body)

    routes = [
        Route("/topology", topology),
        Route("/partition/{region}", partition, methods=["POST"]),
        Route("/heal/{region}", heal, methods=["POST"]),
        Route("/flags", flags),
        Route("/flags/{feature}", set_flag, methods=["PUT"]),
        openapi.route(lambda: openapi.control(MAX_BODY_BYTES)),
    ]
    cors = Middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST", "PUT"],
        allow_headers=["content-type"],
    )
    return Starlette(routes=routes, middleware=[cors], exception_handlers=EXCEPTION_HANDLERS)


async def _forward(state: DemoState, method: str, path: str, body: Any) -> Response:
    answer = await state.client().request(method, path, json=body)
    return Response(answer.content, answer.status_code, media_type="application/json")


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signals to its host process (``lightcone up``)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def embedded(app: Starlette) -> tuple[EmbeddedServer, socket.socket]:
    """A server for ``app`` and its listening socket on a free loopback port."""
    sock = socket.create_server(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    return EmbeddedServer(config), sock
