"""Frames an edge sends up: every one within the budget, whatever the number of items, and an
item that cannot be encoded dropped alone."""

from __future__ import annotations

import edge_node.cursors.feature
import edge_node.suggest.feature  # noqa: F401
from edge_node.frames import frames
from shared.protocol import (
    MAX_LINK_MESSAGE_BYTES,
    MAX_UP_FRAME_BYTES,
    Heartbeat,
    Member,
    Moves,
    MovesBatch,
    Position,
    RoomSync,
    Searches,
    SearchItem,
    decode,
    encode,
)

WIDE = "\U0001d538"  # 4 bytes in UTF-8


def member(n: int) -> Member:
    return Member(f"m{n:012x}", f"{n:04d}" + WIDE * 28, "#3366ff", "syd")


def big_sync(members: int = 600, rooms_each: int = 4) -> RoomSync:
    return RoomSync(
        {
            f"{n:04d}-{r}-" + WIDE * 57: [member(n)]
            for n in range(members)
            for r in range(rooms_each)
        }
    )


def test_the_budget_is_below_the_core_limit() -> None:
    assert MAX_UP_FRAME_BYTES < MAX_LINK_MESSAGE_BYTES


def test_a_small_message_is_one_frame() -> None:
    """The common case: one encode, the same bytes as encode()."""
    assert frames(Heartbeat(3)) == ([encode(Heartbeat(3))], [])
    sync = RoomSync({"lobby": [member(1)]})
    assert frames(sync) == ([encode(sync)], [])


def test_a_big_room_sync_is_split_in_numbered_parts_under_the_budget() -> None:
    """~600 members × 4 rooms (over 1 MiB in one frame): parts 0..n-1, the last final, each
    under the budget, together listing every member once."""
    sync = big_sync()
    assert len(encode(sync)) > MAX_UP_FRAME_BYTES
    sent, dropped = frames(sync)
    assert dropped == [] and len(sent) > 1
    assert all(len(frame) <= MAX_UP_FRAME_BYTES for frame in sent)
    parts = [decode(frame) for frame in sent]
    assert all(isinstance(p, RoomSync) for p in parts)
    assert [p.part for p in parts if isinstance(p, RoomSync)] == list(range(len(parts)))
    assert [p.final for p in parts if isinstance(p, RoomSync)] == [False] * (len(parts) - 1) + [
        True
    ]
    listed = [
        (room, m)
        for p in parts
        if isinstance(p, RoomSync)
        for room, ms in p.rooms.items()
        for m in ms
    ]
    assert sorted(listed, key=repr) == sorted(
        [(room, m) for room, ms in sync.rooms.items() for m in ms], key=repr
    )


def test_one_room_with_many_members_is_split_too() -> None:
    """A room's members may be spread over several parts."""
    sync = RoomSync({"hall": [member(n) for n in range(3000)]})
    sent, dropped = frames(sync, max_bytes=64 << 10)
    assert dropped == [] and len(sent) > 1
    assert all(len(frame) <= 64 << 10 for frame in sent)
    total = sum(len(p.rooms["hall"]) for p in map(decode, sent) if isinstance(p, RoomSync))
    assert total == 3000


def test_an_empty_room_sync_is_still_sent() -> None:
    """No members is news too: it tells the core to drop what it had for this edge."""
    assert frames(RoomSync({})) == ([encode(RoomSync({}))], [])


def test_searches_and_moves_batches_are_split_under_the_budget() -> None:
    searches = Searches([SearchItem(f"id-{n}", WIDE * 100) for n in range(5000)])
    sent, dropped = frames(searches)
    assert dropped == [] and len(sent) > 1
    assert all(len(f) <= MAX_UP_FRAME_BYTES for f in sent)
    assert sum(len(s.searches) for s in map(decode, sent) if isinstance(s, Searches)) == 5000

    batch = MovesBatch(
        [
            Moves(f"room-{r}" + WIDE * 50, [Position(f"m{n}", n, n) for n in range(200)])
            for r in range(300)
        ]
    )
    sent, dropped = frames(batch)
    assert dropped == [] and len(sent) > 1
    assert all(len(f) <= MAX_UP_FRAME_BYTES for f in sent)


def test_an_unencodable_item_is_dropped_alone() -> None:
    """A lone surrogate (finding 2) or an out-of-range number poisons only its own item."""
    batch = [SearchItem(f"s{n}", "paris") for n in range(10)]
    batch[3] = SearchItem("\udfff-1", "paris")
    batch[7] = SearchItem("s7", "x\ud800")
    sent, dropped = frames(Searches(batch))
    assert [d.id for d in dropped] == ["\udfff-1", "s7"]
    kept = [s.id for f in sent for s in getattr(decode(f), "searches", [])]
    assert kept == [f"s{n}" for n in range(10) if n not in (3, 7)]

    moves = MovesBatch([Moves("a", []), Moves("b", [Position("m", 2**70, 0)]), Moves("c", [])])
    sent, dropped = frames(moves)
    assert dropped == [Moves("b", [Position("m", 2**70, 0)])]
    assert [m.room for f in sent for m in getattr(decode(f), "batches", [])] == ["a", "c"]

    sync = RoomSync({"ok": [member(1)], "bad\udfff": [member(2)]})
    sent, dropped = frames(sync)
    assert dropped == [("bad\udfff", member(2))]
    assert [decode(f) for f in sent] == [RoomSync({"ok": [member(1)]})]


def test_a_single_message_that_cannot_be_sent_is_dropped() -> None:
    assert frames(Heartbeat(2**70)) == ([], [Heartbeat(2**70)])
