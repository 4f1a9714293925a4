"""The broker against a real redis-server: two :class:`Broker` instances (two core nodes) on
one Redis, in one process; and its pure parts (the envelope, the peers' liveness)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import redis.asyncio as aioredis

from core_region.broker import (
    GONE_AFTER_BEATS,
    MAX_MESSAGE_BYTES,
    MAX_NODES,
    MAX_QUEUED_BYTES,
    Broker,
    Peers,
    envelope,
    open_envelope,
)
from core_region.metrics import CoreMetrics
from shared.errors import ProtocolError
from shared.protocol import pack
from tests.helpers.proxy_thread import ProxyThread
from tests.helpers.redis import Server
from tests.helpers.waiting import eventually

BEAT_S = 0.1


class Inbox:
    """What one broker's handlers were handed."""

    def __init__(self) -> None:
        self.plain: list[tuple[str, bytes]] = []
        self.ordered: list[tuple[str, int, bytes]] = []
        self.ups = 0
        self.downs = 0
        self.nodes: list[tuple[str, bool]] = []

    def attach(self, broker: Broker) -> None:
        broker.on("chat", lambda sender, payload: self.plain.append((sender, payload)))
        broker.on_ordered("room", lambda s, n, payload: self.ordered.append((s, n, payload)))
        broker.on_up(self._up)
        broker.on_down(self._down)
        broker.on_node(lambda node, alive: self.nodes.append((node, alive)))

    def _up(self) -> None:
        self.ups += 1

    def _down(self) -> None:
        self.downs += 1


@asynccontextmanager
async def brokers(url: str, count: int = 2) -> AsyncIterator[list[tuple[Broker, Inbox]]]:
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    made: list[tuple[Broker, Inbox]] = []
    try:
        for n in range(count):
            broker = Broker(
                url, f"node-{n}", CoreMetrics(), namespace=namespace, heartbeat_s=BEAT_S
            )
            inbox = Inbox()
            inbox.attach(broker)
            await broker.start()
            made.append((broker, inbox))
        yield made
    finally:
        for broker, _ in made:
            await broker.close()


def dropped(broker: Broker, where: str = "broker") -> float:
    value = broker.metrics.registry.get_sample_value(
        "lightcone_items_dropped_total", {"where": where}
    )
    return value or 0.0


async def until(check: Callable[[], object], what: str, timeout_s: float = 5) -> None:
    async def probe() -> object:
        return check()

    await eventually(probe, timeout_s, what)


async def test_a_message_reaches_the_other_node_and_not_its_sender(redis_url: str) -> None:
    async with brokers(redis_url) as [(a, inbox_a), (b, inbox_b)]:
        assert a.up and b.up
        await until(lambda: ("node-0", True) in inbox_b.nodes, "b hears a's alive")
        for n in range(5):
            a.publish("chat", b"hello %d" % n)
        b.publish("chat", b"from b")
        await until(lambda: len(inbox_b.plain) == 5, "a's five messages at b")
        await until(lambda: inbox_a.plain, "b's message at a")
        assert inbox_b.plain == [("node-0", b"hello %d" % n) for n in range(5)]  # in order
        assert inbox_a.plain == [("node-1", b"from b")]  # never its own
        assert a.status() == {"url": redis_url, "up": True, "nodes": 1}


async def test_ordered_messages_come_to_every_node_in_one_numbered_order(redis_url: str) -> None:
    async with brokers(redis_url) as [(a, inbox_a), (b, inbox_b)]:
        for n in range(20):
            (a if n % 2 else b).publish_ordered("room", "seq:r", b"%d" % n)
        await until(lambda: len(inbox_a.ordered) == 20, "20 at a")
        await until(lambda: len(inbox_b.ordered) == 20, "20 at b")
        assert inbox_a.ordered == inbox_b.ordered  # the sender's own included, same order
        assert [n for _, n, _ in inbox_a.ordered] == list(range(1, 21))


async def test_a_hostile_payload_is_dropped_alone(redis_url: str) -> None:
    async with brokers(redis_url, 1) as [(a, inbox)]:
        raw = aioredis.Redis.from_url(redis_url)
        try:
            channel = f"{a.namespace}:chat"
            for junk in (
                b"",
                b"not msgpack at all",
                bytes(8) + b"\xc1",
                bytes(8) + pack({"a": 1}),
                bytes(8) + pack([7, b"x"]),
                bytes(8) + pack(["evil\ud800".encode("utf-8", "surrogatepass"), b"x"]),
                bytes(8) + pack(["n", "a str, not bytes"]),
                envelope("n", b"numbered, on a channel that is not ordered", 5),
                envelope("n", b"x" * (MAX_MESSAGE_BYTES + 1)),
            ):
                await raw.publish(channel, junk)
            await raw.publish(f"{a.namespace}:room", envelope("n", b"unnumbered"))
            await raw.publish(channel, envelope("other", b"fine"))
        finally:
            await raw.aclose()
        await until(lambda: inbox.plain, "the good message after the junk")
        assert inbox.plain == [("other", b"fine")] and inbox.ordered == []
        assert dropped(a) == 10


def test_the_envelope_is_checked_like_the_link() -> None:
    assert open_envelope(envelope("node", b"data", 3)) == (3, "node", b"data")
    for bad in (None, "text", b"short", envelope("", b"x"), envelope("n" * 300, b"x")):
        with pytest.raises(ProtocolError):
            open_envelope(bad)


async def test_redis_lost_and_back_without_a_restart(own_redis: Server) -> None:
    async with brokers(own_redis.url) as [(a, inbox_a), (b, inbox_b)]:
        await until(lambda: ("node-1", True) in inbox_a.nodes, "a hears b")
        own_redis.stop()
        await until(lambda: not a.up and not b.up, "both see Redis lost")
        assert ("node-1", False) in inbox_a.nodes and inbox_a.downs == 1
        a.publish("chat", b"lost")  # never blocks, never raises: dropped and counted
        assert a.metrics.registry.get_sample_value(
            "lightcone_broker_messages_dropped_total", {"reason": "down"}
        )
        own_redis.start()
        await until(lambda: a.up and b.up, "both reconnect", 10)
        assert inbox_a.ups == 1 and inbox_b.ups == 1
        await until(lambda: inbox_a.nodes[-1] == ("node-1", True), "a hears b again")
        a.publish("chat", b"back")
        await until(lambda: inbox_b.plain == [("node-0", b"back")], "a message after")


async def test_a_black_holed_redis_counts_as_lost_and_comes_back(redis_server: Server) -> None:
    """Redis stops answering without a reset (a dead host): nothing, not even a node's own
    ``alive``, comes back for a few heartbeats, so the broker counts as lost; healed, it
    reconnects by itself."""
    hole = ProxyThread("127.0.0.1", redis_server.port, name="to-redis")
    try:
        url = hole.url.replace("http://", "redis://") + "/0"
        async with brokers(url, 1) as [(a, inbox)]:
            assert a.up
            hole.cut()
            await until(lambda: not a.up, "lost", 5)
            assert inbox.downs == 1
            hole.heal()
            await until(lambda: a.up, "back", 10)
            assert inbox.ups == 1
    finally:
        hole.close()


async def test_an_unreachable_redis_at_start_is_dialled_until_it_answers(
    own_redis: Server,
) -> None:
    own_redis.stop()
    async with brokers(own_redis.url, 1) as [(a, inbox)]:
        assert not a.up
        own_redis.start()
        await until(lambda: a.up, "up once Redis answers", 10)
        assert inbox.ups == 1


async def test_the_queue_is_bounded_in_bytes(redis_url: str) -> None:
    async with brokers(redis_url) as [(a, _), (_, inbox)]:
        big = b"x" * MAX_MESSAGE_BYTES
        count = MAX_QUEUED_BYTES // MAX_MESSAGE_BYTES + 4
        for _ in range(count):  # all at once: the sender cannot drain meanwhile
            a.publish("chat", big)
        full = a.metrics.registry.get_sample_value(
            "lightcone_broker_messages_dropped_total", {"reason": "full"}
        )
        assert full is not None and 4 <= full < count
        await until(lambda: len(inbox.plain) == count - full, "the queued ones arrive", 10)


async def test_close_sends_what_is_queued_first(redis_url: str) -> None:
    async with brokers(redis_url, 1) as [(b, inbox)]:
        a = Broker(redis_url, "leaving", CoreMetrics(), namespace=b.namespace, heartbeat_s=BEAT_S)
        await a.start()
        for n in range(100):
            a.publish("chat", b"%d" % n)
        await a.close()
        await until(lambda: len(inbox.plain) == 100, "all 100 before the close")


def test_made_up_senders_cannot_grow_the_peers_without_bound() -> None:
    peers = Peers(3.0)
    for n in range(MAX_NODES):
        peers.heard(f"n{n}", 0.0)
    with pytest.raises(ProtocolError):
        peers.heard("one-more", 0.0)
    assert not peers.heard("n0", 1.0) and len(peers) == MAX_NODES


def test_a_node_silent_for_a_few_heartbeats_is_gone() -> None:
    peers = Peers(GONE_AFTER_BEATS * 1.0)
    assert peers.heard("a", 0.0) and peers.heard("b", 0.0)
    assert not peers.heard("a", 2.0)
    assert peers.expired(3.5) == ["b"] and len(peers) == 1
    assert peers.heard("b", 4.0)  # back: news again
    assert peers.clear() == ["a", "b"] and len(peers) == 0
