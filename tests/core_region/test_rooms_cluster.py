"""RoomDirectory across core nodes (pure): events of other nodes' edges, an edge that moves
between nodes, nodes gone and the broker lost, strict moves numbered by the broker, and the
broker's cursor events (their codec is as strict as the link's)."""

from __future__ import annotations

import pytest

from core_region.cursors.cluster import decode_event, encode_event
from core_region.cursors.rooms import HERE, RoomDirectory
from shared.errors import ProtocolError
from shared.protocol import (
    Heartbeat,
    Joined,
    Left,
    Member,
    Moves,
    MovesBatch,
    Position,
    Reach,
    RoomState,
    RoomSync,
    pack,
    to_wire,
)


def member(member_id: str, region: str = "A", x: int = 0, y: int = 0) -> Member:
    return Member(member_id, member_id.upper(), "#00ff00", region, x, y)


def two_nodes() -> RoomDirectory:
    """This node's directory: edge A here with a1, edge B on node "n2" with b1, room r."""
    d = RoomDirectory(presence_timeout_s=10.0)
    d.sync("A", {"r": [member("a1")]})
    d.sync("B", {"r": [member("b1", "B")]}, node="n2")
    return d


def test_a_remote_edge_joins_the_directory_and_only_local_edges_are_relayed_to() -> None:
    d = two_nodes()
    assert sorted(m.id for m in d.members("r")) == ["a1", "b1"]
    assert d.is_here("A") and not d.is_here("B")
    out = d.moves("B", Moves("r", [Position("b1", 5, 6)]), strict=False, node="n2")
    assert out == [(["A"], Moves("r", [Position("b1", 5, 6)]))]
    # The remote node relays to its own edges: here A's move names B as a target, which the
    # shell skips (no link for it here).
    assert d.moves("A", Moves("r", [Position("a1", 1, 2)]), strict=False) == [
        (["B"], Moves("r", [Position("a1", 1, 2)]))
    ]


def test_the_old_nodes_edge_gone_after_a_failover_removes_nothing() -> None:
    """Edge B moves from node n2 to this node: n2's late "B gone" is stale."""
    d = two_nodes()
    d.sync("B", {"r": [member("b1", "B")]})  # B re-announced here
    assert d.is_here("B")
    assert d.edge_down("B", 1.0, node="n2") == []
    assert d.moves("B", Moves("r", [Position("b1", 3, 3)]), strict=False, node="n2") == []
    assert d.expire(100.0) == []  # nothing was marked down
    assert sorted(m.id for m in d.members("r")) == ["a1", "b1"]


def test_the_old_nodes_edge_gone_before_the_failover_is_healed_by_the_announce() -> None:
    """The other order: n2's "B gone" first (B unreachable), then B re-announced on n3."""
    d = two_nodes()
    assert d.edge_down("B", 1.0, node="n2") == [(["A"], Reach("r", ["b1"], False))]
    out = d.sync("B", {"r": [member("b1", "B")]}, node="n3")
    assert (["A"], Reach("r", ["b1"], True)) in out
    assert d.expire(100.0) == []  # B is up again (on n3): nothing expires
    assert d.edge_down("B", 101.0, node="n2") == []  # n2 speaks of it no more
    assert sorted(m.id for m in d.members("r")) == ["a1", "b1"]


def test_a_node_gone_marks_its_edges_down_then_they_expire() -> None:
    d = two_nodes()
    d.sync("C", {"r": [member("c1", "C")]}, node="n3")
    assert d.node_down("n2", 1.0) == [(["A", "C"], Reach("r", ["b1"], False))]
    assert d.node_down("n2", 2.0) == []  # already down: the timer is not reset
    out = d.expire(11.5)
    assert out == [(["A", "C"], Left("r", "b1", "timeout"))]
    assert sorted(m.id for m in d.members("r")) == ["a1", "c1"]


def test_the_broker_lost_marks_every_other_nodes_edges_down_and_an_announce_heals() -> None:
    d = two_nodes()
    d.sync("C", {"r": [member("c1", "C")]}, node="n3")
    out = d.remote_down(1.0)
    assert (["A", "C"], Reach("r", ["b1"], False)) in out
    assert (["A", "B"], Reach("r", ["c1"], False)) in out
    assert d.remote_down(2.0) == []
    # Back: n2 announces B again (n3 stays silent); B's members are kept, C's expire.
    out = d.sync("B", {"r": [member("b1", "B")]}, node="n2")
    assert (["A", "C"], Reach("r", ["b1"], True)) in out
    assert d.expire(100.0) == [(["A", "B"], Left("r", "c1", "timeout"))]
    assert sorted(m.id for m in d.members("r")) == ["a1", "b1"]


def test_an_announce_is_what_the_edge_said_in_bounded_parts() -> None:
    d = RoomDirectory()
    members = [member(f"m{n}") for n in range(5)]
    d.sync("A", {"r": members[:3], "s": members[3:]})
    d.moves("A", Moves("r", [Position("m0", 9, 9)]), strict=False)
    parts = d.announce("A", 2)
    assert [(p.part, p.final) for p in parts] == [(0, False), (1, False), (2, True)]
    announced = [m for p in parts for ms in p.rooms.values() for m in ms]
    assert sorted(m.id for m in announced) == [f"m{n}" for n in range(5)]
    assert member("m0", x=9, y=9) in announced  # its latest position
    assert d.announce("nobody", 2) == [RoomSync({}, 0, True)]
    # Fed to another node, the parts rebuild the edge's members there.
    other = RoomDirectory()
    for p in parts:
        other.sync("A", p.rooms, part=p.part, final=p.final, node="n1")
    assert sorted(m.id for m in other.members("r") + other.members("s")) == sorted(
        m.id for m in announced
    )


def test_strict_moves_are_numbered_by_the_broker_and_relayed_to_every_edge() -> None:
    d = two_nodes()
    batch = Moves("r", [Position("a1", 1, 1), Position("b1", 2, 2)])
    mine = d.owned("A", batch)
    assert mine == Moves("r", [Position("a1", 1, 1)])  # only A's own member
    assert d.members("r")[0].x == 0  # nothing applied before the broker numbers it
    assert d.owned("B", batch) is None  # B is not on this node
    assert d.owned("A", Moves("nowhere", [Position("a1", 1, 1)])) is None
    out = d.sequenced("A", mine, 41)
    assert out == [(["A", "B"], Moves("r", [Position("a1", 1, 1)], 41))]
    out = d.sequenced("B", Moves("r", [Position("b1", 7, 7)]), 42, node="n2")
    assert out == [(["A", "B"], Moves("r", [Position("b1", 7, 7)], 42))]
    assert d.sequenced("B", Moves("r", [Position("b1", 7, 7)]), 43, node="n9") == []


def test_a_claim_takes_an_edge_back() -> None:
    d = two_nodes()
    d.sync("A", {"r": [member("a1")]}, node="n2")  # a stale announce of A by n2
    assert not d.is_here("A")
    d.claim("A")
    assert d.is_here("A")
    assert d.moves("A", Moves("r", [Position("a1", 4, 4)]), strict=False) != []


def test_single_node_behaviour_is_unchanged() -> None:
    """Without a node named, every event is this node's own, as before."""
    d = RoomDirectory()
    assert d.joined("A", "r", member("a1")) == [(["A"], RoomState("r", []))]
    out = d.moves_batch("A", MovesBatch([Moves("r", [Position("a1", 1, 1)])]), strict=True)
    assert out == [(["A"], MovesBatch([Moves("r", [Position("a1", 1, 1)], 1)]))]
    assert HERE == ""


# --- the events' codec ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        None,
        Joined("r", member("a1")),
        Left("r", "a1", "leave"),
        Moves("r", [Position("a1", 1, 2)], None),
        MovesBatch([Moves("r", [Position("a1", 1, 2)])]),
        RoomSync({"r": [member("a1")]}, 1, False),
    ],
)
def test_an_event_round_trips(message: object) -> None:
    assert decode_event(encode_event("edge-1", message)) == ("edge-1", message)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "data",
    [
        b"\xc1",
        pack({"edge": "e"}),
        pack(["e"]),
        pack([7, None]),
        pack(["", None]),
        pack(["e" * 300, None]),
        pack(["e", {"type": "joined", "room": "r"}]),  # a field missing
        pack(["e", {"type": "moves", "room": "r", "moves": [{"id": "a", "x": "1", "y": 2}]}]),
        pack(["e", to_wire(Heartbeat(1, {}))]),  # a message no edge relays
        pack(["e", "text"]),
    ],
)
def test_a_malformed_event_is_refused(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_event(data)
