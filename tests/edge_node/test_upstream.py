"""The edge's link shell fed frames directly (no socket): compaction snapshots never make it
answer from older data; and, with a link the test holds, every breaker trial ends, poison
searches are dropped alone, version waiters leave, and cursor messages are bounded."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from edge_node.cursors.feature import SENT_AT_PER_ROOM, Cursors
from edge_node.cursors.rooms import STRICT, Out, _Room
from edge_node.metrics import EdgeMetrics
from edge_node.service import Service
from edge_node.settings import EdgeSettings
from edge_node.upstream import MAX_POSTED, UP, Upstream
from shared import snapshot
from shared.errors import BadRequest
from shared.protocol import (
    Delta,
    Hello,
    Left,
    Message,
    Moves,
    MovesBatch,
    Position,
    RoomSync,
    Searches,
    SearchItem,
    Snapshot,
    Sync,
    Synced,
    TermChange,
    decode,
    encode,
)
from shared.snapshot import Entry
from shared.tasks import spawn, stop
from tests.helpers.waiting import eventually

EPOCH = "db-1"


def snapshot_frame(version: int, terms: dict[str, int], epoch: str = EPOCH) -> bytes:
    entries = [Entry(k, k.title(), w) for k, w in sorted(terms.items())]
    blob = snapshot.build(entries, version=version, hot={}, hot_threshold=64, depth=20)
    return encode(Snapshot(version, blob, epoch))


def delta_frame(start: int, key: str, weight: int) -> bytes:
    return encode(Delta(start, start + 1, [TermChange(key, key.title(), weight)]))


def upstream() -> Upstream:
    settings = EdgeSettings(core_url="http://127.0.0.1:1", region="syd")
    return Upstream(settings, "token", EdgeMetrics("syd"))


async def test_an_older_compaction_snapshot_waits_until_it_has_caught_up() -> None:
    """While the deltas after a compaction snapshot replay, the edge keeps serving the newer
    index it had; it swaps once the new one reaches the same version."""
    up = upstream()
    await up._receive(snapshot_frame(3, {"paris": 10}))
    await up._receive(delta_frame(3, "lyon", 20))
    await up._receive(delta_frame(4, "nice", 30))
    served = up.index
    assert up.version == 5

    await up._receive(snapshot_frame(3, {"paris": 10}))  # compaction at 3, deltas follow
    assert up.index is served and up.version == 5
    await up._receive(delta_frame(3, "lyon", 20))
    assert up.index is served and up.version == 5
    await up._receive(delta_frame(4, "nice", 30))
    assert up.index is not served and up.version == 5
    assert up.index is not None
    assert [e.term for e in up.index.query("", 3)] == ["Nice", "Lyon", "Paris"]


async def test_a_snapshot_from_another_database_replaces_the_index_at_once() -> None:
    """A snapshot of another epoch is not a compaction: it is served at once, even if older."""
    up = upstream()
    await up._receive(snapshot_frame(7, {"paris": 10}))
    await up._receive(snapshot_frame(2, {"elsewhere": 5}, epoch="db-2"))
    assert up.version == 2
    assert up.index is not None and [e.term for e in up.index.query("", 5)] == ["Elsewhere"]


# --- with a link that the test holds (a stand-in for the websocket to the core) ------------


class HeldLink:
    """Records what the edge sends; answers ``sync`` with ``head`` when ``answer`` is set."""

    def __init__(self, up: Upstream, head: int | None = None) -> None:
        self.up = up
        self.head = head
        self.sent: list[Message] = []
        self.tasks: set[asyncio.Task[None]] = set()

    async def send(self, frame: bytes) -> None:
        message = decode(frame)
        self.sent.append(message)
        if isinstance(message, Sync) and self.head is not None:
            task = asyncio.create_task(self.up._receive(encode(Synced(message.id, self.head))))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)


def linked(head: int | None = None, **settings: object) -> tuple[Upstream, HeldLink]:
    up = Upstream(
        EdgeSettings(core_url="http://127.0.0.1:1", region="syd", **settings),  # type: ignore[arg-type]
        "token",
        EdgeMetrics("syd"),
    )
    link = HeldLink(up, head)
    up._ws = link  # type: ignore[assignment]
    up._set_state(UP)
    return up, link


async def test_a_cancelled_half_open_trial_is_released() -> None:
    """The strict read holding the trial is cancelled (its client left): the breaker is not
    jammed, the next strict read is the trial."""
    up, link = linked(breaker_failures=1, breaker_reset_s=0.0)
    up.breaker.failure(up._clock())  # open; half-open at once (reset 0 s)
    reader = asyncio.create_task(up.sync(30))
    await eventually(lambda: _true(any(isinstance(m, Sync) for m in link.sent)), 5, "trial sent")
    assert not up.breaker.allow(up._clock())  # the trial is out
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader
    assert up.breaker.allow(up._clock())  # released: this call is the next trial


async def test_a_trial_that_raises_anything_counts_as_a_failure() -> None:
    """Not only Unavailable: any error ends the trial (the breaker opens again, not jams)."""
    up, link = linked(breaker_failures=1, breaker_reset_s=0.0)

    async def broken(frame: bytes) -> None:
        raise RuntimeError("the socket broke oddly")

    link.send = broken  # type: ignore[method-assign]
    up.breaker.failure(up._clock())
    with pytest.raises(RuntimeError):
        await up.sync(30)
    assert up.breaker.allow(up._clock())  # open again with reset 0 s: a new trial may go


async def test_a_poison_search_is_dropped_alone_and_the_rest_flows() -> None:
    """Finding 2: an id the link cannot encode used to wedge every later search. It is
    dropped alone (its client hears ``rejected``), the others are sent."""
    up, link = linked()
    up.outbox.add(SearchItem("ok-1", "paris"))
    up.outbox.add(SearchItem("\udfff-1", "paris"))
    up.outbox.add(SearchItem("ok-2", "lyon"))
    poisoned = asyncio.create_task(up.commit("\udfff-1", 30))
    sender = asyncio.create_task(up._send_searches())
    try:
        with pytest.raises(BadRequest) as refused:
            await poisoned
        assert refused.value.code == "rejected"
        await eventually(lambda: _true(link.sent), 5, "searches sent")
        sent = [s.id for m in link.sent if isinstance(m, Searches) for s in m.searches]
        assert sent == ["ok-1", "ok-2"]
        assert "\udfff-1" not in up.outbox and len(up.outbox) == 2  # in flight
        dropped = up.metrics.registry.get_sample_value(
            "lightcone_items_dropped_total", {"where": "outbox"}
        )
        assert dropped == 1
        up.outbox.add(SearchItem("ok-3", "nice"))  # later searches still go out
        up._wake.set()
        await eventually(
            lambda: _true(
                any(
                    s.id == "ok-3" for m in link.sent if isinstance(m, Searches) for s in m.searches
                )
            ),
            5,
            "a later search sent",
        )
    finally:
        await stop(sender)


async def test_min_version_waiters_leave_on_timeout() -> None:
    """Finding 5: 10,000 reads waiting for a version that never comes leave no waiter, so a
    delta costs what it did before."""
    up = upstream()
    await up._receive(snapshot_frame(3, {"paris": 10}))
    for _ in range(10_000):
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0):
                await up.wait_version(10**12)
    assert up.version_waiters == 0
    waiting = asyncio.create_task(up.wait_version(4))
    await asyncio.sleep(0)
    assert up.version_waiters == 1
    await up._receive(delta_frame(3, "lyon", 20))
    await waiting
    assert up.version_waiters == 0


async def test_a_min_version_beyond_the_core_is_refused_after_one_sync() -> None:
    """A tolerant read with a huge min_version: one sync, then 400 min_version_ahead, at once
    (no wait for a delta that cannot come); nothing is left waiting."""
    up, link = linked(head=3, min_version_wait_ms=60_000)
    await up._receive(snapshot_frame(3, {"paris": 10}))
    service = Service(up.settings, up)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(1000):
        with pytest.raises(BadRequest) as ahead:
            await service.suggest("pa", 5, min_version=10**12)
        assert ahead.value.code == "min_version_ahead"
    assert loop.time() - started < 30  # never the 60 s wait
    assert sum(isinstance(m, Sync) for m in link.sent) == 1000
    assert up.version_waiters == 0


async def test_cursor_messages_beyond_the_bound_are_dropped_then_rooms_announced() -> None:
    """A slow link: at most MAX_POSTED cursor messages wait; the excess is dropped and
    counted, and once the queue drains the edge sends room_sync so the core heals."""
    up, link = linked()
    Cursors(up.settings, up, up.metrics)  # the listener that announces the rooms
    for n in range(MAX_POSTED + 50):
        up.post(Left("r", f"m{n}", "leave"))
    dropped = up.metrics.registry.get_sample_value("lightcone_link_posts_dropped_total")
    assert dropped == 50
    sender = asyncio.create_task(up._send_posted())
    try:
        await eventually(
            lambda: _true(any(isinstance(m, RoomSync) for m in link.sent)), 5, "room_sync sent"
        )
        assert sum(isinstance(m, Left) for m in link.sent) == MAX_POSTED
        assert isinstance(link.sent[-1], RoomSync)
    finally:
        await stop(sender)


async def _true(value: object) -> bool:
    return bool(value)


async def test_strict_send_times_are_bounded_per_room_and_forgotten_with_the_room() -> None:
    """Finding 8: strict ``_sent_at`` kept an entry per room for ever."""
    up, link = linked()
    cursors = Cursors(up.settings, up, up.metrics)
    cursors.rooms.mode = STRICT
    for _ in range(500):
        cursors.deliver(Out(core=[Moves("gone", [Position("m1", 1, 1)])]))
    assert len(cursors._sent_at["gone"]) == SENT_AT_PER_ROOM
    cursors._forget_gone_rooms()  # the tick does this: "gone" has no local member
    assert cursors._sent_at == {}


async def test_one_tick_goes_up_as_one_moves_batch() -> None:
    """The rooms' moves of one delivery are posted as one message (one link frame)."""
    up, link = linked()
    cursors = Cursors(up.settings, up, up.metrics)
    moves = [Moves(f"r{n}", [Position(f"m{n}", n, n)]) for n in range(300)]
    cursors.deliver(Out(core=list(moves)))
    sender = asyncio.create_task(up._send_posted())
    try:
        await eventually(lambda: _true(link.sent), 5, "the batch sent")
        assert link.sent == [MovesBatch(moves)]
    finally:
        await stop(sender)


# --- finding 11: the link and the tick survive a crash --------------------------------------


class BrokenListener:
    """A cursor shell with a bug: it raises when the link comes up."""

    def __init__(self) -> None:
        self.calls = 0

    def link_changed(self, up: bool) -> list[Message]:
        self.calls += up
        if up:
            raise RuntimeError("a bug in the cursor shell")
        return []

    def announce(self) -> list[Message]:
        return []

    def flags_changed(self, flags: dict[str, bool]) -> None:
        pass

    def relayed(self, message: Message) -> None:
        pass


async def test_the_link_loop_is_restarted_after_a_crash() -> None:
    """``Upstream.run`` used to die for good on any unexpected exception; supervised, it is
    logged, counted and restarted, and dials the core again."""
    hellos: list[Message] = []

    async def core(ws: ServerConnection) -> None:  # a stand-in core: it only reads
        with contextlib.suppress(ConnectionClosed):
            async for frame in ws:
                hellos.append(decode(frame if isinstance(frame, bytes) else frame.encode()))

    async with serve(core, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        settings = EdgeSettings(core_url=f"http://127.0.0.1:{port}", region="syd")
        up = Upstream(settings, "token", EdgeMetrics("syd"), jitter=lambda: 0.0)
        up.listener = listener = BrokenListener()
        task = spawn("upstream", up.run, up.metrics.task_crashes)
        try:
            await eventually(lambda: _true(listener.calls >= 3), 10, "three sessions")
            crashes = up.metrics.registry.get_sample_value(
                "lightcone_task_crashes_total", {"task": "upstream"}
            )
            assert crashes is not None and crashes >= 2
            assert not task.done()
            assert sum(isinstance(m, Hello) for m in hellos) >= 3
        finally:
            await stop(task)


async def test_the_cursor_tick_is_restarted_after_a_crash() -> None:
    """``Cursors.run`` too: a tick that raises is counted and the ticks go on."""
    up, _ = linked(tick_ms=1)
    cursors = Cursors(up.settings, up, up.metrics)
    # A bug's state: an awaiting room without a start time (the tick raises TypeError).
    cursors.rooms._rooms["broken"] = _Room(awaiting={99}, awaiting_since=None)  # type: ignore[arg-type]
    task = spawn("cursor_ticks", cursors.run, up.metrics.task_crashes)
    registry = up.metrics.registry

    def ticks() -> float:
        return registry.get_sample_value("lightcone_cursor_tick_seconds_count") or 0.0

    try:
        await eventually(
            lambda: _true(
                registry.get_sample_value("lightcone_task_crashes_total", {"task": "cursor_ticks"})
            ),
            10,
            "a crash counted",
        )
        del cursors.rooms._rooms["broken"]
        before = ticks()
        await eventually(lambda: _true(ticks() > before + 5), 10, "ticks again")
        assert not task.done()
    finally:
        await stop(task)
