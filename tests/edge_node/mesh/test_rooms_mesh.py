"""EdgeRooms and RoomDirectory with the mesh: who gets a tick directly, what the core still
relays, each position shown once, partitions."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from core_region.cursors.rooms import RoomDirectory
from edge_node.cursors.rooms import EdgeRooms, Out
from shared.protocol import (
    STRICT,
    Join,
    Left,
    Member,
    Moves,
    MovesBatch,
    Position,
    Reach,
    RoomState,
    RoomStatus,
)


def remote(member_id: str, region: str) -> Member:
    return Member(member_id, member_id.upper(), "#0000ff", region)


def edge_with(*others: Member, link: bool = True) -> EdgeRooms:
    """An edge in ``ams`` with local member ``a`` (conn 1) in room ``r`` and ``others``."""
    rooms = EdgeRooms("ams", mesh=True)
    rooms.set_link(True)
    rooms.join(1, Join("r", "A", "#ff0000"), "a", 0.0)
    rooms.from_core(RoomState("r", list(others)))
    if not link:
        rooms.set_link(False)
    return rooms


def shown(out: Out) -> list[tuple[str, int, int]]:
    return [(p.id, p.x, p.y) for _, m in out.clients if isinstance(m, Moves) for p in m.moves]


def statuses(out: Out) -> list[RoomStatus]:
    return [m for _, m in out.clients if isinstance(m, RoomStatus)]


def test_a_tick_goes_straight_to_ready_peers_with_members_and_tells_the_core() -> None:
    rooms = edge_with(remote("s", "sin"), remote("f", "fra"), remote("i", "iad"))
    rooms.move(1, 5, 6, "r", 0.1)
    out = rooms.tick(0.2, frozenset({"sin", "fra", "syd"}))  # iad not ready; syd no member
    numbered = Moves("r", [Position("a", 5, 6, n=1)])
    assert out.peers == {"fra": [numbered], "sin": [numbered]}
    assert out.core == [Moves("r", [Position("a", 5, 6, n=1)], meshed=["fra", "sin"])]
    assert out.clients == [([1], Moves("r", [Position("a", 5, 6)]))]  # no counter for clients
    rooms.move(1, 7, 8, "r", 0.3)
    assert rooms.tick(0.4).core == [Moves("r", [Position("a", 7, 8, n=2)])]  # no mesh


def test_strict_rooms_never_use_the_mesh() -> None:
    rooms = edge_with(remote("s", "sin"))
    rooms.set_mode(STRICT)
    rooms.move(1, 5, 6, "r", 0.1)
    out = rooms.tick(0.2, frozenset({"sin"}))
    assert out.peers == {} and out.core == [Moves("r", [Position("a", 5, 6)])]
    assert rooms.from_peer("sin", Moves("r", [Position("s", 1, 1, n=1)])) == Out()


def test_a_move_by_both_paths_is_shown_once_and_never_goes_back() -> None:
    rooms = edge_with(remote("s", "sin"))
    assert shown(rooms.from_peer("sin", Moves("r", [Position("s", 1, 1, n=1)]))) == [("s", 1, 1)]
    late = rooms.from_core(Moves("r", [Position("s", 1, 1, n=1)]))
    assert shown(late) == [] and late.stale == 1
    assert shown(rooms.from_core(Moves("r", [Position("s", 3, 3, n=3)]))) == [("s", 3, 3)]
    older = rooms.from_peer("sin", Moves("r", [Position("s", 2, 2, n=2)]))
    assert shown(older) == [] and older.stale == 1
    assert rooms.presence(1, "r").members[1].x == 3


def test_a_peer_speaks_only_for_its_own_members() -> None:
    rooms = edge_with(remote("s", "sin"), remote("f", "fra"))
    out = rooms.from_peer("sin", Moves("r", [Position("f", 9, 9, n=1), Position("a", 9, 9, n=1)]))
    assert shown(out) == [] and out.stale == 2
    assert shown(rooms.from_peer("sin", Moves("x", [Position("s", 1, 1, n=1)]))) == []


def test_a_member_joining_again_counts_afresh() -> None:
    rooms = edge_with(remote("s", "sin"))
    rooms.from_peer("sin", Moves("r", [Position("s", 1, 1, n=50)]))
    rooms.from_core(RoomState("r", [remote("s", "fra")]))  # it rejoined through fra
    assert shown(rooms.from_peer("fra", Moves("r", [Position("s", 2, 2, n=1)]))) == [("s", 2, 2)]


def test_cut_off_from_the_core_the_mesh_keeps_members_and_the_room_says_so() -> None:
    rooms = edge_with(remote("s", "sin"), remote("f", "fra"))
    rooms.set_mesh("sin", True)
    out = rooms.set_link(False)
    assert statuses(out)[-1] == RoomStatus("r", "tolerant", False, False, ["f"], ["sin"])
    members = {m.id: m.reachable for m in rooms.presence(1, "r").members}
    assert members == {"a": True, "s": True, "f": False}
    assert shown(rooms.from_peer("sin", Moves("r", [Position("s", 4, 4, n=1)]))) == [("s", 4, 4)]
    rooms.move(1, 1, 2, "r", 0.1)
    out = rooms.tick(0.2, frozenset({"sin"}))
    assert list(out.peers) == ["sin"] and out.core == []
    down = rooms.set_mesh("sin", False)
    assert statuses(down)[-1] == RoomStatus("r", "tolerant", False, False, ["f", "s"])


def test_the_core_says_a_member_is_away_but_the_mesh_still_reaches_it() -> None:
    rooms = edge_with(remote("s", "sin"))
    rooms.set_mesh("sin", True)
    out = rooms.from_core(Reach("r", ["s"], False))
    assert statuses(out) == [RoomStatus("r", "tolerant", True, False, [])]


def directory() -> RoomDirectory:
    d = RoomDirectory()
    for edge, region, member_id in (("E1", "ams", "a"), ("E2", "sin", "s"), ("E3", "fra", "f")):
        d.joined(edge, "r", remote(member_id, region))
    d.take_counts()
    return d


def test_the_core_relays_only_to_edges_the_mesh_did_not_reach() -> None:
    d = directory()
    batch = Moves("r", [Position("a", 1, 1, n=4)], meshed=["sin"])
    out = d.moves_batch("E1", MovesBatch([batch]), strict=False)
    assert out == [(["E3"], MovesBatch([Moves("r", [Position("a", 1, 1, n=4)])]))]
    assert d.take_counts() == (1, 1)
    d.moves_batch("E1", MovesBatch([Moves("r", [Position("a", 2, 2, n=5)])]), strict=False)
    assert d.take_counts() == (2, 0)
    everywhere = Moves("r", [Position("a", 3, 3, n=6)], meshed=["sin", "fra"])
    assert d.moves_batch("E1", MovesBatch([everywhere]), strict=False) == []
    assert d.take_counts() == (0, 2)


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(st.tuples(st.sampled_from(["mesh", "core"]), st.integers(1, 30)), max_size=60))
def test_whatever_the_paths_bring_a_member_never_goes_back(arrivals: list[tuple[str, int]]) -> None:
    """Positions of one member arrive by either path, in any order, duplicates included: what
    is shown has strictly rising counters (x is the counter here)."""
    rooms = edge_with(remote("s", "sin"))
    xs: list[int] = []
    for path, n in arrivals:
        moves = Moves("r", [Position("s", n, 0, n=n)])
        out = rooms.from_peer("sin", moves) if path == "mesh" else rooms.from_core(moves)
        xs += [x for _, x, _ in shown(out)]
    assert xs == sorted(set(xs))
    assert xs == [] or max(xs) == max(n for _, n in arrivals)


def test_members_of_an_edge_the_mesh_still_reaches_outlive_the_presence_timeout() -> None:
    d = RoomDirectory(presence_timeout_s=5.0)
    for edge, region, member_id in (("E1", "ams", "a"), ("E2", "sin", "s")):
        d.joined(edge, "r", remote(member_id, region))
    d.mesh_peers("E2", ["ams"])
    d.edge_down("E1", 0.0)
    assert d.expire(60.0) == []  # sin still exchanges moves with ams
    d.mesh_peers("E2", [])
    assert d.expire(61.0) == [(["E2"], Left("r", "a", "timeout"))]


def test_a_restarted_edge_of_the_region_lets_the_old_one_go() -> None:
    d = RoomDirectory(presence_timeout_s=5.0)
    for edge, region, member_id in (("E1", "ams", "a"), ("E2", "sin", "s")):
        d.joined(edge, "r", remote(member_id, region))
    d.mesh_peers("E2", ["ams"])
    d.edge_down("E1", 0.0)
    d.joined("E1b", "r", remote("b", "ams"))  # ams's new edge: the one sin reaches now
    assert d.expire(60.0) == [(["E1b", "E2"], Left("r", "a", "timeout"))]


def test_an_edge_without_the_mesh_sends_its_positions_as_before() -> None:
    rooms = EdgeRooms("ams")
    rooms.set_link(True)
    rooms.join(1, Join("r", "A", "#ff0000"), "a", 0.0)
    rooms.from_core(RoomState("r", []))
    rooms.move(1, 5, 6, "r", 0.1)
    batch = Moves("r", [Position("a", 5, 6)])
    out = rooms.tick(0.2)
    assert out.core == [batch] and out.clients == [([1], batch)] and out.peers == {}
