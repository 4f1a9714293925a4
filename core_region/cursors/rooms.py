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
)

EdgeId = str
Out = list[tuple[list[EdgeId], Message]]


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

    def members(self, room: str) -> list[Member]:
        state = self._rooms.get(room)
        return list(state.members.values()) if state else []

    def room_count(self) -> int:
        return len(self._rooms)

    def member_count(self) -> int:
        return sum(len(r.members) for r in self._rooms.values())

    def _others(self, state: _Room, edge: EdgeId) -> list[EdgeId]:
        return sorted(e for e in state.edges() if e != edge)

    # --- what edges say ------------------------------------------------------------------

    def joined(self, edge: EdgeId, room: str, member: Member) -> Out:
        state = self._rooms.setdefault(room, _Room())
        out: Out = []
        first_here = edge not in state.edges()
        previous = state.owner.get(member.id)
        if previous is not None and previous != edge:
            out.append(([previous], Evict(room, member.id)))
        state.members[member.id] = member
        state.owner[member.id] = edge
        others = self._others(state, edge)
        if others:
            out.append((others, Joined(room, member)))
        if first_here:
            out.append(([edge], self._state_for(state, room, edge)))
        return out

    def left(self, edge: EdgeId, room: str, member_id: str, reason: str) -> Out:
        state = self._rooms.get(room)
        if state is None or state.owner.get(member_id) != edge:
            return []
        return self._drop(room, state, member_id, reason)

    def _drop(self, room: str, state: _Room, member_id: str, reason: str) -> Out:
        edge = state.owner.pop(member_id)
        del state.members[member_id]
        others = self._others(state, edge)
        if not state.members:
            del self._rooms[room]
        return [(others, Left(room, member_id, reason))] if others else []

    def moves(self, edge: EdgeId, batch: Moves, *, strict: bool) -> Out:
        """Relay an edge's batch: to the other edges (tolerant), or sequenced to all (strict)."""
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
        return [(others, Moves(batch.room, mine))] if others else []

    def moves_batch(self, edge: EdgeId, batch: MovesBatch, *, strict: bool) -> Out:
        """Relay an edge's tick: each receiving edge gets its rooms' moves in one batch."""
        per_edge: dict[EdgeId, list[Moves]] = {}
        for moves in batch.batches:
            for targets, relayed in self.moves(edge, moves, strict=strict):
                for target in targets:
                    per_edge.setdefault(target, []).append(typing.cast(Moves, relayed))
        return [([target], MovesBatch(batches)) for target, batches in per_edge.items()]

    def sync(
        self, edge: EdgeId, rooms: dict[str, list[Member]], *, part: int = 0, final: bool = True
    ) -> Out:
        """An edge (re)connected and listed its members: reconcile, then send it each room.

        A long list comes in parts: part 0 starts the sync, each part adds its members (and
        gets its rooms' ``room_state``), and the ``final`` part first drops the members this
        edge had that no part listed. Between the parts nothing is lost: unlisted members are
        only dropped at the end (the set kept meanwhile is a subset of the directory).
        """
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
                    for targets, msg in self.joined(edge, room, member)
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

    def edge_down(self, edge: EdgeId, now: float) -> Out:
        """The edge's link dropped: tell the other edges its members are unreachable."""
        self._down[edge] = now
        self._unlisted.pop(edge, None)  # a sync cut short: the next one starts afresh
        out: Out = []
        for room, state in self._rooms.items():
            ids = sorted(i for i, e in state.owner.items() if e == edge)
            others = self._others(state, edge)
            if ids and others:
                out.append((others, Reach(room, ids, False)))
        return out

    def expire(self, now: float) -> Out:
        """Remove the members of edges that stayed away longer than the presence timeout."""
        out: Out = []
        for edge, since in list(self._down.items()):
            if now - since <= self.presence_timeout_s:
                continue
            del self._down[edge]
            for room, state in list(self._rooms.items()):
                for member_id in [i for i, e in state.owner.items() if e == edge]:
                    out += self._drop(room, state, member_id, "timeout")
        return out
