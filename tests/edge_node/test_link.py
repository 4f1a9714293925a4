"""The edge's link and its features, fed by a stand-in core over a real websocket: compaction
snapshots never make it answer from older data; every breaker trial ends (a cancelled
reader's flies on to its verdict), poison searches are dropped alone, version waiters leave,
posted messages are bounded, the link loop and the cursor tick survive a crash, and a core
URL's name is dialled at each of its addresses."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

from edge_node.app import FEATURES
from edge_node.breaker import CLOSED
from edge_node.cursors.feature import SENT_AT_PER_ROOM, CursorsFeature
from edge_node.cursors.rooms import Out, _Room
from edge_node.features import Feature
from edge_node.link import MAX_POSTED, UP, Session
from edge_node.metrics import EdgeMetrics
from edge_node.node import EdgeNode
from edge_node.settings import EdgeSettings
from edge_node.suggest.feature import SuggestFeature
from shared import snapshot
from shared.errors import BadRequest
from shared.protocol import (
    STRICT,
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


def node(core_url: str = "http://127.0.0.1:1", **settings: Any) -> EdgeNode:
    edge_settings = EdgeSettings(core_url=core_url, region="syd", **settings)
    return EdgeNode(edge_settings, "token", EdgeMetrics("syd"), FEATURES, jitter=lambda: 0.0)


def suggest_of(edge: EdgeNode) -> SuggestFeature:
    feature = edge.features["suggest"]
    assert isinstance(feature, SuggestFeature)
    return feature


def cursors_of(edge: EdgeNode) -> CursorsFeature:
    feature = edge.features["cursors"]
    assert isinstance(feature, CursorsFeature)
    return feature


async def test_an_older_compaction_snapshot_waits_until_it_has_caught_up() -> None:
    """While the deltas after a compaction snapshot replay, the edge keeps serving the newer
    index it had; it swaps once the new one reaches the same version."""
    edge = node()
    up = suggest_of(edge)
    await edge.link.receive(snapshot_frame(3, {"paris": 10}))
    await edge.link.receive(delta_frame(3, "lyon", 20))
    await edge.link.receive(delta_frame(4, "nice", 30))
    served = up.index
    assert up.version == 5

    await edge.link.receive(snapshot_frame(3, {"paris": 10}))  # compaction at 3, deltas follow
    assert up.index is served and up.version == 5
    await edge.link.receive(delta_frame(3, "lyon", 20))
    assert up.index is served and up.version == 5
    await edge.link.receive(delta_frame(4, "nice", 30))
    assert up.index is not served and up.version == 5
    assert up.index is not None
    assert [e.term for e in up.index.query("", 3)] == ["Nice", "Lyon", "Paris"]


async def test_a_replaced_index_is_let_go_at_once() -> None:
    """Once a new snapshot is served, nothing holds the old one (not the answers cached for
    it): its memory goes back before the next query, not at it."""
    edge = node()
    up = suggest_of(edge)
    await edge.link.receive(snapshot_frame(3, {"paris": 10}))
    assert '"Paris"' in up.suggest_now("pa", 5).http_body()  # cached
    old = weakref.ref(up.index)
    await edge.link.receive(snapshot_frame(4, {"paris": 10, "parma": 5}))
    assert old() is None
    assert '"Parma"' in up.suggest_now("pa", 5).http_body()


async def test_a_snapshot_from_another_database_replaces_the_index_at_once() -> None:
    """A snapshot of another epoch is not a compaction: it is served at once, even if older."""
    edge = node()
    up = suggest_of(edge)
    await edge.link.receive(snapshot_frame(7, {"paris": 10}))
    await edge.link.receive(snapshot_frame(2, {"elsewhere": 5}, epoch="db-2"))
    assert up.version == 2
    assert up.index is not None and [e.term for e in up.index.query("", 5)] == ["Elsewhere"]


# --- with a stand-in core on a real websocket ------------------------------------------------


class StandInCore:
    """Records what edges send; answers ``sync`` with ``head`` when it is set, or, while
    ``hold`` is set, when :meth:`answer` says so."""

    def __init__(self, head: int | None = None) -> None:
        self.head = head
        self.hold = False
        self.held: list[tuple[ServerConnection, Sync]] = []
        self.received: list[Message] = []
        self.sessions = 0

    async def serve(self, ws: ServerConnection) -> None:
        self.sessions += 1
        with contextlib.suppress(ConnectionClosed):
            async for frame in ws:
                message = decode(frame if isinstance(frame, bytes) else frame.encode())
                self.received.append(message)
                if isinstance(message, Sync) and self.hold:
                    self.held.append((ws, message))
                elif isinstance(message, Sync) and self.head is not None:
                    await ws.send(encode(Synced(message.id, self.head)))

    async def answer(self, most: int | None = None) -> None:
        """Answer the syncs held so far (the ``most`` first ones) with ``head``."""
        assert self.head is not None
        cut = len(self.held) if most is None else most
        held, self.held = self.held[:cut], self.held[cut:]
        for ws, sync in held:
            await ws.send(encode(Synced(sync.id, self.head)))

    def sent(self, kind: type[Message]) -> list[Any]:
        return [m for m in self.received if isinstance(m, kind)]


@contextlib.asynccontextmanager
async def linked(
    head: int | None = None, **settings: Any
) -> AsyncIterator[tuple[EdgeNode, StandInCore]]:
    """An edge whose link is up to a stand-in core (the features' senders running)."""
    core = StandInCore(head)
    async with serve(core.serve, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        edge = node(f"http://127.0.0.1:{port}", **settings)
        task = spawn("link", edge.link.run, edge.metrics.task_crashes)
        try:
            await eventually(lambda: _true(edge.link.state == UP), 10, "the link up")
            await eventually(lambda: _true(core.sent(RoomSync)), 10, "the rooms announced")
            yield edge, core
        finally:
            await stop(task)


async def test_a_cancelled_half_open_trial_flies_on_to_its_verdict() -> None:
    """The strict read holding the trial is cancelled (its client left): the trial, a sync
    others may share, is not cancelled with it; the core's answer ends it and closes the
    breaker (unanswered, it would end at its deadline: tests/edge_node/test_shared_syncs.py)."""
    async with linked(head=3, breaker_failures=1, breaker_reset_s=0.0) as (edge, core):
        link = edge.link
        await link.receive(snapshot_frame(3, {"paris": 10}))
        core.hold = True
        link.breaker.failure(link.now())  # open; half-open at once (reset 0 s)
        reader = asyncio.create_task(link.sync("suggest", 30))
        await eventually(lambda: _true(core.held), 5, "trial sent")
        assert not link.breaker.allow(link.now())  # the trial is out
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        assert not link.breaker.allow(link.now())  # still out: it flies on
        await core.answer()
        await eventually(
            lambda: _true(link.breaker.state(link.now()) == CLOSED), 5, "the trial's verdict"
        )


async def test_a_trial_that_raises_anything_counts_as_a_failure() -> None:
    """Not only Unavailable: any error ends the trial (the breaker opens again, not jams)."""
    async with linked(breaker_failures=1, breaker_reset_s=0.0) as (edge, _):
        link = edge.link

        async def broken(frame: bytes) -> None:
            raise RuntimeError("the socket broke oddly")

        link.send_frame = broken  # type: ignore[method-assign]
        link.breaker.failure(link.now())
        with pytest.raises(RuntimeError):
            await link.sync("suggest", 30)
        assert link.breaker.allow(link.now())  # open again with reset 0 s: a new trial may go


async def test_a_poison_search_is_dropped_alone_and_the_rest_flows() -> None:
    """Finding 2: an id the link cannot encode used to wedge every later search. It is
    dropped alone (its client hears ``rejected``), the others are sent."""
    async with linked() as (edge, core):
        up = suggest_of(edge)
        up.outbox.add(SearchItem("ok-1", "paris"))
        up.outbox.add(SearchItem("\udfff-1", "paris"))
        up.outbox.add(SearchItem("ok-2", "lyon"))
        with pytest.raises(BadRequest) as refused:
            await up.commit("\udfff-1", 30)
        assert refused.value.code == "rejected"
        await eventually(lambda: _true(core.sent(Searches)), 5, "searches sent")
        sent = [s.id for m in core.sent(Searches) for s in m.searches]
        assert sent == ["ok-1", "ok-2"]
        assert "\udfff-1" not in up.outbox and len(up.outbox) == 2  # in flight
        dropped = edge.metrics.registry.get_sample_value(
            "lightcone_items_dropped_total", {"where": "outbox"}
        )
        assert dropped == 1
        up.outbox.add(SearchItem("ok-3", "nice"))  # later searches still go out
        later = asyncio.create_task(up.commit("ok-3", 30))  # wakes the sender
        await eventually(
            lambda: _true(any(s.id == "ok-3" for m in core.sent(Searches) for s in m.searches)),
            5,
            "a later search sent",
        )
        later.cancel()


async def test_min_version_waiters_leave_on_timeout() -> None:
    """Finding 5: 10,000 reads waiting for a version that never comes leave no waiter, so a
    delta costs what it did before."""
    edge = node()
    link = edge.link
    await link.receive(snapshot_frame(3, {"paris": 10}))
    for _ in range(10_000):
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0):
                await link.wait_version("suggest", 10**12)
    assert link.version_waiters("suggest") == 0
    waiting = asyncio.create_task(link.wait_version("suggest", 4))
    await asyncio.sleep(0)
    assert link.version_waiters("suggest") == 1
    await link.receive(delta_frame(3, "lyon", 20))
    await waiting
    assert link.version_waiters("suggest") == 0


async def test_a_min_version_beyond_the_core_is_refused_after_one_sync() -> None:
    """A tolerant read with a huge min_version: one sync, then 400 min_version_ahead, at once
    (no wait for a delta that cannot come); nothing is left waiting."""
    async with linked(head=3, min_version_wait_ms=60_000) as (edge, core):
        await edge.link.receive(snapshot_frame(3, {"paris": 10}))
        service = suggest_of(edge)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in range(1000):
            with pytest.raises(BadRequest) as ahead:
                await service.suggest("pa", 5, min_version=10**12)
            assert ahead.value.code == "min_version_ahead"
        assert loop.time() - started < 30  # never the 60 s wait
        assert len(core.sent(Sync)) == 1000
        assert edge.link.version_waiters("suggest") == 0


async def test_cursor_messages_beyond_the_bound_are_dropped_then_rooms_announced() -> None:
    """A slow link: at most MAX_POSTED cursor messages wait; the excess is dropped and
    counted, and once the queue drains the edge sends room_sync so the core heals."""
    async with linked() as (edge, core):
        cursors = cursors_of(edge)  # the feature that announces its rooms again
        core.received.clear()
        for n in range(MAX_POSTED + 50):  # no await: the sender cannot run meanwhile
            edge.link.post(Left("r", f"m{n}", "leave"), cursors)
        dropped = edge.metrics.registry.get_sample_value("lightcone_link_posts_dropped_total")
        assert dropped == 50
        await eventually(lambda: _true(core.sent(RoomSync)), 5, "room_sync sent")
        assert len(core.sent(Left)) == MAX_POSTED
        assert isinstance(core.received[-1], RoomSync)


async def _true(value: object) -> bool:
    return bool(value)


async def test_strict_send_times_are_bounded_per_room_and_forgotten_with_the_room() -> None:
    """Finding 8: strict ``_sent_at`` kept an entry per room for ever."""
    cursors = cursors_of(node())
    cursors.rooms.mode = STRICT
    for _ in range(500):
        cursors.deliver(Out(core=[Moves("gone", [Position("m1", 1, 1)])]))
    assert len(cursors._sent_at["gone"]) == SENT_AT_PER_ROOM
    cursors._forget_gone_rooms()  # the tick does this: "gone" has no local member
    assert cursors._sent_at == {}


async def test_one_tick_goes_up_as_one_moves_batch() -> None:
    """The rooms' moves of one delivery are posted as one message (one link frame)."""
    async with linked() as (edge, core):
        cursors = cursors_of(edge)
        core.received.clear()
        moves = [Moves(f"r{n}", [Position(f"m{n}", n, n)]) for n in range(300)]
        cursors.deliver(Out(core=list(moves)))
        await eventually(lambda: _true(core.sent(MovesBatch)), 5, "the batch sent")
        assert core.sent(MovesBatch) == [MovesBatch(moves)]
        assert not core.sent(Moves)


# --- finding 11: the link and the tick survive a crash --------------------------------------


class Broken(Feature):
    """A feature with a bug: it raises when the link comes up."""

    name = "broken"

    def __init__(self, edge: EdgeNode) -> None:
        super().__init__(edge)
        self.calls = 0

    def link_up(self, session: Session) -> None:
        self.calls += 1
        raise RuntimeError("a bug in a feature")


async def test_the_link_loop_is_restarted_after_a_crash() -> None:
    """The link loop used to die for good on any unexpected exception; supervised, it is
    logged, counted and restarted, and dials the core again."""
    core = StandInCore()
    async with serve(core.serve, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        settings = EdgeSettings(core_url=f"http://127.0.0.1:{port}", region="syd")
        edge = EdgeNode(settings, "token", EdgeMetrics("syd"), [Broken], jitter=lambda: 0.0)
        broken = edge.features["broken"]
        assert isinstance(broken, Broken)
        task = spawn("link", edge.link.run, edge.metrics.task_crashes)
        try:
            await eventually(lambda: _true(broken.calls >= 3), 10, "three sessions")
            crashes = edge.metrics.registry.get_sample_value(
                "lightcone_task_crashes_total", {"task": "link"}
            )
            assert crashes is not None and crashes >= 2
            assert not task.done()
            assert len(core.sent(Hello)) >= 3
        finally:
            await stop(task)


async def test_the_cursor_tick_is_restarted_after_a_crash() -> None:
    """The cursor tick too: a tick that raises is counted and the ticks go on."""
    edge = node(tick_ms=1)
    cursors = cursors_of(edge)
    # A bug's state: an awaiting room without a start time (the tick raises TypeError).
    cursors.rooms._rooms["broken"] = _Room(awaiting={99}, awaiting_since=None)  # type: ignore[arg-type]
    task = spawn("cursor_ticks", cursors.run, edge.metrics.task_crashes)
    registry = edge.metrics.registry

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


async def test_each_address_of_a_name_is_a_candidate_and_the_name_stays_the_host() -> None:
    """LIGHTCONE_CORE_URL with a host name: it is resolved before each dial (by the resolver
    passed in); an address that refuses goes last, the link goes up at the next one, and
    the core sees the name in ``Host``; ``/status`` names the address."""
    core = StandInCore()
    hosts: list[str] = []
    resolved: list[tuple[str, int]] = []

    def record_host(connection: ServerConnection, request: Request) -> None:
        hosts.append(request.headers["Host"])

    def resolve(host: str, port: int) -> list[str]:
        resolved.append((host, port))
        return ["127.0.0.2", "127.0.0.1"]  # nothing listens on the first

    async with serve(core.serve, "127.0.0.1", 0, process_request=record_host) as server:
        port = server.sockets[0].getsockname()[1]
        settings = EdgeSettings(core_url=f"http://cores.test:{port}", region="syd")
        edge = EdgeNode(
            settings, "token", EdgeMetrics("syd"), FEATURES, jitter=lambda: 0.0, resolve=resolve
        )
        task = spawn("link", edge.link.run, edge.metrics.task_crashes)
        try:
            await eventually(lambda: _true(edge.link.state == UP), 10, "the link up")
            assert edge.link.core == f"http://127.0.0.1:{port}"
            assert hosts == [f"cores.test:{port}"]
            assert resolved == [("cores.test", port)] * 2
        finally:
            await stop(task)
