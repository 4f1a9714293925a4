"""Collaborative cursors at the core: the shell around the
:class:`~core_region.cursors.rooms.RoomDirectory`, and room tokens.

Registered as ``cursors``: ``room_sync``, ``joined``, ``left``, ``moves`` and ``moves_batch``
from edges; it relays each room's traffic to the edges with members in it (in strict mode in
one order, numbered), marks an edge's members unreachable when its link ends and drops them
after ``LIGHTCONE_PRESENCE_TIMEOUT_S``. It holds no versioned data. Its admin route
``POST /admin/room-tokens`` mints room tokens (:mod:`shared.roomtoken`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from core_region.admin import MAX_BODY_BYTES
from core_region.cursors.rooms import Out, RoomDirectory
from core_region.features import Feature
from shared import openapi as oa, roomtoken
from shared.errors import BadRequest, NotFound
from shared.http import json_body
from shared.protocol import (
    STRICT,
    TOLERANT,
    Joined,
    Left,
    Level,
    Moves,
    MovesBatch,
    RoomSync,
    encode,
)

if TYPE_CHECKING:
    from core_region.node import CoreNode, EdgePeer


class CursorsFeature(Feature):
    """The cursor feature of the core (registered as ``cursors``)."""

    name = "cursors"
    link_messages = (RoomSync, Joined, Left, Moves, MovesBatch)
    levels = (STRICT, TOLERANT)

    def __init__(self, node: CoreNode) -> None:
        self.settings = node.settings
        super().__init__(node)
        self.metrics = node.metrics
        self.rooms = RoomDirectory(presence_timeout_s=self.settings.presence_timeout_s)

    def default_level(self) -> Level:
        return Level.of(self.settings.cursors_stale_ok)

    async def on_link(self, peer: EdgePeer, message: Any) -> None:
        """A cursor message from an edge: update the directory, relay what it says to relay.

        Ignored from a link that a newer one of the same edge replaced (4409): it may still
        drain frames it had buffered, and a late part of its old ``room_sync`` would keep
        members the edge no longer has (ghosts nothing would remove).
        """
        if not self.node.is_current(peer):
            return
        self.route(self._HANDLERS[type(message)](self, peer.edge_id, message))

    def _sync(self, edge: str, message: RoomSync) -> Out:
        return self.rooms.sync(edge, message.rooms, part=message.part, final=message.final)

    def _joined(self, edge: str, message: Joined) -> Out:
        return self.rooms.joined(edge, message.room, message.member)

    def _left(self, edge: str, message: Left) -> Out:
        return self.rooms.left(edge, message.room, message.id, message.reason)

    def _moves(self, edge: str, message: Moves) -> Out:
        self.metrics.cursor_moves.inc(len(message.moves))
        return self.rooms.moves(edge, message, strict=not self.level.stale_ok)

    def _moves_batch(self, edge: str, message: MovesBatch) -> Out:
        self.metrics.cursor_moves.inc(sum(len(m.moves) for m in message.batches))
        return self.rooms.moves_batch(edge, message, strict=not self.level.stale_ok)

    _HANDLERS: dict[type, Any] = {
        RoomSync: _sync,
        Joined: _joined,
        Left: _left,
        Moves: _moves,
        MovesBatch: _moves_batch,
    }

    def route(self, out: Out) -> None:
        """Send each message once encoded to the edges it names (if still connected)."""
        for edge_ids, message in out:
            try:
                frame = encode(message)
            except Exception as exc:  # no poison pill: this message alone is not relayed
                self.metrics.drops.drop("hub_fanout", message, exc)
                continue
            self.node.send_to(edge_ids, frame)

    def edge_gone(self, peer: EdgePeer) -> None:
        self.route(self.rooms.edge_down(peer.edge_id, time.monotonic()))

    def tick(self, now: float) -> None:
        self.route(self.rooms.expire(now))

    async def status(self) -> dict[str, Any]:
        return {"rooms": self.rooms.room_count(), "members": self.rooms.member_count()}

    # --- room tokens ---------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        path = "/admin/room-tokens"
        return [Route(path, self.node.admin(f"POST {path}", self._mint), methods=["POST"])]

    def openapi_paths(self) -> dict[str, Any]:
        body, answer, errors = oa.room_token_schemas()
        return {
            "/admin/room-tokens": {
                "post": {
                    **oa.admin("Mint a room token", answer, errors),
                    "requestBody": oa.request_body(body, MAX_BODY_BYTES),
                }
            }
        }

    async def _mint(self, request: Request) -> Response:
        """A room token for an app backend to hand to one client (:mod:`shared.roomtoken`)."""
        secret: str | None = self.settings.room_secret
        if not secret:
            raise NotFound(
                "this core has no LIGHTCONE_ROOM_SECRET: it cannot mint room tokens",
                code="no_room_secret",
            )
        body = await json_body(request, MAX_BODY_BYTES)
        room, name, session = body.get("room"), body.get("name"), body.get("session")
        ttl_s = body.get("ttl_s", roomtoken.DEFAULT_TTL_S)
        if not isinstance(room, str) or not room or not isinstance(name, str) or not name:
            raise BadRequest("'room' and 'name' must be non-empty strings", code="bad_field")
        if session is not None and (not isinstance(session, str) or not session):
            raise BadRequest("'session' must be a non-empty string or null", code="bad_field")
        if (
            not isinstance(ttl_s, int)
            or isinstance(ttl_s, bool)
            or not 1 <= ttl_s <= roomtoken.MAX_TTL_S
        ):
            raise BadRequest(
                f"'ttl_s' must be a whole number in 1..{roomtoken.MAX_TTL_S}", code="bad_ttl"
            )
        now = time.time()
        token = roomtoken.mint(secret, room=room, name=name, session=session, ttl_s=ttl_s, now=now)
        return JSONResponse({"token": token, "expires_at": int(now) + ttl_s})
