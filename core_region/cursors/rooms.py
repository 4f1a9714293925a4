"""Cursor rooms as the core sees them: which edge holds which member, and who to relay to.

Pure and synchronous; ``now`` is a parameter. Every method returns ``(edge ids, message)``
pairs for the shell to send. The core relays a room's traffic only to the edges that have
members in it, never to all edges.

Ownership: a member id belongs to the edge that last announced it. Moves an edge sends for
ids it does not own are dropped (an edge cannot speak for another's members). A member that
rejoins through another edge (same session, so same id) is evicted from the old one.

Partitions: when an edge's link drops, its members stay listed but the other edges are told
they are unreachable; if the edge is not back within ``presence_timeout_s`` they are removed
everywhere. An edge that comes back announces its members again (``room_sync``, in parts
when it is long) and gets the current members of each of its rooms.

Relay batching: :meth:`RoomDirectory.moves_batch` relays one edge's tick (every room's moves)
as one ``moves_batch`` per receiving edge, at once: no timer, so no added latency.

The edge mesh: a tolerant batch names in ``meshed`` the regions its edge already sent it to
directly (docs/protocol.md, "Edge mesh"); the core relays it only to the room's other edges,
so the relay is the fallback for the pairs whose mesh link is not up. The directory counts
the positions it relayed and those it left to the mesh (:meth:`RoomDirectory.take_counts`).
Each edge says which regions its mesh reaches (``mesh_peers``): an edge whose link dropped
keeps its members past the presence timeout while a connected edge still reaches its region
(and no other edge of that region is connected: a restarted edge's old members go), since
their moves still flow; its ``room_sync`` on return drops the ones that left meanwhile.

Several core nodes (a broker, :mod:`core_region.cursors.feature`): every node feeds its
directory what every edge of the cluster says, each event with the node it came from
(:data:`HERE` for this node's own edges), so it knows every member of every room; relaying to
an edge of another node is a no-op where it runs (that node relays to its own edges from the
same input). An edge is on the node that last announced it (``room_sync`` part 0): events
about it from any other node are stale (a node that has not noticed yet that the edge left it)
and ignored, so an old node's "edge gone" never removes members the edge re-announced
elsewhere, whichever of the two events comes first. A node gone (or the broker lost) marks
its edges down as if their links dropped (:meth:`RoomDirectory.node_down`,
:meth:`RoomDirectory.remote_down`); strict rooms take their order from the broker
(:meth:`RoomDirectory.owned`, :meth:`RoomDirectory.sequenced`).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field, replace

from shared.protocol import (
    Evict,
    Joined,
    Left,
    Member,
    Message,
    Moves,
    MovesBatch,
    Reach,
    RoomState,
    RoomSync,
)

EdgeId = str
NodeId = str
Out = list[tuple[list[EdgeId], Message]]

HERE: NodeId = ""
"""The node of this node's own edges, in every method's ``node``."""


@dataclass
class _Room:
    members: dict[str, Member] = field(default_factory=dict)
    owner: dict[str, EdgeId] = field(default_factory=dict)
    seq: int = 0

    def edges(self) -> set[EdgeId]:
        return set(self.owner.values())


class RoomDirectory:
    def __init__(self, *, presence_timeout_s: float = 20.0) -> None:
        self.presence_timeout_s = presence_timeout_s
        self._rooms: dict[str, _Room] = {}
        self._down: dict[EdgeId, float] = {}
        self._unlisted: dict[EdgeId, set[tuple[str, str]]] = {}  # sync in parts, see sync()
        self._node_of: dict[EdgeId, NodeId] = {}  # the node each edge is on (module doc)
        self._reaches: dict[EdgeId, set[str]] = {}  # regions each edge's mesh reaches
        self._region: dict[EdgeId, str] = {}  # each edge's region, from its members
        self._relayed = 0  # tolerant positions relayed, one per receiving edge
        self._meshed = 0  # tolerant positions not relayed: the sender's mesh reached the edge

    def take_counts(self) -> tuple[int, int]:
        """Tolerant positions relayed to edges, and left to the mesh, since the last call."""
        counts, self._relayed, self._meshed = (self._relayed, self._meshed), 0, 0
        return counts

    def members(self, room: str) -> list[Member]:
        state = self._rooms.get(room)
        return list(state.members.values()) if state else []

    def room_count(self) -> int:
        return len(self._rooms)

    def member_count(self) -> int:
        return sum(len(r.members) for r in self._rooms.values())

    def _others(self, state: _Room, edge: EdgeId) -> list[EdgeId]:
        return sorted(e for e in state.edges() if e != edge)

    def _on(self, edge: EdgeId, node: NodeId) -> bool:
        """Whether an event about ``edge`` from ``node`` counts: it comes from the node the
        edge is on (an edge not heard of yet is on the first node that speaks of it)."""
        return self._node_of.setdefault(edge, node) == node

    def claim(self, edge: EdgeId) -> None:
        """``edge``'s link is on this node, whatever another node said last."""
        self._node_of[edge] = HERE
        self._down.pop(edge, None)

    def is_here(self, edge: EdgeId) -> bool:
        """Whether ``edge`` is on this node (it announced itself here last)."""
        return self._node_of.get(edge) == HERE

    # --- what edges say ------------------------------------------------------------------

    def joined(self, edge: EdgeId, room: str, member: Member, *, node: NodeId = HERE) -> Out:
        if not self._on(edge, node):
            return []
        return self._join(edge, room, member)

    def _join(self, edge: EdgeId, room: str, member: Member) -> Out:
        state = self._rooms.setdefault(room, _Room())
        out: Out = []
        first_here = edge not in state.edges()
        previous = state.owner.get(member.id)
        if previous is not None and previous != edge:
            out.append(([previous], Evict(room, member.id)))
        state.members[member.id] = member
        state.owner[member.id] = edge
        self._region[edge] = member.region
        others = self._others(state, edge)
        if others:
            out.append((others, Joined(room, member)))
        if first_here:
            out.append(([edge], self._state_for(state, room, edge)))
        return out

    def left(
        self, edge: EdgeId, room: str, member_id: str, reason: str, *, node: NodeId = HERE
    ) -> Out:
        state = self._rooms.get(room)
        if state is None or state.owner.get(member_id) != edge or not self._on(edge, node):
            return []
        return self._drop(room, state, member_id, reason)

    def _drop(self, room: str, state: _Room, member_id: str, reason: str) -> Out:
        edge = state.owner.pop(member_id)
        del state.members[member_id]
        others = self._others(state, edge)
        if not state.members:
            del self._rooms[room]
        return [(others, Left(room, member_id, reason))] if others else []

    def moves(self, edge: EdgeId, batch: Moves, *, strict: bool, node: NodeId = HERE) -> Out:
        """Relay an edge's batch: to the other edges (tolerant), or sequenced to all (strict)."""
        return self._moves(edge, batch, strict) if self._on(edge, node) else []

    def _moves(self, edge: EdgeId, batch: Moves, strict: bool) -> Out:
        state = self._rooms.get(batch.room)
        if state is None:
            return []
        mine = [p for p in batch.moves if state.owner.get(p.id) == edge]
        if not mine:
            return []
        for p in mine:
            state.members[p.id] = replace(state.members[p.id], x=p.x, y=p.y)
        if strict:
            state.seq += 1
            return [(sorted(state.edges()), Moves(batch.room, mine, state.seq))]
        others = self._others(state, edge)
        if batch.meshed and others:
            direct = set(batch.meshed)
            region = {state.owner[i]: m.region for i, m in state.members.items()}
            reached = [e for e in others if region[e] in direct]
            self._meshed += len(mine) * len(reached)
            others = [e for e in others if region[e] not in direct]
        self._relayed += len(mine) * len(others)
        return [(others, Moves(batch.room, mine))] if others else []

    def moves_batch(
        self, edge: EdgeId, batch: MovesBatch, *, strict: bool, node: NodeId = HERE
    ) -> Out:
        """Relay an edge's tick: each receiving edge gets its rooms' moves in one batch."""
        if not self._on(edge, node):
            return []
        per_edge: dict[EdgeId, list[Moves]] = {}
        for moves in batch.batches:
            for targets, relayed in self._moves(edge, moves, strict):
                for target in targets:
                    per_edge.setdefault(target, []).append(typing.cast(Moves, relayed))
        return [([target], MovesBatch(batches)) for target, batches in per_edge.items()]

    def owned(self, edge: EdgeId, batch: Moves, *, node: NodeId = HERE) -> Moves | None:
        """The positions of ``batch`` that ``edge`` may send (its own members'), changing
        nothing: a strict move on several nodes, before the broker numbers it."""
        state = self._rooms.get(batch.room)
        if state is None or not self._on(edge, node):
            return None
        mine = [p for p in batch.moves if state.owner.get(p.id) == edge]
        return Moves(batch.room, mine) if mine else None

    def sequenced(self, edge: EdgeId, batch: Moves, seq: int, *, node: NodeId = HERE) -> Out:
        """A strict move numbered ``seq`` by the broker (every node gets it, in that order):
        apply it and relay it, so numbered, to every edge in the room."""
        mine = self.owned(edge, batch, node=node)
        if mine is None:
            return []
        state = self._rooms[batch.room]
        for p in mine.moves:
            state.members[p.id] = replace(state.members[p.id], x=p.x, y=p.y)
        return [(sorted(state.edges()), Moves(batch.room, mine.moves, seq))]

    def sync(
        self,
        edge: EdgeId,
        rooms: dict[str, list[Member]],
        *,
        part: int = 0,
        final: bool = True,
        node: NodeId = HERE,
    ) -> Out:
        """An edge (re)connected and listed its members: reconcile, then send it each room.

        A long list comes in parts: part 0 starts the sync, each part adds its members (and
        gets its rooms' ``room_state``), and the ``final`` part first drops the members this
        edge had that no part listed. Between the parts nothing is lost: unlisted members are
        only dropped at the end (the set kept meanwhile is a subset of the directory).

        Part 0 moves the edge to ``node`` (module doc).
        """
        if part == 0:
            self._node_of[edge] = node
        elif not self._on(edge, node):
            return []
        if part == 0:
            self._down.pop(edge, None)
            self._unlisted[edge] = {
                (room, member_id)
                for room, state in self._rooms.items()
                for member_id, owner in state.owner.items()
                if owner == edge
            }
        unlisted = self._unlisted.get(edge, set())
        unlisted.difference_update((room, m.id) for room, members in rooms.items() for m in members)
        out: Out = []
        if final:
            for room, member_id in sorted(self._unlisted.pop(edge, set())):
                held = self._rooms.get(room)
                if held is not None and held.owner.get(member_id) == edge:
                    out += self._drop(room, held, member_id, "disconnect")
        for room, members in rooms.items():
            state = self._rooms.setdefault(room, _Room())
            back = [m.id for m in members if state.owner.get(m.id) == edge]
            for member in members:
                owner = state.owner.get(member.id)
                if owner is not None and owner != edge:
                    # It rejoined elsewhere while this edge was away: the newer one stays.
                    out.append(([edge], Evict(room, member.id)))
                    continue
                out += [
                    (targets, msg)
                    for targets, msg in self._join(edge, room, member)
                    if not isinstance(msg, RoomState)
                ]
            others = self._others(state, edge)
            if back and others:
                out.append((others, Reach(room, back, True)))
            out.append(([edge], self._state_for(state, room, edge)))
        return out

    def _state_for(self, state: _Room, room: str, edge: EdgeId) -> RoomState:
        members = [
            replace(m, reachable=state.owner[i] not in self._down)
            for i, m in state.members.items()
            if state.owner[i] != edge
        ]
        return RoomState(room, members)

    # --- the link and the clock ----------------------------------------------------------

    def edge_down(self, edge: EdgeId, now: float, *, node: NodeId = HERE) -> Out:
        """The edge's link dropped: tell the other edges its members are unreachable."""
        if not self._on(edge, node):
            return []
        self._down[edge] = now
        self._unlisted.pop(edge, None)  # a sync cut short: the next one starts afresh
        out: Out = []
        for room, state in self._rooms.items():
            ids = sorted(i for i, e in state.owner.items() if e == edge)
            others = self._others(state, edge)
            if ids and others:
                out.append((others, Reach(room, ids, False)))
        return out

    def mesh_peers(self, edge: EdgeId, regions: list[str], *, node: NodeId = HERE) -> Out:
        """``edge``'s mesh reaches ``regions`` now (module doc)."""
        if self._on(edge, node):
            self._reaches[edge] = set(regions)
        return []

    def _held_by_mesh(self, edge: EdgeId) -> bool:
        """Does a connected edge's mesh still reach ``edge`` (down), the only edge of its
        region known connected?"""
        region = self._region.get(edge)
        if region is None:
            return False
        live = [e for e in self._node_of if e not in self._down]
        if any(self._region.get(e) == region for e in live):
            return False  # its region has another edge now: that one is what peers reach
        return any(region in self._reaches.get(e, ()) for e in live)

    def expire(self, now: float) -> Out:
        """Remove the members of edges that stayed away longer than the presence timeout
        (not while the mesh still reaches them: module doc)."""
        out: Out = []
        for edge, since in list(self._down.items()):
            if now - since <= self.presence_timeout_s or self._held_by_mesh(edge):
                continue
            del self._down[edge]
            self._reaches.pop(edge, None)
            self._region.pop(edge, None)
            self._node_of.pop(edge, None)
            for room, state in list(self._rooms.items()):
                for member_id in [i for i, e in state.owner.items() if e == edge]:
                    out += self._drop(room, state, member_id, "timeout")
        return out

    # --- other core nodes ----------------------------------------------------------------

    def node_down(self, node: NodeId, now: float) -> Out:
        """Core node ``node`` is gone: its edges' links count as dropped (:meth:`edge_down`)."""
        out: Out = []
        for edge, on in sorted(self._node_of.items()):
            if on == node and edge not in self._down:
                out += self.edge_down(edge, now, node=node)
        return out

    def remote_down(self, now: float) -> Out:
        """The broker is lost: every other node's edges count as dropped."""
        out: Out = []
        for node in sorted({on for on in self._node_of.values() if on != HERE}):
            out += self.node_down(node, now)
        return out

    def announce(self, edge: EdgeId, max_members: int) -> list[RoomSync]:
        """What ``edge`` has said of its members, as a ``room_sync`` in parts of at most
        ``max_members`` members (a node re-announces its edges to a node back in view)."""
        held: list[tuple[str, Member]] = [
            (room, state.members[member_id])
            for room, state in sorted(self._rooms.items())
            for member_id, owner in state.owner.items()
            if owner == edge
        ]
        chunks = [held[i : i + max_members] for i in range(0, len(held), max_members)] or [[]]
        parts: list[RoomSync] = []
        for n, chunk in enumerate(chunks):
            rooms: dict[str, list[Member]] = {}
            for room, member in chunk:
                rooms.setdefault(room, []).append(member)
            parts.append(RoomSync(rooms, n, n == len(chunks) - 1))
        return parts
