"""RoomDirectory, the core's pure cursor core, alone and wired by hand to two EdgeRooms."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hypothesis import given, settings, strategies as st

from core_region.cursors.rooms import RoomDirectory
from edge_node.cursors.rooms import EdgeRooms, Out
from shared.errors import BadRequest
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
    MovesBatch,
    Position,
    Presence,
    Reach,
    RoomState,
    RoomStatus,
    RoomSync,
)


def member(member_id: str, region: str = "A", x: int = 0, y: int = 0) -> Member:
    return Member(member_id, member_id.upper(), "#00ff00", region, x, y)


def directory_with(*placed: tuple[str, str], room: str = "r") -> RoomDirectory:
    """A directory where each ``(edge, member id)`` has joined ``room``."""
    d = RoomDirectory(presence_timeout_s=10.0)
    for edge, member_id in placed:
        d.joined(edge, room, member(member_id, edge))
    return d


def ids(d: RoomDirectory, room: str = "r") -> list[str]:
    return sorted(m.id for m in d.members(room))


# --- joined and left -----------------------------------------------------------------------


def test_first_member_of_an_edge_gets_the_room_state_of_the_others() -> None:
    """The first joiner through an edge gets RoomState listing the other edges' members."""
    d = RoomDirectory()
    assert d.joined("A", "r", member("a1")) == [(["A"], RoomState("r", []))]
    out = d.joined("B", "r", member("b1", "B"))
    assert out == [
        (["A"], Joined("r", member("b1", "B"))),
        (["B"], RoomState("r", [member("a1")])),
    ]
    assert ids(d) == ["a1", "b1"]
    assert (d.room_count(), d.member_count()) == (1, 2)


def test_later_members_of_an_edge_get_no_room_state() -> None:
    """The edge already knows the room: only the other edges hear of the newcomer."""
    d = directory_with(("A", "a1"), ("B", "b1"))
    assert d.joined("A", "r", member("a2")) == [(["B"], Joined("r", member("a2")))]
    d.left("B", "r", "b1", "leave")
    assert d.joined("A", "r", member("a3")) == []  # A is still in the room: no RoomState


def test_joined_goes_only_to_other_edges_with_members_in_the_room() -> None:
    """Edges with no member in the room hear nothing of it."""
    d = directory_with(("A", "a1"), ("B", "b1"))
    d.joined("C", "other", member("c1", "C"))
    out = d.joined("A", "r", member("a2"))
    assert out == [(["B"], Joined("r", member("a2")))]
    out = d.joined("C", "other", member("c2", "C"))
    assert out == []


def test_left_by_the_owner_tells_the_other_edges() -> None:
    """Left keeps the edge's reason; the last member leaving removes the room."""
    d = directory_with(("A", "a1"), ("B", "b1"), ("B", "b2"))
    assert d.left("B", "r", "b1", "leave") == [(["A"], Left("r", "b1", "leave"))]
    assert d.left("A", "r", "a1", "disconnect") == [(["B"], Left("r", "a1", "disconnect"))]
    assert ids(d) == ["b2"]
    assert d.left("B", "r", "b2", "timeout") == []  # nobody else to tell
    assert (d.room_count(), d.member_count()) == (0, 0)


def test_left_by_a_non_owner_or_for_unknown_ids_is_ignored() -> None:
    """An edge cannot remove another edge's member, nor one that is not there."""
    d = directory_with(("A", "a1"), ("B", "b1"))
    assert d.left("A", "r", "b1", "leave") == []
    assert d.left("A", "r", "nobody", "leave") == []
    assert d.left("A", "elsewhere", "a1", "leave") == []
    assert ids(d) == ["a1", "b1"]


def test_rejoin_through_another_edge_evicts_the_member_from_the_old_edge() -> None:
    """Same id, new edge: Evict to the old edge, Joined with the new region to the others."""
    d = directory_with(("A", "m"), ("A", "a1"), ("C", "c1"))
    out = d.joined("B", "r", member("m", "B"))
    assert out == [
        (["A"], Evict("r", "m")),
        (["A", "C"], Joined("r", member("m", "B"))),
        (["B"], RoomState("r", [member("a1"), member("c1", "C")])),
    ]
    assert d.left("A", "r", "m", "disconnect") == []  # the old edge no longer owns it
    assert d.moves("A", Moves("r", [Position("m", 1, 1)]), strict=False) == []
    assert [m.region for m in d.members("r") if m.id == "m"] == ["B"]


# --- moves ---------------------------------------------------------------------------------


def test_tolerant_relay_goes_to_the_other_edges_only() -> None:
    """Tolerant: no seq, the origin excluded, edges outside the room excluded."""
    d = directory_with(("A", "a1"), ("B", "b1"), ("C", "c1"))
    d.joined("D", "other", member("d1", "D"))
    batch = Moves("r", [Position("a1", 5, 6)])
    assert d.moves("A", batch, strict=False) == [(["B", "C"], batch)]
    lonely = directory_with(("A", "a1"))
    assert lonely.moves("A", batch, strict=False) == []


def test_strict_relay_goes_to_every_edge_with_increasing_seq_per_room() -> None:
    """Strict: the origin included, seq 1, 2, 3... per room."""
    d = directory_with(("A", "a1"), ("B", "b1"))
    d.joined("A", "q", member("a2"))
    for i in range(3):
        out = d.moves("A", Moves("r", [Position("a1", i, i)]), strict=True)
        assert out == [(["A", "B"], Moves("r", [Position("a1", i, i)], i + 1))]
    out_b = d.moves("B", Moves("r", [Position("b1", 9, 9)]), strict=True)
    assert out_b == [(["A", "B"], Moves("r", [Position("b1", 9, 9)], 4))]
    alone = d.moves("A", Moves("q", [Position("a2", 1, 1)]), strict=True)
    assert alone == [(["A"], Moves("q", [Position("a2", 1, 1)], 1))]


def test_moves_for_ids_the_edge_does_not_own_are_dropped() -> None:
    """Spoofing: only the sender's own members are relayed and recorded."""
    d = directory_with(("A", "a1"), ("B", "b1"))
    spoof = Moves("r", [Position("b1", 9, 9), Position("ghost", 1, 1)])
    assert d.moves("A", spoof, strict=False) == []
    assert d.moves("A", spoof, strict=True) == []
    mixed = Moves("r", [Position("b1", 9, 9), Position("a1", 3, 3)])
    assert d.moves("A", mixed, strict=True) == [(["A", "B"], Moves("r", [Position("a1", 3, 3)], 1))]
    assert {m.id: (m.x, m.y) for m in d.members("r")} == {"a1": (3, 3), "b1": (0, 0)}
    assert d.moves("A", Moves("nowhere", [Position("a1", 1, 1)]), strict=True) == []


def test_moves_update_the_positions_later_edges_are_given() -> None:
    """A newcomer's RoomState carries the latest relayed positions."""
    d = directory_with(("A", "a1"))
    d.moves("A", Moves("r", [Position("a1", 7, 8)]), strict=False)
    out = d.joined("B", "r", member("b1", "B"))
    assert (["B"], RoomState("r", [member("a1", x=7, y=8)])) in out
    where = [Position(m.id, m.x, m.y) for m in d.members("r")]
    assert where == [Position("a1", 7, 8), Position("b1", 0, 0)]


# --- the link and the clock ----------------------------------------------------------------


def test_edge_down_tells_the_other_edges_its_members_are_unreachable() -> None:
    """Reach False per room, to edges that share the room; newcomers see them unreachable."""
    d = directory_with(("A", "a2"), ("A", "a1"), ("B", "b1"))
    d.joined("A", "solo", member("a3"))
    assert d.edge_down("A", 1.0) == [(["B"], Reach("r", ["a1", "a2"], False))]
    out = d.joined("C", "r", member("c1", "C"))
    (state,) = [m for _, m in out if isinstance(m, RoomState)]
    assert {m.id: m.reachable for m in state.members} == {"a1": False, "a2": False, "b1": True}


def test_expire_removes_a_down_edges_members_after_the_timeout_only() -> None:
    """Not at presence_timeout_s exactly; past it, Left 'timeout' to the other edges."""
    d = directory_with(("A", "a1"), ("B", "b1"))
    d.edge_down("A", 100.0)
    assert d.expire(105.0) == [] and d.expire(110.0) == []
    assert ids(d) == ["a1", "b1"]
    assert d.expire(110.5) == [(["B"], Left("r", "a1", "timeout"))]
    assert ids(d) == ["b1"]
    assert d.expire(200.0) == []


def test_expire_of_the_last_members_removes_the_room() -> None:
    """A room whose only edge stayed away is gone, with no one to tell."""
    d = directory_with(("A", "a1"))
    d.edge_down("A", 0.0)
    assert d.expire(11.0) == []
    assert d.room_count() == 0


def test_sync_before_the_timeout_keeps_the_members_and_cancels_expiry() -> None:
    """A returning edge: Reach True to the others, RoomState to it, no later expiry."""
    d = directory_with(("A", "a1"), ("B", "b1"))
    d.edge_down("A", 0.0)
    out = d.sync("A", {"r": [member("a1", x=4, y=4)]})
    assert out == [
        (["B"], Joined("r", member("a1", x=4, y=4))),
        (["B"], Reach("r", ["a1"], True)),
        (["A"], RoomState("r", [member("b1", "B")])),
    ]
    assert d.expire(100.0) == []
    assert ids(d) == ["a1", "b1"]


def test_sync_reconciles_what_the_edge_lists() -> None:
    """Unlisted members are dropped, new ones joined, every listed room gets its RoomState."""
    d = directory_with(("A", "a1"), ("A", "a2"), ("B", "b1"))
    d.joined("A", "gone", member("a9"))
    d.edge_down("A", 0.0)
    out = d.sync("A", {"r": [member("a2"), member("a3")], "new": [member("a4")]})
    assert out == [
        (["B"], Left("r", "a1", "disconnect")),
        (["B"], Joined("r", member("a2"))),
        (["B"], Joined("r", member("a3"))),
        (["B"], Reach("r", ["a2"], True)),
        (["A"], RoomState("r", [member("b1", "B")])),
        (["A"], RoomState("new", [])),
    ]
    assert ids(d) == ["a2", "a3", "b1"]
    assert ids(d, "gone") == [] and ids(d, "new") == ["a4"]
    assert d.room_count() == 2


def test_sync_after_expiry_joins_the_members_again() -> None:
    """Back after the timeout: its members are new again (Joined), no Reach."""
    d = directory_with(("A", "a1"), ("B", "b1"))
    d.edge_down("A", 0.0)
    d.expire(11.0)
    out = d.sync("A", {"r": [member("a1")]})
    assert out == [
        (["B"], Joined("r", member("a1"))),
        (["A"], RoomState("r", [member("b1", "B")])),
    ]


def test_room_state_marks_members_of_down_edges_unreachable_to_a_syncing_edge() -> None:
    """A returning edge learns which other edges are still away."""
    d = directory_with(("A", "a1"), ("B", "b1"))
    d.edge_down("A", 0.0)
    d.edge_down("B", 0.0)
    out = d.sync("B", {"r": [member("b1", "B")]})
    assert (["B"], RoomState("r", [replace(member("a1"), reachable=False)])) in out


def test_a_returning_edge_does_not_take_back_a_member_that_rejoined_elsewhere() -> None:
    """A member that rejoined via B while A was away stays B's when A syncs."""
    d = directory_with(("A", "m"), ("C", "c1"))
    d.edge_down("A", 0.0)
    d.joined("B", "r", member("m", "B"))
    out = d.sync("A", {"r": [member("m")]})
    assert (["B"], Evict("r", "m")) not in out
    assert [m.region for m in d.members("r") if m.id == "m"] == ["B"]


# --- two edges and the core, wired by hand -------------------------------------------------

Key = tuple[str, int]  # (edge, connection)


@dataclass
class View:
    """What one client knows of one room, from presence and the events after it."""

    you: str
    members: dict[str, tuple[int, int]]
    moves: list[Moves] = field(default_factory=list)
    statuses: list[RoomStatus] = field(default_factory=list)


class World:
    """Edges and the core with instant, ordered links that can be cut and healed."""

    def __init__(self, *, strict: bool, edges: tuple[str, ...] = ("A", "B")) -> None:
        self.strict = strict
        self.now = 0.0
        self.directory = RoomDirectory(presence_timeout_s=10.0)
        self.edges = {e: EdgeRooms(e, presence_timeout_s=1000.0) for e in edges}
        self.up = dict.fromkeys(edges, False)
        self.views: dict[Key, dict[str, View]] = {}
        self.sequenced: dict[tuple[str, int], Moves] = {}  # (room, seq) -> what all saw
        for e, rooms in self.edges.items():
            rooms.set_mode(STRICT if strict else TOLERANT)
            self.heal(e)

    # the wiring

    def deliver(self, edge: str, out: Out) -> None:
        for conns, message in out.clients:
            for conn in conns:
                self.apply((edge, conn), message)
        for message in out.core:
            if self.up[edge]:
                self.to_core(edge, message)

    def to_core(self, edge: str, message: Message) -> None:
        d = self.directory
        if isinstance(message, RoomSync):
            out = d.sync(edge, message.rooms)
        elif isinstance(message, Joined):
            out = d.joined(edge, message.room, message.member)
        elif isinstance(message, Left):
            out = d.left(edge, message.room, message.id, message.reason)
        elif isinstance(message, Moves):
            out = d.moves(edge, message, strict=self.strict)
        else:
            raise AssertionError(f"unexpected message for the core: {message}")
        self.to_edges(out)

    def apply(self, key: Key, message: Message) -> None:
        views = self.views.setdefault(key, {})
        if isinstance(message, Presence):
            views[message.room] = View(message.you, {m.id: (m.x, m.y) for m in message.members})
            return
        room: str = getattr(message, "room", "")
        assert room in views, f"{key} got {message} for a room it is not in"
        view = views[room]
        if isinstance(message, Joined):
            view.members[message.member.id] = (message.member.x, message.member.y)
        elif isinstance(message, Left):
            if message.id == view.you:
                del views[room]
            else:
                view.members.pop(message.id, None)
        elif isinstance(message, Moves):
            for p in message.moves:
                if p.id in view.members:
                    view.members[p.id] = (p.x, p.y)
            view.moves.append(message)
            if message.seq is not None:
                seen = self.sequenced.setdefault((room, message.seq), message)
                assert seen == message, f"seq {message.seq} of {room} differs between edges"
                earlier = [m.seq for m in view.moves[:-1] if m.seq is not None]
                assert all(s < message.seq for s in earlier), f"{key} got seq out of order"
        elif isinstance(message, RoomStatus):
            view.statuses.append(message)
        else:
            raise AssertionError(f"unexpected message for a client: {message}")

    # what people and networks do

    def join(self, edge: str, conn: int, member_id: str, room: str = "r") -> None:
        join = Join(room, member_id, "#123456")
        self.deliver(edge, self.edges[edge].join(conn, join, member_id, self.now))

    def move(self, edge: str, conn: int, x: int, y: int, room: str | None = None) -> None:
        self.edges[edge].move(conn, x, y, room, self.now)

    def leave(self, edge: str, conn: int, room: str | None = None) -> None:
        before = set(self.edges[edge].rooms_of(conn))
        out = self.edges[edge].leave(conn, room)
        for gone in before - set(self.edges[edge].rooms_of(conn)):
            del self.views[(edge, conn)][gone]
        self.deliver(edge, out)

    def disconnect(self, edge: str, conn: int) -> None:
        self.views.pop((edge, conn), None)
        self.deliver(edge, self.edges[edge].disconnect(conn))

    def tick(self, *edges: str) -> None:
        self.now += 0.05
        for e in edges or tuple(self.edges):
            self.deliver(e, self.edges[e].tick(self.now))

    def cut(self, edge: str) -> None:
        if self.up[edge]:
            self.up[edge] = False
            self.deliver(edge, self.edges[edge].set_link(False))
            self.to_edges(self.directory.edge_down(edge, self.now))

    def heal(self, edge: str) -> None:
        if not self.up[edge]:
            self.up[edge] = True
            self.deliver(edge, self.edges[edge].set_link(True))
            self.to_core(edge, self.edges[edge].sync())

    def expire(self) -> None:
        self.to_edges(self.directory.expire(self.now))

    def to_edges(self, out: list[tuple[list[str], Message]]) -> None:
        """Carry the directory's messages over the links that are up."""
        # A room the directory dropped starts its sequence again if it comes back.
        self.sequenced = {k: v for k, v in self.sequenced.items() if self.directory.members(k[0])}
        for edges, message in out:
            for e in edges:
                if self.up[e]:
                    answer = self.edges[e].from_core(message)
                    assert answer.core == []
                    self.deliver(e, answer)

    def flip_mode(self) -> None:
        self.strict = not self.strict
        for e, rooms in self.edges.items():
            self.deliver(e, rooms.set_mode(STRICT if self.strict else TOLERANT))

    # what must hold

    def settle(self) -> None:
        """Heal every link and flush every edge's pending moves."""
        for e in self.edges:
            self.heal(e)
        self.tick()
        self.tick()

    def assert_converged(self) -> None:
        """Every member's client sees exactly the directory's members at their positions."""
        seen = 0
        for (e, conn), views in self.views.items():
            for room, member_id in self.edges[e].rooms_of(conn).items():
                truth = {m.id: (m.x, m.y) for m in self.directory.members(room)}
                view = views[room]
                assert view.you == member_id
                assert view.members == truth, f"{e}/{conn} sees {view.members}, not {truth}"
                presence = self.edges[e].presence(conn, room)
                assert {m.id: (m.x, m.y) for m in presence.members} == truth
                seen += 1
        assert seen == self.directory.member_count()
        rooms = {room for rooms in self.edges.values() for room in rooms.sync().rooms}
        assert self.directory.room_count() == len(rooms)

    def moves_seen(self, room: str = "r") -> dict[Key, list[Moves]]:
        return {key: views[room].moves for key, views in self.views.items() if room in views}


def test_two_edges_converge_in_tolerant_mode() -> None:
    """Joins, moves, a partition and leaves: every client ends with the same room."""
    w = World(strict=False)
    w.join("A", 1, "a1")
    w.join("A", 2, "a2")
    w.join("B", 1, "b1")
    w.assert_converged()
    w.move("A", 1, 10, 10)
    w.move("A", 1, 11, 12)
    w.move("B", 1, 50, 60)
    w.tick()
    w.assert_converged()
    (batch,) = [m for m in w.views[("B", 1)]["r"].moves if m.moves[0].id == "a1"]
    assert batch == Moves("r", [Position("a1", 11, 12)])  # coalesced, one frame
    assert w.views[("A", 2)]["r"].moves[0] == batch  # local members saw it at the tick
    w.cut("A")
    assert w.views[("B", 1)]["r"].statuses[-1].unreachable == ["a1", "a2"]
    w.move("A", 2, 70, 70)  # seen on A only, until A is back
    w.tick()
    assert w.views[("A", 1)]["r"].members["a2"] == (70, 70)
    assert w.views[("B", 1)]["r"].members["a2"] == (0, 0)
    w.join("B", 2, "b2")
    w.leave("A", 1)
    w.heal("A")
    assert w.views[("B", 1)]["r"].statuses[-1].unreachable == []
    w.assert_converged()
    w.disconnect("B", 1)
    w.join("A", 3, "a3", room="q")
    w.settle()
    w.assert_converged()
    assert sorted(w.views[("A", 2)]["r"].members) == ["a2", "b2"]


def test_two_edges_converge_in_strict_mode_with_one_global_order() -> None:
    """Strict: every connection gets the same sequenced batches in the same order."""
    w = World(strict=True)
    w.join("A", 1, "a1")
    w.join("A", 2, "a2")
    w.join("B", 1, "b1")
    w.join("B", 2, "b2")
    for i in range(5):
        w.move("A", 1, i, i)
        w.move("B", 2, 100 + i, 100 + i)
        if i % 2:
            w.tick("B", "A")
        else:
            w.tick("A", "B")
        w.move("A", 2, 200 + i, 0)
        w.tick("A")
    w.assert_converged()
    seen = w.moves_seen()
    assert len(seen) == 4
    first = next(iter(seen.values()))
    assert [m.seq for m in first] == list(range(1, 16))
    assert all(moves == first for moves in seen.values())
    w.cut("B")
    w.move("B", 1, 9, 9)
    w.tick()
    assert w.views[("B", 1)]["r"].statuses[-1].paused
    assert w.views[("B", 1)]["r"].members["b1"] == (0, 0)  # dropped, never shown
    w.heal("B")
    w.leave("B", 2)
    w.settle()
    w.assert_converged()
    assert w.views[("A", 1)]["r"].members["b1"] == (0, 0)


def test_two_edges_converge_after_the_core_expires_a_partitioned_edge() -> None:
    """Past the timeout the others see Left 'timeout'; the edge's return joins them again."""
    w = World(strict=False)
    w.join("A", 1, "a1")
    w.join("B", 1, "b1")
    w.cut("A")
    w.now += 11.0
    w.expire()
    assert sorted(w.views[("B", 1)]["r"].members) == ["b1"]
    assert sorted(w.views[("A", 1)]["r"].members) == ["a1", "b1"]  # A cannot know yet
    w.move("A", 1, 5, 5)
    w.tick()
    w.heal("A")
    w.assert_converged()
    assert w.views[("B", 1)]["r"].members["a1"] == (5, 5)


Op = tuple[str, int, int, int, int]

OPS = st.tuples(
    st.sampled_from(["join", "move", "tick", "leave", "disconnect", "cut", "heal", "flip"]),
    st.integers(0, 1),  # edge
    st.integers(1, 3),  # connection
    st.integers(0, 1),  # room
    st.integers(0, 10000),  # coordinate
)


@settings(max_examples=150, deadline=None)
@given(strict=st.booleans(), ops=st.lists(OPS, max_size=40))
def test_any_run_of_two_edges_converges(strict: bool, ops: list[Op]) -> None:
    """Whatever happens, once links heal and ticks flush, every view is the directory's."""
    w = World(strict=strict)
    made = 0
    for kind, e, conn, r, coord in ops:
        edge, room = "AB"[e], "rq"[r]
        try:
            if kind == "join":
                made += 1
                w.join(edge, conn, f"{edge}{conn}-{made}", room)
            elif kind == "move":
                w.move(edge, conn, coord, 10000 - coord, room)
            elif kind == "tick":
                w.tick(edge)
            elif kind == "leave":
                w.leave(edge, conn, room)
            elif kind == "disconnect":
                w.disconnect(edge, conn)
            elif kind == "cut":
                w.cut(edge)
            elif kind == "heal":
                w.heal(edge)
            else:
                w.flip_mode()
        except BadRequest:
            pass
    w.settle()
    w.assert_converged()


# --- room_sync in parts (finding 4) ----------------------------------------------------------


def test_a_sync_in_parts_replaces_what_the_edge_had_only_at_the_final_part() -> None:
    """Part 0 starts, the final part drops what no part listed; members listed in any part
    stay, even in a room spread over several parts."""
    d = directory_with(("A", "a1"), ("A", "a2"), ("A", "a3"), ("B", "b1"))
    d.edge_down("A", 0.0)
    out0 = d.sync("A", {"r": [member("a1")]}, part=0, final=False)
    assert not [m for _, m in out0 if isinstance(m, Left)]  # nothing dropped yet
    assert ids(d) == ["a1", "a2", "a3", "b1"]
    d.sync("A", {"r": [member("a3")], "s": [member("a4")]}, part=1, final=False)
    out2 = d.sync("A", {}, part=2, final=True)
    assert out2 == [(["B"], Left("r", "a2", "disconnect"))]
    assert ids(d) == ["a1", "a3", "b1"]
    assert ids(d, "s") == ["a4"]


def test_a_one_part_sync_is_the_same_as_before() -> None:
    """part=0, final=True (the defaults) is a whole sync in one frame."""
    d = directory_with(("A", "a1"), ("A", "a2"), ("B", "b1"))
    out = d.sync("A", {"r": [member("a2")]})
    assert (["B"], Left("r", "a1", "disconnect")) in out
    assert ids(d) == ["a2", "b1"]


def test_a_sync_cut_short_drops_nothing_and_the_next_starts_afresh() -> None:
    """The link drops before the final part: members stay (unreachable), nothing leaks."""
    d = directory_with(("A", "a1"), ("A", "a2"), ("B", "b1"))
    d.sync("A", {"r": [member("a1")]}, part=0, final=False)
    d.edge_down("A", 1.0)
    assert ids(d) == ["a1", "a2", "b1"]
    assert d._unlisted == {}
    d.sync("A", {"r": [member("a2")]}, part=0, final=True)
    assert ids(d) == ["a2", "b1"]


# --- moves_batch: one frame per edge per tick (finding 8) -----------------------------------


def test_a_batch_is_relayed_as_one_batch_per_receiving_edge() -> None:
    """A's tick over three rooms: B (in two of them) and C (in one) each get one frame."""
    d = RoomDirectory()
    for room, others in (("r1", ["B"]), ("r2", ["B", "C"]), ("r3", [])):
        d.joined("A", room, member(f"a-{room}"))
        for edge in others:
            d.joined(edge, room, member(f"{edge.lower()}-{room}", edge))
    batch = MovesBatch([Moves(r, [Position(f"a-{r}", 1, 2)]) for r in ("r1", "r2", "r3")])
    out = d.moves_batch("A", batch, strict=False)
    assert sorted(out, key=lambda o: o[0]) == [
        (
            ["B"],
            MovesBatch(
                [Moves("r1", [Position("a-r1", 1, 2)]), Moves("r2", [Position("a-r2", 1, 2)])]
            ),
        ),
        (["C"], MovesBatch([Moves("r2", [Position("a-r2", 1, 2)])])),
    ]


def test_a_strict_batch_is_sequenced_per_room_and_sent_to_the_origin_too() -> None:
    d = RoomDirectory()
    d.joined("A", "r1", member("a1"))
    d.joined("A", "r2", member("a2"))
    d.joined("B", "r2", member("b2", "B"))
    batch = MovesBatch([Moves("r1", [Position("a1", 1, 1)]), Moves("r2", [Position("a2", 2, 2)])])
    out = dict((tuple(t), m) for t, m in d.moves_batch("A", batch, strict=True))
    assert out[("A",)] == MovesBatch(
        [Moves("r1", [Position("a1", 1, 1)], 1), Moves("r2", [Position("a2", 2, 2)], 1)]
    )
    assert out[("B",)] == MovesBatch([Moves("r2", [Position("a2", 2, 2)], 1)])
