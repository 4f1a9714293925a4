"""The edge's cursor shell: feeds :class:`~edge_node.cursors.rooms.EdgeRooms`, ticks, delivers.

Every ``tick_ms`` it asks the rooms for the batch of each room and delivers it. Each message
is encoded at most once per codec, and the same bytes are queued to every recipient
(:meth:`edge_node.clients.Clients.send`); a slow client never holds up the tick. The rooms'
batches of one tick go up to the core as one ``moves_batch`` (one link frame, split only
past the frame budget), and the core relays them to each other edge as one frame too.

A message that cannot be delivered (its encoding raises) is dropped alone, logged and counted
(``lightcone_items_dropped_total{where="room_tick"}``); the tick goes on.

The edge mesh (:mod:`edge_node.mesh`, when ``LIGHTCONE_MESH`` is on and the edge has a mesh
listener or peers): a tolerant tick also goes straight to each peer edge with members in the
room whose mesh link is ready, and what peers send is shown like the core's relay, each
position once (:meth:`~edge_node.cursors.rooms.EdgeRooms.from_peer`). The mesh runs in the
tick task's lifetime.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from edge_node.clients import ConnId
from edge_node.cursors import frames as _frames  # noqa: F401  (registers how its messages split)
from edge_node.cursors.rooms import MAX_ROOM_CHARS, EdgeRooms, Out
from edge_node.features import ClientHandler, Feature
from edge_node.mesh.link import Mesh
from shared import roomtoken
from shared.protocol import (
    STRICT,
    TOLERANT,
    Evict,
    Join,
    Joined,
    Leave,
    Left,
    Level,
    MeshMoves,
    MeshPeers,
    Message,
    Move,
    Moves,
    MovesBatch,
    Presence,
    Reach,
    RoomState,
)
from shared.tasks import spawn, stop

if TYPE_CHECKING:
    from edge_node.link import Session
    from edge_node.node import EdgeNode
    from edge_node.ws import ClientSocket

logger = logging.getLogger(__name__)

SENT_AT_PER_ROOM = 64
"""Strict mode: send times kept per room to measure the relay lag (older ones are dropped;
rooms with no local member are forgotten at the next tick)."""


class CursorsFeature(Feature):
    """The cursor feature of an edge (registered as ``cursors``)."""

    name = "cursors"
    client_messages = (Join, Move, Leave)
    link_messages = (RoomState, Joined, Left, Moves, MovesBatch, Reach, Evict)
    # mesh_peers goes up only (announce, mesh_changed)
    task = "cursor_ticks"

    def __init__(self, node: EdgeNode) -> None:
        super().__init__(node)
        self.settings = settings = node.settings
        self.metrics = node.metrics
        self.clients = node.clients
        self.rooms = EdgeRooms(
            settings.region,
            max_members=settings.max_room_members,
            max_rooms_per_conn=settings.max_rooms_per_conn,
            presence_timeout_s=settings.presence_timeout_s,
            max_rooms=settings.max_rooms,
            max_local_members=settings.max_edge_members,
            mesh=settings.mesh_on,
        )
        self._member_ids = itertools.count(1)
        self._nonce = ""
        self._sent_at: dict[str, deque[float]] = {}
        self.room_secrets = settings.room_secrets
        # Every client message calls it (the hot path): the rooms' own method, no wrapper.
        self.client_active = self.rooms.touch  # type: ignore[method-assign]
        self.metrics.rooms.set_function(self.rooms.room_count)
        self.metrics.members.set_function(self.rooms.member_count)
        self.mesh: Mesh | None = None
        if settings.mesh_on:
            self.mesh = Mesh(settings, node.token, node.metrics, lambda: node.link.edge_id, self)

    # --- clients ---------------------------------------------------------------------------

    def client_handlers(self) -> dict[type[Message], ClientHandler]:
        return {Move: self.on_move, Join: self.on_join, Leave: self.on_leave}

    def on_move(self, client: ClientSocket, message: Move, now: float) -> None:
        self.metrics.moves_in.inc()
        self.rooms.move(client.conn, message.x, message.y, message.room, now)

    def on_join(self, client: ClientSocket, message: Join, now: float) -> None:
        self.join(client.conn, message)

    def on_leave(self, client: ClientSocket, message: Leave, now: float) -> None:
        self.deliver(self.rooms.leave(client.conn, message.room))

    def error_room(self, message: Any) -> str | None:
        """The room of a join or leave, if it is a valid room name (never text that could
        not be sent back)."""
        room = message.room if isinstance(message, Join | Leave) else None
        if room is not None and not (1 <= len(room) <= MAX_ROOM_CHARS and room.isprintable()):
            return None
        return room

    def over_rate(self, client: ClientSocket, message: Any) -> bool:
        if isinstance(message, Move):
            self.metrics.moves_refused.inc()
            return False  # moves expect no answer: dropped quietly
        return True

    def client_active(self, conn: ConnId, now: float) -> None:
        self.rooms.touch(conn, now)

    def client_caught_up(self, conn: ConnId) -> None:
        """``conn`` missed frames: send it the whole picture of each of its rooms."""
        self.deliver(
            Out(clients=[([conn], self.rooms.presence(conn, r)) for r in self.rooms.rooms_of(conn)])
        )

    def client_gone(self, conn: ConnId) -> None:
        self.deliver(self.rooms.disconnect(conn))

    def member_id(self, msg: Join) -> str:
        """Server-made: from the client's secret session if it has one, else fresh.

        A session gives the same id on every (re)join of that room, so a reconnect replaces
        the member instead of adding a ghost; the id reveals nothing of the session.
        """
        if msg.session:
            digest = hashlib.blake2b(f"{msg.room}\0{msg.session}".encode(), digest_size=6)
            return f"m{digest.hexdigest()}"
        if not self._nonce:  # this edge's own, from its id (made with the link)
            self._nonce = hashlib.blake2b(
                self.node.link.edge_id.encode(), digest_size=3
            ).hexdigest()
        return f"{self.settings.region}-{self._nonce}-{next(self._member_ids)}"

    def join(self, conn: ConnId, msg: Join) -> None:
        """Raises Unauthorized when room tokens are on and ``msg`` has no valid one for its
        room, name and session (checked here, with no round trip to the core)."""
        if self.room_secrets is not None:
            roomtoken.check_join(
                msg.token,
                self.room_secrets,
                room=msg.room,
                name=msg.name,
                session=msg.session,
                now=time.time(),
            )
        self.deliver(self.rooms.join(conn, msg, self.member_id(msg), time.monotonic()))

    # --- ticks ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Tick until cancelled (and run the mesh meanwhile, if on)."""
        mesh = self.mesh
        if mesh is None:
            await self._ticks()
            return
        task = spawn("mesh", mesh.run, self.metrics.task_crashes)
        try:
            await self._ticks()
        finally:
            await stop(task)

    async def _ticks(self) -> None:
        """Tick until cancelled; a tick that runs late is not made up for."""
        interval = self.settings.tick_ms / 1000
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        mesh = self.mesh
        while True:
            next_at = max(next_at + interval, loop.time())
            await asyncio.sleep(next_at - loop.time())
            started = time.perf_counter()
            ready = mesh.ready() if mesh is not None else frozenset()
            out = self.rooms.tick(time.monotonic(), ready)
            self.metrics.frames_per_tick.observe(
                sum(1 for _, m in out.clients if isinstance(m, Moves))
            )
            self.deliver(out)
            self._forget_gone_rooms()
            took = time.perf_counter() - started
            self.metrics.tick_seconds.observe(took)
            for held in out.held_s:  # waited for the tick, plus the tick's own work
                self.metrics.held_seconds.observe(held + took)

    # --- delivery ------------------------------------------------------------------------

    def deliver(self, out: Out, path: str = "core") -> None:
        """Send what ``out`` says; ``path``: where its remote positions came from (for
        ``lightcone_cursor_moves_stale``)."""
        if out.stale:
            self.metrics.moves_stale.labels(path).inc(out.stale)
        if out.peers and self.mesh is not None:
            for region, batches in out.peers.items():
                self.mesh.send(region, batches)
        for conns, message in out.clients:
            try:
                self.send(conns, message)
            except Exception as exc:  # no poison pill: this message alone is lost
                self.metrics.drops.drop("room_tick", message, exc)
        batch: list[Moves] = []
        for message in out.core:
            if not isinstance(message, Moves):
                self.node.link.post(message, self)
                continue
            batch.append(message)
            self.metrics.moves_up.inc(len(message.moves))
            if self.rooms.mode == STRICT:
                sent = self._sent_at.get(message.room)
                if sent is None:
                    sent = self._sent_at[message.room] = deque(maxlen=SENT_AT_PER_ROOM)
                sent.append(time.perf_counter())
        if batch:
            self.node.link.post(MovesBatch(batch), self)  # the whole tick in one link frame

    def _forget_gone_rooms(self) -> None:
        for room in [r for r in self._sent_at if not self.rooms.has(r)]:
            del self._sent_at[room]

    def send(self, conns: list[ConnId], message: Message) -> None:
        """Queue ``message`` to each connection, encoded once per codec. A slow client may
        miss room frames (volatile): it gets a fresh presence once it catches up."""
        sent = self.clients.send(conns, message, volatile=not isinstance(message, Presence))
        if isinstance(message, Moves):
            self.metrics.moves_out.inc(len(message.moves) * sent)

    # --- the link --------------------------------------------------------------------------

    def link_up(self, session: Session) -> None:
        self._sent_at.clear()  # batches in flight will not come back
        self.deliver(self.rooms.set_link(True))
        for message in self.announce():
            session.post(message, self)

    def link_down(self) -> None:
        self._sent_at.clear()
        self.deliver(self.rooms.set_link(False))

    def announce(self) -> list[Message]:
        if self.mesh is None:
            return [self.rooms.sync()]
        return [self.rooms.sync(), MeshPeers(sorted(self.rooms.mesh_up))]

    # --- the mesh --------------------------------------------------------------------------

    def mesh_changed(self, region: str, up: bool) -> None:
        self.deliver(self.rooms.set_mesh(region, up))
        self.node.link.post(MeshPeers(sorted(self.rooms.mesh_up)), self)  # dropped if down

    def mesh_moves(self, region: str, message: MeshMoves) -> None:
        for moves in message.batches:
            try:
                self.deliver(self.rooms.from_peer(region, moves), "mesh")
            except Exception as exc:  # one room's batch alone is lost
                self.metrics.drops.drop("mesh_receive", moves, exc)

    def status(self) -> dict[str, Any]:
        """``mesh``: the mesh listener's port and each peer's link (null when off)."""
        return {"mesh": self.mesh.status() if self.mesh is not None else None}

    def flag_changed(self, level: Level) -> None:
        mode = level.level if level.level == STRICT else TOLERANT
        if mode != self.rooms.mode:
            self._sent_at.clear()
        self.deliver(self.rooms.set_mode(mode))

    async def on_link(self, message: Any) -> None:
        self.relayed(message)

    def relayed(self, message: Message) -> None:
        if isinstance(message, MovesBatch):
            for moves in message.batches:
                try:
                    self.relayed(moves)
                except Exception as exc:  # one room's relay alone is lost
                    self.metrics.drops.drop("link_receive", moves, exc)
            return
        if isinstance(message, Moves):
            self.metrics.moves_relayed.inc(len(message.moves))
            self._relay_lag(message)
        self.deliver(self.rooms.from_core(message))

    def _relay_lag(self, message: Moves) -> None:
        """Strict mode: time from our batch going up to its sequenced relay coming back."""
        sent = self._sent_at.get(message.room)
        if sent and message.seq is not None and message.moves[0].id in self._local_ids(message):
            self.metrics.relay_seconds.observe(time.perf_counter() - sent.popleft())

    def _local_ids(self, message: Moves) -> set[str]:
        return set(self.rooms.local_ids(message.room))
