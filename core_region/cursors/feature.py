"""Collaborative cursors at the core: the shell around the
:class:`~core_region.cursors.rooms.RoomDirectory`, and room tokens.

Registered as ``cursors``: ``room_sync``, ``joined``, ``left``, ``moves`` and ``moves_batch``
from edges; it relays each room's traffic to the edges with members in it (in strict mode in
one order, numbered), marks an edge's members unreachable when its link ends and drops them
after ``LIGHTCONE_PRESENCE_TIMEOUT_S``. It holds no versioned data. Its admin route
``POST /admin/room-tokens`` mints room tokens (:mod:`shared.roomtoken`).

Several core nodes (``node.broker`` set): what this node's edges say is applied here and
published (:mod:`.cluster`); what other nodes publish is applied under their edges' ids
(:mod:`.rooms`, "Several core nodes"). Strict moves are not relayed as they come in: they go
to the broker, which numbers them per room, and every node, this one included, relays them
as they come back, numbered, so every member of a strict room sees one order whichever node
its edge is on. A node that comes (back) into view gets every edge of this node announced
again; a node gone, or the broker lost, marks its edges' members unreachable (removed after
the presence timeout). While the broker is down strict moves are dropped (the rooms pause:
one order or none) and tolerant moves reach only this node's edges. The cursors flag set on
one node reaches the others as every flag does (:meth:`core_region.node.CoreNode.attach`).
Without a broker everything stays on this node, as before.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from core_region.admin import MAX_BODY_BYTES
from core_region.cursors.cluster import (
    ANNOUNCE_PART_MEMBERS,
    CHANNEL,
    ORDERED_CHANNEL,
    counter,
    decode_event,
    encode_event,
)
from core_region.cursors.rooms import HERE, NodeId, Out, RoomDirectory
from core_region.features import Feature
from shared import openapi as oa, roomtoken
from shared.errors import BadRequest, NotFound, ProtocolError
from shared.http import json_body
from shared.protocol import (
    STRICT,
    TOLERANT,
    Joined,
    Left,
    Level,
    MeshPeers,
    Moves,
    MovesBatch,
    RoomSync,
    encode,
)

if TYPE_CHECKING:
    from core_region.node import CoreNode, EdgePeer

logger = logging.getLogger(__name__)


class CursorsFeature(Feature):
    """The cursor feature of the core (registered as ``cursors``)."""

    name = "cursors"
    link_messages = (RoomSync, Joined, Left, Moves, MovesBatch, MeshPeers)
    levels = (STRICT, TOLERANT)

    def __init__(self, node: CoreNode) -> None:
        self.settings = node.settings
        super().__init__(node)
        self.metrics = node.metrics
        self.rooms = RoomDirectory(presence_timeout_s=self.settings.presence_timeout_s)

    def default_level(self) -> Level:
        return Level.of(self.settings.cursors_stale_ok)

    async def start(self) -> None:
        broker = self.node.broker
        if broker is not None:
            broker.on(CHANNEL, self._remote)
            broker.on_ordered(ORDERED_CHANNEL, self._numbered)
            broker.on_node(self._node_changed)
            broker.on_down(self._broker_down)

    async def on_link(self, peer: EdgePeer, message: Any) -> None:
        """A cursor message from an edge: update the directory, relay what it says to relay.

        Ignored from a link that a newer one of the same edge replaced (4409): it may still
        drain frames it had buffered, and a late part of its old ``room_sync`` would keep
        members the edge no longer has (ghosts nothing would remove).
        """
        if not self.node.is_current(peer):
            return
        broker = self.node.broker
        if broker is None:
            self.route(self._HANDLERS[type(message)](self, peer.edge_id, message, HERE, None))
            self._relay_count()
            return
        edge = peer.edge_id
        if isinstance(message, Moves | MovesBatch) and not self.level.stale_ok:
            self._moves_count(message)
            for batch in message.batches if isinstance(message, MovesBatch) else [message]:
                mine = self.rooms.owned(edge, batch)
                if mine is not None:  # relayed when the broker hands it back, numbered
                    broker.publish_ordered(
                        ORDERED_CHANNEL, counter(batch.room), encode_event(edge, mine)
                    )
            return
        self.route(self._HANDLERS[type(message)](self, edge, message, HERE, None))
        self._relay_count()
        if self.rooms.is_here(edge):
            broker.publish(CHANNEL, encode_event(edge, message))

    def _sync(self, edge: str, message: RoomSync, node: NodeId, strict: bool | None) -> Out:
        return self.rooms.sync(
            edge, message.rooms, part=message.part, final=message.final, node=node
        )

    def _joined(self, edge: str, message: Joined, node: NodeId, strict: bool | None) -> Out:
        return self.rooms.joined(edge, message.room, message.member, node=node)

    def _left(self, edge: str, message: Left, node: NodeId, strict: bool | None) -> Out:
        return self.rooms.left(edge, message.room, message.id, message.reason, node=node)

    def _moves(self, edge: str, message: Moves, node: NodeId, strict: bool | None) -> Out:
        if strict is None:
            self._moves_count(message)
            strict = not self.level.stale_ok
        return self.rooms.moves(edge, message, strict=strict, node=node)

    def _moves_batch(
        self, edge: str, message: MovesBatch, node: NodeId, strict: bool | None
    ) -> Out:
        if strict is None:
            self._moves_count(message)
            strict = not self.level.stale_ok
        return self.rooms.moves_batch(edge, message, strict=strict, node=node)

    def _moves_count(self, message: Moves | MovesBatch) -> None:
        if isinstance(message, Moves):
            self.metrics.cursor_moves.inc(len(message.moves))
        else:
            self.metrics.cursor_moves.inc(sum(len(m.moves) for m in message.batches))

    def _relay_count(self) -> None:
        """Tolerant positions relayed, and left to the edges' mesh (:mod:`.rooms`)."""
        relayed, meshed = self.rooms.take_counts()
        if relayed:
            self.metrics.cursor_relayed.labels("core").inc(relayed)
        if meshed:
            self.metrics.cursor_relayed.labels("mesh").inc(meshed)

    def _mesh_peers(self, edge: str, message: MeshPeers, node: NodeId, strict: bool | None) -> Out:
        return self.rooms.mesh_peers(edge, message.regions, node=node)

    _HANDLERS: dict[type, Any] = {
        MeshPeers: _mesh_peers,
        RoomSync: _sync,
        Joined: _joined,
        Left: _left,
        Moves: _moves,
        MovesBatch: _moves_batch,
    }
    """Each edge message's handler: ``(edge, message, node, strict)``; ``strict`` None: an
    edge's own message here (counted, strict by the flag), False: tolerant moves of another
    node's edge."""

    def route(self, out: Out) -> None:
        """Send each message once encoded to the edges it names (if still connected)."""
        peers = self.node.peers
        for edge_ids, message in out:
            if self.node.broker is not None:  # several nodes: most edges are elsewhere
                edge_ids = [e for e in edge_ids if e in peers]
                if not edge_ids:
                    continue
            try:
                frame = encode(message)
            except Exception as exc:  # no poison pill: this message alone is not relayed
                self.metrics.drops.drop("hub_fanout", message, exc)
                continue
            self.node.send_to(edge_ids, frame)

    def edge_gone(self, peer: EdgePeer) -> None:
        edge = peer.edge_id
        here = self.rooms.is_here(edge)
        self.route(self.rooms.edge_down(edge, time.monotonic()))
        if here and self.node.broker is not None:
            self.node.broker.publish(CHANNEL, encode_event(edge, None))

    def tick(self, now: float) -> None:
        self.route(self.rooms.expire(now))

    async def status(self) -> dict[str, Any]:
        return {"rooms": self.rooms.room_count(), "members": self.rooms.member_count()}

    # --- other core nodes, through the broker --------------------------------------------

    def _node(self, sender: str) -> NodeId:
        broker = self.node.broker
        return HERE if broker is not None and sender == broker.node_id else sender

    def _remote(self, sender: str, payload: bytes) -> None:
        """What another node's edge said (a malformed event raises: the broker drops it)."""
        edge, message = decode_event(payload)
        if message is None:
            if edge in self.node.peers:
                # Its link is here, live: that node's news is old (it and this node lost
                # the broker while the edge moved): claim the edge back, for every node.
                self.rooms.claim(edge)
                self._announce(edge)
            else:
                self.route(self.rooms.edge_down(edge, time.monotonic(), node=sender))
            return
        self.route(self._HANDLERS[type(message)](self, edge, message, sender, False))
        self._relay_count()

    def _numbered(self, sender: str, seq: int, payload: bytes) -> None:
        """A strict move, numbered by the broker: every node relays it in that order."""
        edge, message = decode_event(payload)
        if not isinstance(message, Moves):
            raise ProtocolError("a numbered cursor event carries moves")
        self.route(self.rooms.sequenced(edge, message, seq, node=self._node(sender)))

    def _node_changed(self, node: str, alive: bool) -> None:
        if alive:  # a node (back) in view: it learns this node's edges' rooms
            for edge in sorted(self.node.peers):
                self._announce(edge)
        else:
            self.route(self.rooms.node_down(node, time.monotonic()))

    def _broker_down(self) -> None:
        self.route(self.rooms.remote_down(time.monotonic()))

    def _announce(self, edge: str) -> None:
        broker = self.node.broker
        if broker is None or not self.rooms.is_here(edge):
            return
        for part in self.rooms.announce(edge, ANNOUNCE_PART_MEMBERS):
            broker.publish(CHANNEL, encode_event(edge, part))

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
