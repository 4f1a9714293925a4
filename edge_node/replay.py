"""Admin requests that reach an edge: ``fly-replay`` them to the core app, or say where it is.

The admin API (``/admin/...``) lives on the core only. On Fly.io, an admin request sent to
the edge app's public address lands on the nearest edge Machine. An edge whose ``FLY_REGION``
differs from ``PRIMARY_REGION`` answers it with ``409`` and ``fly-replay: app=<core app>``:
Fly's proxy then replays the request, body included (up to 1 MB), to the core app in the
same organization (https://fly.io/docs/networking/dynamic-request-routing/). The edge never
reads the body and never checks the admin token: the core does.

No replay in the primary region (``FLY_REGION == PRIMARY_REGION``), off Fly.io (either
variable unset), without a core app name, or when that name is this app's own (the replay
would come back here): the answer is ``404 admin_on_core``, naming where the admin API is.

A websocket upgrade on an admin path is never accepted: it is denied before ``accept`` with
the same answer (``send_denial_response``), as Fly asks of apps that replay upgrades.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from shared.config import from_environ, setting

REPLAY_STATUS = 409
"""Any status works with fly-replay; 409 is what superfly/fly-ruby answers."""

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@dataclass(frozen=True, slots=True)
class FlySettings:
    """What Fly.io tells a Machine about itself, and the name of the core app."""

    fly_region: str | None = setting("FLY_REGION", None, "Region of this Machine (set by Fly).")
    primary_region: str | None = setting(
        "PRIMARY_REGION", None, "The app's primary_region from fly.toml (set by Fly)."
    )
    app_name: str | None = setting("FLY_APP_NAME", None, "This app's name (set by Fly).")
    core_app: str | None = setting(
        "LIGHTCONE_CORE_APP",
        None,
        "Fly app of the core, target of fly-replay for admin requests at an edge outside "
        "PRIMARY_REGION; default: <app> of a LIGHTCONE_CORE_URL on <app>.internal.",
    )

    @classmethod
    def read(cls, environ: Mapping[str, str] | None = None) -> FlySettings:
        """From ``environ`` (the process environment by default), like every settings class."""
        return from_environ(cls, os.environ if environ is None else environ)


def core_app_of(core_url: str) -> str | None:
    """The app in a 6PN URL: ``http://[<region>.]<app>.internal:8081`` gives ``<app>``."""
    labels = (urlsplit(core_url).hostname or "").split(".")
    return labels[-2] if len(labels) >= 2 and labels[-1] == "internal" and labels[-2] else None


def replay_target(fly: FlySettings, core_url: str) -> str | None:
    """The ``fly-replay`` value for admin requests here, or None for no replay."""
    if not fly.fly_region or not fly.primary_region or fly.fly_region == fly.primary_region:
        return None
    app = fly.core_app or core_app_of(core_url)
    if not app or app == fly.app_name:
        return None
    return f"app={app}"


def answer(fly: FlySettings, core_url: str) -> Response:
    """The answer to every admin request at this edge."""
    target = replay_target(fly, core_url)
    app = fly.core_app or core_app_of(core_url) or "the core app"
    if target is not None:
        body = {"error": "replayed", "message": f"Fly's proxy replays this request to {app}."}
        return JSONResponse(body, REPLAY_STATUS, headers={"fly-replay": target})
    where = f"{app} (on the private network: {core_url.rstrip('/')}/admin)"
    return JSONResponse(
        {"error": "admin_on_core", "message": f"The admin API is served by {where}."}, 404
    )


def admin_routes(core_url: str, fly: FlySettings | None = None) -> list[BaseRoute]:
    """Routes for ``/admin`` and below, HTTP (any method) and websocket."""
    settings = FlySettings.read() if fly is None else fly

    async def http(request: Request) -> Response:
        return answer(settings, core_url)

    async def upgrade(websocket: WebSocket) -> None:
        await websocket.send_denial_response(answer(settings, core_url))

    return [
        Route("/admin", http, methods=METHODS),
        Route("/admin/{rest:path}", http, methods=METHODS),
        WebSocketRoute("/admin", upgrade),
        WebSocketRoute("/admin/{rest:path}", upgrade),
    ]
