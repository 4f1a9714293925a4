"""Rooms and members per edge are bounded: a join beyond either cap gets edge_full."""

from __future__ import annotations

import pytest

from edge_node.cursors.rooms import EdgeRooms
from shared.errors import Unavailable
from shared.protocol import Evict, Join


def join(rooms: EdgeRooms, conn: int, room: str, member: str, session: str | None = None) -> None:
    rooms.join(conn, Join(room, "Ada", "#1a2b3c", session), member, 0.0)


def test_a_join_that_would_open_one_room_too_many_gets_edge_full() -> None:
    rooms = EdgeRooms("syd", max_rooms=2)
    join(rooms, 1, "a", "m1")
    join(rooms, 2, "b", "m2")
    with pytest.raises(Unavailable) as info:
        join(rooms, 3, "c", "m3")
    assert info.value.code == "edge_full"
    join(rooms, 3, "a", "m3")  # an existing room still takes members
    assert rooms.room_count() == 2
    rooms.leave(2, "b")
    join(rooms, 4, "c", "m4")  # a room freed: a new one may open


def test_members_across_all_rooms_are_capped() -> None:
    rooms = EdgeRooms("syd", max_local_members=3, max_rooms_per_conn=4)
    join(rooms, 1, "a", "m1")
    join(rooms, 1, "b", "m1b")
    join(rooms, 2, "a", "m2")
    with pytest.raises(Unavailable) as info:
        join(rooms, 3, "c", "m3")
    assert info.value.code == "edge_full"
    assert rooms.local_member_count() == 3
    rooms.disconnect(1)
    assert rooms.local_member_count() == 1
    join(rooms, 3, "c", "m3")
    assert rooms.room_count() == 2  # a (m2) and c (m3); the refused join left nothing behind


def test_the_same_session_rejoining_at_the_cap_replaces_itself() -> None:
    rooms = EdgeRooms("syd", max_local_members=1)
    join(rooms, 1, "a", "m1", session="s")
    out = rooms.join(2, Join("a", "Ada", "#1a2b3c", "s"), "m1", 1.0)  # a reconnect
    assert any(getattr(message, "reason", None) == "evicted" for _, message in out.clients)
    assert rooms.local_member_count() == 1


def test_the_member_count_follows_timeouts_and_evictions() -> None:
    rooms = EdgeRooms("syd", presence_timeout_s=1.0)
    join(rooms, 1, "a", "m1")
    join(rooms, 2, "a", "m2")
    rooms.from_core(Evict("a", "m2"))
    assert rooms.local_member_count() == 1
    rooms.tick(5.0)
    assert rooms.local_member_count() == 0 and rooms.room_count() == 0
