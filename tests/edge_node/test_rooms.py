"""EdgeRooms, the pure cursor core of an edge: joins, ticks, the link, timeouts, limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from edge_node.cursors.rooms import AWAIT_CORE_S, COORD_MAX, EdgeRooms, Out
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
    Position,
    Presence,
    Reach,
    RoomState,
    RoomStatus,
    RoomSync,
)

RED, BLUE = "#ff0000", "#0000ff"


def remote(member_id: str, region: str = "sin", x: int = 0, y: int = 0) -> Member:
    """A member on another edge, as the core describes it."""
    return Member(member_id, member_id.upper(), BLUE, region, x, y)


def edge(
    *,
    link: bool = False,
    max_members: int = 200,
    max_rooms_per_conn: int = 4,
    presence_timeout_s: float = 20.0,
) -> EdgeRooms:
    """An edge in region ams, its link up or down."""
    rooms = EdgeRooms(
        "ams",
        max_members=max_members,
        max_rooms_per_conn=max_rooms_per_conn,
        presence_timeout_s=presence_timeout_s,
    )
    rooms.set_link(link)
    return rooms


def join(
    rooms: EdgeRooms,
    conn: int,
    member_id: str,
    now: float = 0.0,
    *,
    room: str = "r",
    session: str | None = None,
) -> Out:
    return rooms.join(conn, Join(room, member_id.upper(), RED, session), member_id, now)


def to(out: Out, conn: int) -> list[Message]:
    """Every message ``out`` sends to ``conn``, in order."""
    return [message for conns, message in out.clients if conn in conns]


def presence_ids(message: Message) -> list[str]:
    assert isinstance(message, Presence)
    return sorted(m.id for m in message.members)


def members_of(rooms: EdgeRooms, conn: int, room: str = "r") -> dict[str, Member]:
    return {m.id: m for m in rooms.presence(conn, room).members}


def synced_edge(*members: Member) -> EdgeRooms:
    """An edge with the link up, local member ``a`` on conn 1 and ``members`` elsewhere."""
    rooms = edge(link=True)
    join(rooms, 1, "a")
    rooms.from_core(RoomState("r", list(members)))
    return rooms


# --- join and presence -------------------------------------------------------------------


def test_join_with_link_down_answers_presence_at_once_and_tells_the_core() -> None:
    """With no link there is nothing to wait for: presence now, and Joined for the core."""
    rooms = edge()
    out = join(rooms, 1, "a")
    assert out.clients == [
        ([1], Presence("r", "a", [Member("a", "A", RED, "ams")], TOLERANT, reachable=False))
    ]
    assert out.core == [Joined("r", Member("a", "A", RED, "ams"))]
    assert rooms.rooms_of(1) == {"r": "a"}
    assert rooms.local_ids("r") == ["a"]
    assert (rooms.room_count(), rooms.member_count()) == (1, 1)


def test_join_announces_the_newcomer_to_the_other_local_members_only() -> None:
    """Others get Joined, the joiner gets presence with everyone, the core gets Joined."""
    rooms = edge()
    join(rooms, 1, "a")
    out = join(rooms, 2, "b")
    b = Member("b", "B", RED, "ams")
    assert to(out, 1) == [Joined("r", b)]
    assert len(to(out, 2)) == 1 and presence_ids(to(out, 2)[0]) == ["a", "b"]
    assert out.core == [Joined("r", b)]


def test_first_joiner_with_link_up_awaits_the_cores_room_state() -> None:
    """No presence until RoomState; then one presence that includes the remote members."""
    rooms = edge(link=True)
    out = join(rooms, 1, "a")
    assert out.clients == []
    assert out.core == [Joined("r", Member("a", "A", RED, "ams"))]
    out = rooms.from_core(RoomState("r", [remote("x")]))
    presences = [m for m in to(out, 1) if isinstance(m, Presence)]
    assert len(presences) == 1
    assert presences[0].you == "a" and presences[0].reachable
    assert presence_ids(presences[0]) == ["a", "x"]


def test_members_joining_while_awaiting_hear_nothing_until_their_presence() -> None:
    """Awaiting connections get no Joined or Moves; RoomState answers each one presence."""
    rooms = edge(link=True)
    join(rooms, 1, "a")
    out = join(rooms, 2, "b")
    assert out.clients == []
    out = rooms.from_core(Joined("r", remote("x")))
    assert to(out, 1) == [] and to(out, 2) == []
    out = rooms.from_core(Moves("r", [Position("x", 5, 5)]))
    assert to(out, 1) == [] and to(out, 2) == []
    out = rooms.from_core(RoomState("r", [remote("x", x=5, y=5)]))
    for conn in (1, 2):
        (presence,) = [m for m in to(out, conn) if isinstance(m, Presence)]
        assert presence_ids(presence) == ["a", "b", "x"]
    assert members_of(rooms, 1)["x"].x == 5


def test_awaiting_joiner_gets_presence_when_the_link_drops() -> None:
    """Losing the link ends the wait: presence (unreachable), then the room status."""
    rooms = edge(link=True)
    join(rooms, 1, "a")
    out = rooms.set_link(False)
    assert out.clients == [
        ([1], Presence("r", "a", [Member("a", "A", RED, "ams")], TOLERANT, reachable=False)),
        ([1], RoomStatus("r", TOLERANT, reachable=False, paused=False)),
    ]


def test_awaiting_joiner_gets_presence_after_await_core_s_via_tick() -> None:
    """A core that never answers delays presence by AWAIT_CORE_S, not forever."""
    rooms = edge(link=True)
    join(rooms, 1, "a", now=10.0)
    join(rooms, 2, "b", now=11.0)
    assert rooms.tick(10.0 + AWAIT_CORE_S).clients == []
    out = rooms.tick(10.0 + AWAIT_CORE_S + 0.01)
    assert [type(m) for m in to(out, 1)] == [Presence]
    assert [type(m) for m in to(out, 2)] == [Presence]
    assert rooms.tick(20.0).clients == []  # answered once only
    out = rooms.from_core(RoomState("r", []))  # a late answer changes no one's presence
    assert not [m for _, m in out.clients if isinstance(m, Presence)]


def test_joiner_of_a_synced_room_gets_presence_at_once() -> None:
    """Once the core has listed the room, later joiners are answered on the spot."""
    rooms = synced_edge(remote("x"))
    out = join(rooms, 2, "b")
    assert len(to(out, 2)) == 1 and presence_ids(to(out, 2)[0]) == ["a", "b", "x"]
    assert to(out, 1) == [Joined("r", Member("b", "B", RED, "ams"))]


def test_reconnect_makes_new_joiners_await_the_fresh_room_state() -> None:
    """After the link comes back a room is unsynced again until the core's RoomState."""
    rooms = synced_edge()
    rooms.set_link(False)
    rooms.set_link(True)
    assert rooms.sync() == RoomSync({"r": [Member("a", "A", RED, "ams")]})
    out = join(rooms, 2, "b")
    assert to(out, 2) == [] and to(out, 1) == [Joined("r", Member("b", "B", RED, "ams"))]
    out = rooms.from_core(RoomState("r", []))
    assert [type(m) for m in to(out, 2)] == [Presence]


def test_leaving_while_awaiting_forgets_the_wait() -> None:
    """A joiner that leaves before RoomState is not answered later, nor on tick."""
    rooms = edge(link=True)
    join(rooms, 1, "a")
    join(rooms, 2, "b")
    out = rooms.leave(2, None)
    assert out.core == [Left("r", "b", "leave")]
    assert out.clients == []  # conn 1 has no presence yet: it hears nothing
    out = rooms.from_core(RoomState("r", []))
    assert [type(m) for m in to(out, 1)] == [Presence] and to(out, 2) == []
    assert to(rooms.tick(1.0 + AWAIT_CORE_S), 2) == []


# --- moves and ticks ---------------------------------------------------------------------


def test_many_moves_in_one_tick_coalesce_to_the_latest_position_of_movers_only() -> None:
    """One Moves batch per room per tick, the last position of each member who moved."""
    rooms = edge(link=True)
    for conn, member_id in ((1, "a"), (2, "b"), (3, "c")):
        join(rooms, conn, member_id)
    rooms.from_core(RoomState("r", []))
    for x in range(10):
        rooms.move(1, x, x + 1, None, 0.1)
    rooms.move(2, 7, 8, "r", 0.1)
    rooms.move(2, 9, 9, "r", 0.2)
    out = rooms.tick(0.3)
    batch = Moves("r", [Position("a", 9, 10), Position("b", 9, 9)])
    assert out.clients == [([1, 2, 3], batch)]
    assert out.core == [batch]
    assert rooms.tick(0.4) == Out()  # nothing moved since


def test_tolerant_tick_with_link_down_delivers_locally_only() -> None:
    """The batch reaches local members; nothing is queued for a core that is gone."""
    rooms = edge()
    join(rooms, 1, "a")
    join(rooms, 2, "b")
    rooms.move(1, 100, 200, None, 0.1)
    out = rooms.tick(0.2)
    assert out.clients == [([1, 2], Moves("r", [Position("a", 100, 200)]))]
    assert out.core == []
    rooms.set_link(True)
    assert rooms.tick(0.3).core == []  # old moves are never replayed


def test_tolerant_tick_updates_the_positions_that_presence_and_sync_report() -> None:
    """After a tick, a member's position is its latest move for newcomers and the core."""
    rooms = edge()
    join(rooms, 1, "a")
    rooms.move(1, 10, 20, None, 0.1)
    assert members_of(rooms, 1)["a"].x == 0  # not before the tick
    rooms.tick(0.2)
    assert (members_of(rooms, 1)["a"].x, members_of(rooms, 1)["a"].y) == (10, 20)
    out = join(rooms, 2, "b")
    (presence,) = to(out, 2)
    assert isinstance(presence, Presence)
    assert {m.id: (m.x, m.y) for m in presence.members} == {"a": (10, 20), "b": (0, 0)}
    assert rooms.sync().rooms["r"][0] == Member("a", "A", RED, "ams", 10, 20)


def test_strict_tick_sends_the_batch_to_the_core_only() -> None:
    """Strict: local members see nothing until the core's sequenced relay comes back."""
    rooms = synced_edge()
    join(rooms, 2, "b")
    assert rooms.set_mode(STRICT).clients == [
        ([1, 2], RoomStatus("r", STRICT, reachable=True, paused=False))
    ]
    rooms.move(1, 3, 4, None, 0.1)
    out = rooms.tick(0.2)
    assert out.clients == []
    assert out.core == [Moves("r", [Position("a", 3, 4)])]
    assert members_of(rooms, 1)["a"].x == 0
    relay = Moves("r", [Position("a", 3, 4)], seq=1)
    out = rooms.from_core(relay)
    assert out.clients == [([1, 2], relay)]
    assert (members_of(rooms, 2)["a"].x, members_of(rooms, 2)["a"].y) == (3, 4)


def test_strict_with_link_down_drops_moves_and_says_paused() -> None:
    """Strict without the core: no batch anywhere, and the room status says paused."""
    rooms = synced_edge(remote("x"))
    rooms.set_mode(STRICT)
    out = rooms.set_link(False)
    assert to(out, 1) == [RoomStatus("r", STRICT, reachable=False, paused=True, unreachable=["x"])]
    assert rooms.status("r").paused
    rooms.move(1, 3, 4, None, 0.1)
    assert rooms.tick(0.2) == Out()
    out = rooms.set_link(True)
    assert to(out, 1) == [RoomStatus("r", STRICT, reachable=True, paused=False, unreachable=["x"])]
    assert rooms.tick(0.3) == Out()  # the dropped move is not sent late


def test_relayed_moves_update_remote_positions_and_are_delivered() -> None:
    """A remote batch goes to every local member as is, and presence shows the positions."""
    rooms = synced_edge(remote("x"), remote("y"))
    join(rooms, 2, "b")
    relay = Moves("r", [Position("x", 40, 50)])
    out = rooms.from_core(relay)
    assert out.clients == [([1, 2], relay)] and out.core == []
    members = members_of(rooms, 2)
    assert (members["x"].x, members["x"].y, members["y"].x) == (40, 50, 0)


def test_set_mode_drops_pending_moves_and_same_mode_is_a_no_op() -> None:
    """Switching modes discards the unsent batch; setting the current mode says nothing."""
    rooms = synced_edge()
    assert rooms.set_mode(TOLERANT) == Out()
    rooms.move(1, 3, 4, None, 0.1)
    out = rooms.set_mode(STRICT)
    assert out.clients == [([1], RoomStatus("r", STRICT, reachable=True, paused=False))]
    assert rooms.tick(0.2) == Out()
    assert rooms.mode == STRICT
    out = rooms.set_mode(TOLERANT)
    assert to(out, 1) == [RoomStatus("r", TOLERANT, reachable=True, paused=False)]


def test_presence_after_mode_change_reports_the_mode() -> None:
    """Presence carries the edge's current mode and link state."""
    rooms = edge()
    rooms.set_mode(STRICT)
    (presence,) = to(join(rooms, 1, "a"), 1)
    assert isinstance(presence, Presence)
    assert (presence.mode, presence.reachable) == (STRICT, False)


# --- leave, disconnect, timeouts -----------------------------------------------------------


def test_leave_tells_the_other_local_members_and_the_core() -> None:
    """Left 'leave' to the rest of the room and to the core; the leaver's moves are dropped."""
    rooms = edge(link=True)
    join(rooms, 1, "a")
    join(rooms, 2, "b")
    rooms.from_core(RoomState("r", []))
    rooms.move(2, 5, 5, None, 0.1)
    out = rooms.leave(2, "r")
    assert out.clients == [([1], Left("r", "b", "leave"))]
    assert out.core == [Left("r", "b", "leave")]
    assert rooms.rooms_of(2) == {}
    assert rooms.tick(0.2) == Out()  # b's pending move left with it


def test_disconnect_leaves_every_room_of_the_connection() -> None:
    """Each room the connection was in hears Left 'disconnect', and so does the core."""
    rooms = edge()
    join(rooms, 1, "a1", room="r1")
    join(rooms, 1, "a2", room="r2")
    join(rooms, 2, "b1", room="r1")
    out = rooms.disconnect(1)
    assert out.clients == [([2], Left("r1", "a1", "disconnect"))]
    assert out.core == [Left("r1", "a1", "disconnect"), Left("r2", "a2", "disconnect")]
    assert rooms.rooms_of(1) == {}
    assert rooms.room_count() == 1
    assert rooms.disconnect(1) == Out()


def test_a_room_without_local_members_is_dropped() -> None:
    """The last local member leaving drops the room and what the edge knew of it."""
    rooms = synced_edge(remote("x"))
    assert rooms.member_count() == 2
    out = rooms.leave(1, None)
    assert out.clients == [] and out.core == [Left("r", "a", "leave")]
    assert (rooms.room_count(), rooms.member_count()) == (0, 0)
    assert rooms.local_ids("r") == []
    assert rooms.from_core(Moves("r", [Position("x", 1, 1)])) == Out()
    assert rooms.from_core(Joined("r", remote("y"))) == Out()
    assert rooms.sync() == RoomSync({})


def test_silent_member_expires_after_the_presence_timeout() -> None:
    """Silent past presence_timeout_s: removed with Left 'timeout', locally and at the core."""
    rooms = edge(presence_timeout_s=5.0)
    join(rooms, 1, "a", now=0.0)
    join(rooms, 2, "b", now=3.0)
    assert rooms.tick(5.0) == Out()  # exactly the timeout: still present
    out = rooms.tick(5.5)
    assert out.clients == [([1], Left("r", "a", "timeout")), ([2], Left("r", "a", "timeout"))]
    assert out.core == [Left("r", "a", "timeout")]
    assert rooms.rooms_of(1) == {}
    out = rooms.tick(8.5)
    assert out.clients == [([2], Left("r", "b", "timeout"))]
    assert out.core == [Left("r", "b", "timeout")]
    assert rooms.room_count() == 0


def test_touch_and_move_keep_a_member_present() -> None:
    """Any message (touch) or a move refreshes the member; silence still expires it."""
    rooms = edge(presence_timeout_s=5.0)
    join(rooms, 1, "a", now=0.0)
    join(rooms, 2, "b", now=0.0)
    join(rooms, 3, "c", now=0.0)
    rooms.touch(1, 4.0)
    rooms.move(2, 1, 1, None, 4.0)
    out = rooms.tick(6.0)
    lefts = [m for _, m in out.clients if isinstance(m, Left)]
    assert lefts == [Left("r", "c", "timeout")] * 2  # to c itself, then to the others
    assert sorted(rooms.local_ids("r")) == ["a", "b"]
    rooms.touch(99, 6.0)  # an unknown connection is ignored


# --- evictions -----------------------------------------------------------------------------


def test_same_session_from_another_connection_evicts_the_old_one() -> None:
    """The new connection takes over the member: the old one gets Left 'evicted'."""
    rooms = edge()
    join(rooms, 1, "a", session="s")
    join(rooms, 3, "c")
    out = join(rooms, 2, "a", session="s")
    assert to(out, 1)[0] == Left("r", "a", "evicted")
    assert presence_ids(to(out, 2)[0]) == ["a", "c"]
    assert Joined("r", Member("a", "A", RED, "ams")) in to(out, 3)
    assert out.core == [Joined("r", Member("a", "A", RED, "ams"))]
    assert rooms.rooms_of(1) == {} and rooms.rooms_of(2) == {"r": "a"}
    assert rooms.disconnect(1) == Out()  # the old connection no longer speaks for "a"
    assert rooms.local_ids("r") == ["a", "c"]
    rooms.move(2, 7, 7, None, 0.1)
    assert to(rooms.tick(0.2), 2) == [Moves("r", [Position("a", 7, 7)])]


def test_evicted_connection_hears_nothing_after_its_left() -> None:
    """After Left 'evicted' the old connection gets no further message for that room."""
    rooms = edge()
    join(rooms, 1, "a", session="s")
    out = join(rooms, 2, "a", session="s")
    assert to(out, 1) == [Left("r", "a", "evicted")]


def test_same_session_rejoin_while_awaiting_room_state() -> None:
    """A reconnect before the core answered: RoomState answers only the new connection."""
    rooms = edge(link=True)
    join(rooms, 1, "a", session="s")
    join(rooms, 2, "a", session="s")
    out = rooms.from_core(RoomState("r", [remote("x")]))
    assert [type(m) for m in to(out, 2)] == [Presence]
    assert to(out, 1) == []


def test_same_session_rejoin_while_awaiting_then_await_times_out() -> None:
    """Without RoomState, the tick after AWAIT_CORE_S answers only the new connection."""
    rooms = edge(link=True)
    join(rooms, 1, "a", session="s")
    join(rooms, 2, "a", session="s")
    out = rooms.tick(AWAIT_CORE_S + 1)
    assert [type(m) for m in to(out, 2)] == [Presence]


def test_join_of_a_member_known_as_remote_makes_it_local() -> None:
    """A member rejoining here from another edge is no longer listed as remote."""
    rooms = synced_edge(remote("x"))
    out = join(rooms, 2, "x")
    assert to(out, 1) == [Joined("r", Member("x", "X", RED, "ams"))]
    assert sorted(rooms.local_ids("r")) == ["a", "x"]
    assert members_of(rooms, 1)["x"].region == "ams"
    assert rooms.member_count() == 2
    assert rooms.from_core(Joined("r", remote("x"))) == Out()  # the core's echo is ignored


def test_evict_from_the_core_drops_the_local_member_quietly() -> None:
    """Evict: the connection gets Left 'evicted', nothing goes to the core."""
    rooms = synced_edge()
    join(rooms, 2, "b")
    rooms.move(1, 5, 5, None, 0.1)
    out = rooms.from_core(Evict("r", "a"))
    assert out.clients == [([1], Left("r", "a", "evicted"))]
    assert out.core == []
    assert rooms.rooms_of(1) == {} and rooms.local_ids("r") == ["b"]
    assert rooms.tick(0.2) == Out()  # its pending move went with it
    assert rooms.from_core(Evict("r", "a")) == Out()  # unknown id: nothing
    out = rooms.from_core(Evict("r", "b"))
    assert out.clients == [([2], Left("r", "b", "evicted"))]
    assert rooms.room_count() == 0


# --- the link ------------------------------------------------------------------------------


def test_set_link_to_the_same_state_says_nothing() -> None:
    """Only a change of link state produces statuses."""
    rooms = synced_edge()
    assert rooms.set_link(True) == Out()
    rooms.set_link(False)
    assert rooms.set_link(False) == Out()


def test_link_down_marks_remote_members_unreachable() -> None:
    """A dropped link: remote members stay listed, unreachable, and the status names them."""
    rooms = synced_edge(remote("y"), remote("x"))
    out = rooms.set_link(False)
    assert out.clients == [
        ([1], RoomStatus("r", TOLERANT, reachable=False, paused=False, unreachable=["x", "y"]))
    ]
    members = members_of(rooms, 1)
    assert not members["x"].reachable and not members["y"].reachable and members["a"].reachable
    assert rooms.presence(1, "r").reachable is False


def test_room_state_after_reconnect_reconciles_the_remote_members() -> None:
    """Left for vanished members, Joined for new and changed ones, then a reachable status."""
    rooms = synced_edge(remote("gone"), remote("same"), remote("moved"))
    rooms.set_link(False)
    rooms.set_link(True)
    state = [remote("same"), remote("moved", x=9, y=9), remote("new")]
    out = rooms.from_core(RoomState("r", state))
    assert out.core == []
    assert to(out, 1) == [
        Left("r", "gone", "disconnect"),
        Joined("r", remote("same")),  # was unreachable, now reachable again
        Joined("r", remote("moved", x=9, y=9)),
        Joined("r", remote("new")),
        RoomStatus("r", TOLERANT, reachable=True, paused=False),
    ]
    assert sorted(members_of(rooms, 1)) == ["a", "moved", "new", "same"]
    assert rooms.status("r").unreachable == []


def test_room_state_sends_joined_only_for_what_changed() -> None:
    """A RoomState equal to what the edge knows produces only the status."""
    rooms = synced_edge(remote("x"))
    out = rooms.from_core(RoomState("r", [remote("x")]))
    assert to(out, 1) == [RoomStatus("r", TOLERANT, reachable=True, paused=False)]


def test_room_state_never_lists_a_local_member_as_remote() -> None:
    """An id the edge holds locally is ignored in RoomState."""
    rooms = synced_edge()
    rooms.from_core(RoomState("r", [remote("a"), remote("x")]))
    assert rooms.local_ids("r") == ["a"]
    assert members_of(rooms, 1)["a"].region == "ams"
    assert rooms.member_count() == 2


def test_reach_from_the_core_updates_reachability_and_status() -> None:
    """Reach False/True flips the named remote members and tells local members."""
    rooms = synced_edge(remote("x"), remote("y"))
    out = rooms.from_core(Reach("r", ["x", "nobody"], False))
    assert out.clients == [
        ([1], RoomStatus("r", TOLERANT, reachable=True, paused=False, unreachable=["x"]))
    ]
    assert not members_of(rooms, 1)["x"].reachable and members_of(rooms, 1)["y"].reachable
    out = rooms.from_core(Reach("r", ["x"], True))
    assert out.clients == [([1], RoomStatus("r", TOLERANT, reachable=True, paused=False))]


def test_joined_and_left_from_the_core_update_remote_members() -> None:
    """Remote Joined/Left are applied and forwarded; Left of an unknown id is ignored."""
    rooms = synced_edge()
    out = rooms.from_core(Joined("r", remote("x")))
    assert out.clients == [([1], Joined("r", remote("x")))]
    assert rooms.from_core(Joined("r", remote("a"))) == Out()  # a local id: ignored
    assert rooms.from_core(Left("r", "a", "leave")) == Out()  # only remote ids are removed
    assert rooms.from_core(Left("r", "nobody", "leave")) == Out()
    out = rooms.from_core(Left("r", "x", "timeout"))
    assert out.clients == [([1], Left("r", "x", "timeout"))]
    assert sorted(members_of(rooms, 1)) == ["a"]


def test_messages_for_unknown_rooms_are_ignored() -> None:
    """The core may relay a room this edge has just dropped: nothing happens."""
    rooms = synced_edge()
    for message in (
        RoomState("other", [remote("x")]),
        Moves("other", [Position("x", 1, 1)]),
        Reach("other", ["x"], False),
        Evict("other", "a"),
        Left("other", "x", "leave"),
    ):
        assert rooms.from_core(message) == Out()
    assert rooms.room_count() == 1


# --- limits and validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (Join("", "n", RED), "bad_room"),
        (Join("r" * 65, "n", RED), "bad_room"),
        (Join("a\nb", "n", RED), "bad_room"),
        (Join("r", "", RED), "bad_name"),
        (Join("r", "n" * 33, RED), "bad_name"),
        (Join("r", "tab\there", RED), "bad_name"),
        (Join("r", "n", "red"), "bad_color"),
        (Join("r", "n", "#12345"), "bad_color"),
        (Join("r", "n", "#1234567"), "bad_color"),
        (Join("r", "n", "#12345g"), "bad_color"),
        (Join("r", "n", RED, ""), "bad_session"),
        (Join("r", "n", RED, "s" * 65), "bad_session"),
    ],
)
def test_join_refuses_bad_fields(message: Join, code: str) -> None:
    """Each bad field is a BadRequest with its code, and nothing is joined."""
    rooms = edge()
    with pytest.raises(BadRequest) as caught:
        rooms.join(1, message, "a", 0.0)
    assert caught.value.code == code
    assert (rooms.room_count(), rooms.rooms_of(1)) == (0, {})


def test_join_accepts_the_longest_fields() -> None:
    """64-char room and session, 32-char name, upper-case hex colour are fine."""
    rooms = edge()
    rooms.join(1, Join("r" * 64, "n" * 32, "#ABCdef", "s" * 64), "a", 0.0)
    assert rooms.rooms_of(1) == {"r" * 64: "a"}


def test_join_twice_into_one_room_is_already_joined() -> None:
    """A connection holds one member per room."""
    rooms = edge()
    join(rooms, 1, "a")
    with pytest.raises(BadRequest) as caught:
        join(rooms, 1, "a2")
    assert caught.value.code == "already_joined"
    assert rooms.local_ids("r") == ["a"]


def test_join_over_max_rooms_per_conn_is_too_many_rooms() -> None:
    """max_rooms_per_conn bounds the rooms of one connection, not of the edge."""
    rooms = edge(max_rooms_per_conn=2)
    join(rooms, 1, "a1", room="r1")
    join(rooms, 1, "a2", room="r2")
    with pytest.raises(BadRequest) as caught:
        join(rooms, 1, "a3", room="r3")
    assert caught.value.code == "too_many_rooms"
    assert rooms.room_count() == 2
    join(rooms, 2, "b3", room="r3")
    rooms.leave(1, "r1")
    join(rooms, 1, "a3", room="r3")
    assert rooms.rooms_of(1) == {"r2": "a2", "r3": "a3"}


def test_join_of_a_full_room_is_room_full_counting_remote_members() -> None:
    """max_members counts local and remote members; a session taking over is not new."""
    rooms = edge(link=True, max_members=3)
    join(rooms, 1, "a", session="s")
    rooms.from_core(RoomState("r", [remote("x")]))
    join(rooms, 2, "b")
    with pytest.raises(BadRequest) as caught:
        join(rooms, 3, "c")
    assert caught.value.code == "room_full"
    assert rooms.rooms_of(3) == {}
    out = join(rooms, 4, "a", session="s")  # the same member again: allowed
    assert to(out, 1)[0] == Left("r", "a", "evicted")
    assert rooms.member_count() == 3


def test_room_full_leaves_no_empty_room_behind() -> None:
    """A refused first joiner does not create the room."""
    rooms = edge(max_members=0)
    with pytest.raises(BadRequest) as caught:
        join(rooms, 1, "a")
    assert caught.value.code == "room_full"
    assert rooms.room_count() == 0


def test_rejoin_of_a_listed_member_is_not_refused_when_the_room_is_full() -> None:
    """A member already in the room (same session, another edge before) takes its own place:
    the room does not grow, so a full room does not refuse it, and nobody is lost."""
    rooms = edge(link=True, max_members=2)
    join(rooms, 1, "a")
    rooms.from_core(RoomState("r", [remote("x"), remote("y")]))
    join(rooms, 2, "x")  # x's session, reconnecting through this edge
    assert sorted(members_of(rooms, 1)) == ["a", "x", "y"]


@pytest.mark.parametrize(("x", "y"), [(-1, 0), (0, -1), (COORD_MAX + 1, 0), (0, COORD_MAX + 1)])
def test_move_out_of_range_is_bad_position(x: int, y: int) -> None:
    """Coordinates are integers in 0..10000."""
    rooms = edge()
    join(rooms, 1, "a")
    with pytest.raises(BadRequest) as caught:
        rooms.move(1, x, y, None, 0.1)
    assert caught.value.code == "bad_position"
    assert rooms.tick(0.2) == Out()


def test_move_at_the_corners_is_accepted() -> None:
    """0 and 10000 are inside the range."""
    rooms = edge()
    join(rooms, 1, "a")
    rooms.move(1, 0, COORD_MAX, None, 0.1)
    assert rooms.tick(0.2).clients == [([1], Moves("r", [Position("a", 0, COORD_MAX)]))]


def test_move_and_leave_need_a_room_the_connection_is_in() -> None:
    """No room given: bad_room unless in exactly one; a room not joined: not_joined."""
    rooms = edge()
    for call in (lambda: rooms.move(1, 1, 1, None, 0.0), lambda: rooms.leave(1, None)):
        with pytest.raises(BadRequest) as caught:
            call()
        assert caught.value.code == "bad_room"
    join(rooms, 1, "a1", room="r1")
    join(rooms, 1, "a2", room="r2")
    for call in (lambda: rooms.move(1, 1, 1, None, 0.0), lambda: rooms.leave(1, None)):
        with pytest.raises(BadRequest) as caught:
            call()
        assert caught.value.code == "bad_room"
    for call in (lambda: rooms.move(1, 1, 1, "r3", 0.0), lambda: rooms.leave(1, "r3")):
        with pytest.raises(BadRequest) as caught:
            call()
        assert caught.value.code == "not_joined"
    rooms.move(1, 1, 1, "r2", 0.0)
    out = rooms.tick(0.1)
    assert out.clients == [([1], Moves("r2", [Position("a2", 1, 1)]))]


@settings(max_examples=60, deadline=None)
@given(
    moves=st.lists(
        st.tuples(
            st.sampled_from([1, 2]),
            st.integers(-5, COORD_MAX + 5),
            st.integers(-5, COORD_MAX + 5),
        ),
        max_size=30,
    )
)
def test_a_tick_batch_holds_the_last_valid_position_of_each_mover(
    moves: list[tuple[int, int, int]],
) -> None:
    """Whatever the moves, the batch is the last in-range position of each member who moved."""
    rooms = edge()
    join(rooms, 1, "a")
    join(rooms, 2, "b")
    expected: dict[str, Position] = {}
    for conn, x, y in moves:
        member_id = "a" if conn == 1 else "b"
        if 0 <= x <= COORD_MAX and 0 <= y <= COORD_MAX:
            rooms.move(conn, x, y, None, 0.1)
            expected[member_id] = Position(member_id, x, y)
        else:
            with pytest.raises(BadRequest):
                rooms.move(conn, x, y, None, 0.1)
    out = rooms.tick(0.2)
    if not expected:
        assert out == Out()
    else:
        ((conns, batch),) = out.clients
        assert conns == [1, 2]
        assert isinstance(batch, Moves)
        assert sorted(batch.moves, key=lambda p: p.id) == sorted(
            expected.values(), key=lambda p: p.id
        )
