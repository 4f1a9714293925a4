"""Cursor rooms at an edge: who is in each room, what moved, and who must hear of it.

Pure and synchronous: the shell feeds it client messages, link messages and clock ticks
(``now`` is a parameter) and carries out the :class:`Out` it returns — messages for local
connections (each message is encoded once and the same bytes go to every recipient) and
messages for the core.

Modes (the ``cursors`` flag):

* tolerant — a local move is kept as the member's latest position and fanned out to the
  room's local members at the next tick; the tick's batch also goes to the core, which
  relays it to the other edges with members in the room. Remote batches are delivered as
  they arrive. With the edge mesh (:mod:`edge_node.mesh`), the batch goes straight to each
  peer edge that has members in the room and whose mesh link is up (``Out.peers``), and the
  core is told not to relay it there (``Moves.meshed``): the core's relay is the fallback.
  Each position sent carries its member's counter ``n`` (only from an edge in a mesh: the
  others' positions have one path); a remote position is shown only if
  its counter is newer than the last one shown of that member, whichever path (mesh or
  core) brought it, so a move is shown once and a member never goes back in time.
* strict — local moves are not shown locally; the tick's batch goes to the core, which
  stamps it with the room's sequence number and relays it to every edge in the room, this
  one included. Every member sees the same batches in the same order. Without the core,
  moves are dropped and clients are told the room is paused. The mesh is not used.

Partitions: cut off from the core, an edge keeps exchanging tolerant moves with the peers
its mesh still reaches, for the members present before the cut (a join waits for the core,
which is what tells the other edges of it); their members are not listed as unreachable,
and each room's status names those regions (``room_status.direct``).

Moves are volatile: a batch that cannot be sent is dropped, never replayed later.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from edge_node.clients import ConnId
from shared.errors import BadRequest, Unavailable
from shared.protocol import (
    STRICT,
    TOLERANT,
    Evict,
    Join,
    Joined,
    Left,
    Member,
    Message,
    Moves,
    Position,
    Presence,
    Reach,
    RoomState,
    RoomStatus,
    RoomSync,
)

COORD_MAX = 10000
MAX_ROOM_CHARS = 64
MAX_NAME_CHARS = 32
MAX_SESSION_CHARS = 64
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")

AWAIT_CORE_S = 2.0
"""Longest a first joiner waits for the core's list of remote members before its presence."""


@dataclass
class Out:
    """What the shell must send: ``(connections, message)`` pairs and messages to the core."""

    clients: list[tuple[list[ConnId], Message]] = field(default_factory=list)
    core: list[Message] = field(default_factory=list)
    peers: dict[str, list[Moves]] = field(default_factory=dict)
    """Tolerant batches for peer edges over the mesh, by the peer's region."""
    stale: int = 0
    """Remote positions not shown: their member's counter was not newer than one shown, or
    (from a peer) the member is not one of that peer's."""
    held_s: list[float] = field(default_factory=list, compare=False)
    """How long each position a tick sends waited for it (server-side delivery delay)."""

    def extend(self, other: Out) -> Out:
        self.clients += other.clients
        self.core += other.core
        for region, batches in other.peers.items():
            self.peers.setdefault(region, []).extend(batches)
        self.stale += other.stale
        self.held_s += other.held_s
        return self


@dataclass
class _Local:
    member: Member
    conn: ConnId
    last_seen: float
    n: int = 0  # the member's move counter: positions sent so far (Position.n)


@dataclass
class _Room:
    local: dict[str, _Local] = field(default_factory=dict)
    remote: dict[str, Member] = field(default_factory=dict)
    pending: dict[str, Position] = field(default_factory=dict)
    pending_at: dict[str, float] = field(default_factory=dict)  # when each position arrived
    synced: bool = False  # the core has told us who is on the other edges
    shown: dict[str, int] = field(default_factory=dict)  # remote member -> last counter shown
    awaiting: set[ConnId] = field(default_factory=set)  # joined, presence not sent yet
    awaiting_since: float = 0.0

    def conns(self) -> list[ConnId]:
        """Connections to tell of room events: members whose presence was sent."""
        return sorted({m.conn for m in self.local.values()} - self.awaiting)

    def members(self, direct: set[str]) -> list[Member]:
        """Every member; a remote one the mesh reaches (its region in ``direct``) is
        reachable whatever the core says."""
        remote = [
            m if m.reachable or m.region not in direct else replace(m, reachable=True)
            for m in self.remote.values()
        ]
        return [m.member for m in self.local.values()] + remote

    def unreachable(self, direct: set[str]) -> list[str]:
        return sorted(
            i for i, m in self.remote.items() if not m.reachable and m.region not in direct
        )

    def regions(self) -> set[str]:
        """The regions of the remote members (the peer edges with members here)."""
        return {m.region for m in self.remote.values()}

    def fresh(self, position: Position) -> bool:
        """Is ``position`` newer than the last one shown of its member (and note it)?"""
        if position.n is None:
            return True  # an edge without the mesh: nothing to compare
        if position.n <= self.shown.get(position.id, 0):
            return False
        self.shown[position.id] = position.n
        return True


class EdgeRooms:
    def __init__(
        self,
        region: str,
        *,
        max_members: int = 200,
        max_rooms_per_conn: int = 4,
        presence_timeout_s: float = 20.0,
        max_rooms: int = 10000,
        max_local_members: int = 50000,
        mesh: bool = False,
    ) -> None:
        self.region = region
        self.mesh = mesh
        """This edge is in an edge mesh: its tolerant positions carry their counters (a peer
        may get them by both paths). Without it they go as before, by the core only."""
        self.max_members = max_members
        self.max_rooms_per_conn = max_rooms_per_conn
        self.max_rooms = max_rooms
        """Rooms this edge hosts (rooms with a local member); a join that would open one
        more is refused with ``edge_full``."""
        self.max_local_members = max_local_members
        """Local members across all rooms; a join beyond it is refused with ``edge_full``.
        With ``max_members`` per room this also bounds the remote members held here."""
        self._local_members = 0
        self.presence_timeout_s = presence_timeout_s
        self.mode = TOLERANT
        self.link_up = False
        self.mesh_up: set[str] = set()
        """Regions of the peer edges whose mesh link is up."""
        self._rooms: dict[str, _Room] = {}
        self._by_conn: dict[ConnId, dict[str, str]] = {}  # conn -> room -> member id

    # --- reading -------------------------------------------------------------------------

    def rooms_of(self, conn: ConnId) -> dict[str, str]:
        return dict(self._by_conn.get(conn, {}))

    def has(self, room: str) -> bool:
        """Does ``room`` have a local member?"""
        return room in self._rooms

    def local_ids(self, room: str) -> list[str]:
        state = self._rooms.get(room)
        return list(state.local) if state else []

    def member_count(self) -> int:
        return sum(len(r.local) + len(r.remote) for r in self._rooms.values())

    def room_count(self) -> int:
        return len(self._rooms)

    def local_member_count(self) -> int:
        return self._local_members

    def presence(self, conn: ConnId, room: str) -> Presence:
        """The full picture of ``room`` for the member that ``conn`` has there."""
        state = self._rooms[room]
        you = self._by_conn[conn][room]
        return Presence(room, you, state.members(self._direct()), self.mode, self.link_up)

    def status(self, room: str) -> RoomStatus:
        state = self._rooms[room]
        paused = self.mode == STRICT and not self.link_up
        direct = self._direct()
        meshed = None
        if not self.link_up and self.mode == TOLERANT:
            meshed = sorted(state.regions() & direct) or None
        return RoomStatus(room, self.mode, self.link_up, paused, state.unreachable(direct), meshed)

    def _direct(self) -> set[str]:
        """The regions whose members' moves reach this edge directly (tolerant only)."""
        return self.mesh_up if self.mode == TOLERANT else set()

    # --- client messages -----------------------------------------------------------------

    def join(self, conn: ConnId, msg: Join, member_id: str, now: float) -> Out:
        """Add ``conn`` to ``msg.room`` as ``member_id``.

        Raises:
            BadRequest: bad room, name or colour; already in the room; too many rooms on
                this connection; room full.
            Unavailable: ``edge_full``, this edge hosts ``max_rooms`` rooms or
                ``max_local_members`` members.
        """
        _check_join(msg)
        rooms = self._by_conn.get(conn, {})
        if msg.room in rooms:
            raise BadRequest(f"already in room {msg.room!r}", code="already_joined")
        if len(rooms) >= self.max_rooms_per_conn:
            raise BadRequest(
                f"a connection may be in {self.max_rooms_per_conn} rooms", code="too_many_rooms"
            )
        hosted = self._rooms.get(msg.room)
        if hosted is None and len(self._rooms) >= self.max_rooms:
            raise Unavailable(f"this edge hosts {self.max_rooms} rooms", code="edge_full")
        rejoin = hosted is not None and member_id in hosted.local  # replaces itself
        if self._local_members >= self.max_local_members and not rejoin:
            raise Unavailable(f"this edge has {self.max_local_members} members", code="edge_full")
        rooms = self._by_conn.setdefault(conn, rooms)
        state = self._rooms.setdefault(msg.room, _Room())
        known = member_id in state.local or member_id in state.remote  # the same session again
        if not known and len(state.local) + len(state.remote) >= self.max_members:
            if not state.local and not state.remote:
                del self._rooms[msg.room]
            if not rooms:
                del self._by_conn[conn]
            raise BadRequest(f"room {msg.room!r} has {self.max_members} members", code="room_full")
        out = Out()
        old = state.local.get(member_id)
        if old is not None:  # the same session again on this edge: the new connection wins
            del self._by_conn[old.conn][msg.room]
            state.awaiting.discard(old.conn)
            out.clients.append(([old.conn], Left(msg.room, member_id, "evicted")))
        else:
            self._local_members += 1
        state.remote.pop(member_id, None)
        state.shown.pop(member_id, None)
        member = Member(member_id, msg.name, msg.color, self.region)
        # The counter goes on across a rejoin here: peers never see it go back.
        state.local[member_id] = _Local(member, conn, now, old.n if old is not None else 0)
        others = [c for c in state.conns() if c != conn]
        rooms[msg.room] = member_id
        if state.synced or not self.link_up:
            out.clients.append(([conn], self.presence(conn, msg.room)))
        else:
            # The first member here: answer once the core says who is elsewhere, so the
            # snapshot is whole (see from_core RoomState), or after AWAIT_CORE_S at worst.
            if not state.awaiting:
                state.awaiting_since = now
            state.awaiting.add(conn)
        if others:
            out.clients.append((others, Joined(msg.room, member)))
        out.core.append(Joined(msg.room, member))
        return out

    def move(self, conn: ConnId, x: int, y: int, room: str | None, now: float) -> None:
        """Record ``conn``'s latest position; it goes out at the next tick.

        Raises:
            BadRequest: not in a room (or in several and ``room`` omitted); out of range.
        """
        if not (0 <= x <= COORD_MAX and 0 <= y <= COORD_MAX):
            raise BadRequest(f"x and y must be in 0..{COORD_MAX}", code="bad_position")
        name = self._room_of(conn, room)
        state = self._rooms[name]
        local = state.local[self._by_conn[conn][name]]
        local.last_seen = now
        state.pending[local.member.id] = Position(local.member.id, x, y)
        state.pending_at[local.member.id] = now

    def leave(self, conn: ConnId, room: str | None) -> Out:
        """``conn`` leaves ``room``.

        Raises:
            BadRequest: not in that room.
        """
        return self._remove(conn, self._room_of(conn, room), "leave")

    def disconnect(self, conn: ConnId) -> Out:
        """``conn`` is gone: it leaves every room it was in."""
        out = Out()
        for room in list(self._by_conn.get(conn, {})):
            out.extend(self._remove(conn, room, "disconnect"))
        self._by_conn.pop(conn, None)
        return out

    def touch(self, conn: ConnId, now: float) -> None:
        """Any message from ``conn`` keeps its members present."""
        for room, member_id in self._by_conn.get(conn, {}).items():
            self._rooms[room].local[member_id].last_seen = now

    def _room_of(self, conn: ConnId, room: str | None) -> str:
        rooms = self._by_conn.get(conn, {})
        if room is None:
            if len(rooms) != 1:
                raise BadRequest(
                    "say which room: this connection is in none or several", code="bad_room"
                )
            return next(iter(rooms))
        if room not in rooms:
            raise BadRequest(f"not in room {room!r}", code="not_joined")
        return room

    def _remove(self, conn: ConnId, room: str, reason: str) -> Out:
        state = self._rooms[room]
        state.awaiting.discard(conn)
        member_id = self._by_conn[conn].pop(room)
        del state.local[member_id]
        self._local_members -= 1
        state.pending.pop(member_id, None)
        state.pending_at.pop(member_id, None)
        out = Out()
        if state.conns():
            out.clients.append((state.conns(), Left(room, member_id, reason)))
        out.core.append(Left(room, member_id, reason))
        if not state.local:
            del self._rooms[room]  # no local member: the core stops relaying it here
        return out

    # --- the clock -----------------------------------------------------------------------

    def tick(self, now: float, ready: set[str] | frozenset[str] = frozenset()) -> Out:
        """Expire silent members, then send each room's batch of changed positions.

        ``ready``: the regions whose mesh link can take this tick's frame (up, with room in
        its queue); a tolerant batch goes to those of them with members in the room.
        """
        out = self._expire(now)
        for room, state in self._rooms.items():
            if state.awaiting and now - state.awaiting_since > AWAIT_CORE_S:
                out.extend(self._answer_awaiting(room, state))
            if not state.pending:
                continue
            batch = Moves(room, list(state.pending.values()))
            out.held_s += [now - at for at in state.pending_at.values()]
            state.pending, state.pending_at = {}, {}
            if self.mode != TOLERANT:
                if self.link_up:
                    out.core.append(batch)
                continue
            for position in batch.moves:
                local = state.local[position.id]
                local.member = replace(local.member, x=position.x, y=position.y)
            out.clients.append((state.conns(), batch))
            if not self.mesh:  # one path to every peer: nothing to number
                if self.link_up:
                    out.core.append(batch)
                continue
            numbered = []
            for position in batch.moves:
                local = state.local[position.id]
                local.n += 1
                numbered.append(Position(position.id, position.x, position.y, local.n))
            direct = sorted(state.regions() & ready) if ready else []
            if direct:
                meshed = Moves(room, numbered)
                for region in direct:
                    out.peers.setdefault(region, []).append(meshed)
            if self.link_up:
                out.core.append(Moves(room, numbered, meshed=direct or None))
        return out

    def _expire(self, now: float) -> Out:
        out = Out()
        for room, state in list(self._rooms.items()):
            for local in list(state.local.values()):
                if now - local.last_seen > self.presence_timeout_s:
                    # Tell the silent member too: it may be alive and merely quiet.
                    out.clients.append(([local.conn], Left(room, local.member.id, "timeout")))
                    out.extend(self._remove(local.conn, room, "timeout"))
        return out

    # --- the link ------------------------------------------------------------------------

    def sync(self) -> RoomSync:
        """What to tell the core on every (re)connect: every local member of every room."""
        return RoomSync(
            {room: [m.member for m in state.local.values()] for room, state in self._rooms.items()}
        )

    def set_link(self, up: bool) -> Out:
        """The link to the core went up or down; a down link makes remote members unreachable."""
        if up == self.link_up:
            return Out()
        self.link_up = up
        out = Out()
        for room, state in self._rooms.items():
            state.synced = False  # until the core's room_state after the (re)connect
            if not up:
                state.remote = {i: replace(m, reachable=False) for i, m in state.remote.items()}
                out.extend(self._answer_awaiting(room, state))
        return out.extend(self._statuses())

    def _answer_awaiting(self, room: str, state: _Room) -> Out:
        out = Out()
        for conn in sorted(state.awaiting):
            state.awaiting.discard(conn)
            out.clients.append(([conn], self.presence(conn, room)))
        return out

    def set_mode(self, mode: str) -> Out:
        if mode == self.mode:
            return Out()
        self.mode = mode
        for state in self._rooms.values():
            state.pending, state.pending_at = {}, {}
        return self._statuses()

    def _statuses(self) -> Out:
        out = Out()
        for room, state in self._rooms.items():
            out.clients.append((state.conns(), self.status(room)))
        return out

    def set_mesh(self, region: str, up: bool) -> Out:
        """The mesh link to the peer edge of ``region`` went up or down."""
        if (region in self.mesh_up) == up:
            return Out()
        if up:
            self.mesh_up.add(region)
        else:
            self.mesh_up.discard(region)
        out = Out()
        for room, state in self._rooms.items():
            if region in state.regions():
                out.clients.append((state.conns(), self.status(room)))
        return out

    def from_peer(self, region: str, msg: Moves) -> Out:
        """Apply a tolerant batch that the peer edge of ``region`` sent over the mesh: only
        positions of that edge's own members, and only newer ones, are shown."""
        state = self._rooms.get(msg.room)
        if state is None or self.mode != TOLERANT:
            return Out()  # no local member (any more), or a strict room: the core orders it
        remote = state.remote
        own = [p for p in msg.moves if p.id in remote and remote[p.id].region == region]
        return self._show(msg.room, state, own, len(msg.moves) - len(own))

    def _show(self, room: str, state: _Room, positions: list[Position], dropped: int) -> Out:
        """Show the fresh ones of remote ``positions`` (:meth:`_Room.fresh`), without their
        counters."""
        fresh = [p for p in positions if state.fresh(p)]
        out = Out(stale=dropped + len(positions) - len(fresh))
        if fresh:
            for p in fresh:
                if p.id in state.remote:
                    m = state.remote[p.id]
                    state.remote[p.id] = replace(m, x=p.x, y=p.y)
            shown = [p if p.n is None else Position(p.id, p.x, p.y) for p in fresh]
            out.clients.append((state.conns(), Moves(room, shown)))
        return out

    def from_core(self, msg: Message) -> Out:
        """Apply a cursor message relayed by the core."""
        room: str = getattr(msg, "room", "")
        state = self._rooms.get(room)
        if state is None:
            return Out()  # no local member any more: nobody here to tell
        out = Out()
        if isinstance(msg, Moves):
            if msg.seq is None and self.mode == TOLERANT:
                return self._show(room, state, msg.moves, 0)
            self._relayed_moves(state, msg)
            out.clients.append((state.conns(), msg))
        elif isinstance(msg, Joined):
            if msg.member.id not in state.local:
                state.remote[msg.member.id] = msg.member
                state.shown.pop(msg.member.id, None)  # it may count afresh (another edge)
                out.clients.append((state.conns(), msg))
        elif isinstance(msg, Left):
            state.shown.pop(msg.id, None)
            if state.remote.pop(msg.id, None) is not None:
                out.clients.append((state.conns(), msg))
        elif isinstance(msg, RoomState):
            out.extend(self._reconcile(room, state, msg.members))
            state.synced = True
            out.extend(self._answer_awaiting(room, state))
        elif isinstance(msg, Reach):
            wanted = set(msg.ids)
            for member_id in wanted & set(state.remote):
                state.remote[member_id] = replace(state.remote[member_id], reachable=msg.reachable)
            out.clients.append((state.conns(), self.status(room)))
        elif isinstance(msg, Evict):
            local = state.local.get(msg.id)
            if local is not None:
                del state.local[msg.id]
                self._local_members -= 1
                del self._by_conn[local.conn][room]
                state.awaiting.discard(local.conn)
                state.pending.pop(msg.id, None)
                state.pending_at.pop(msg.id, None)
                out.clients.append(([local.conn], Left(room, msg.id, "evicted")))
                if not state.local:
                    del self._rooms[room]
        return out

    def _relayed_moves(self, state: _Room, msg: Moves) -> None:
        for position in msg.moves:
            if position.id in state.remote:
                m = state.remote[position.id]
                state.remote[position.id] = replace(m, x=position.x, y=position.y)
            elif position.id in state.local:
                local = state.local[position.id]
                local.member = replace(local.member, x=position.x, y=position.y)

    def _reconcile(self, room: str, state: _Room, members: Iterable[Member]) -> Out:
        fresh = {m.id: m for m in members if m.id not in state.local}
        conns = state.conns()
        out = Out()
        for member_id in sorted(set(state.remote) - set(fresh)):
            out.clients.append((conns, Left(room, member_id, "disconnect")))
        for member_id, member in fresh.items():
            if state.remote.get(member_id) != member:
                out.clients.append((conns, Joined(room, member)))
        # A member now on another edge counts afresh (its new edge's counter).
        state.shown = {
            i: n
            for i, n in state.shown.items()
            if i in fresh and i in state.remote and state.remote[i].region == fresh[i].region
        }
        state.remote = fresh
        out.clients.append((conns, self.status(room)))
        return out


def _check_join(msg: Join) -> None:
    if not 1 <= len(msg.room) <= MAX_ROOM_CHARS or not msg.room.isprintable():
        raise BadRequest(f"room must be 1..{MAX_ROOM_CHARS} printable characters", code="bad_room")
    if not 1 <= len(msg.name) <= MAX_NAME_CHARS or not msg.name.isprintable():
        raise BadRequest(f"name must be 1..{MAX_NAME_CHARS} printable characters", code="bad_name")
    if not _COLOR.fullmatch(msg.color):
        raise BadRequest("color must look like #1a2b3c", code="bad_color")
    if msg.session is not None and not 1 <= len(msg.session) <= MAX_SESSION_CHARS:
        raise BadRequest(f"session must be 1..{MAX_SESSION_CHARS} characters", code="bad_session")
