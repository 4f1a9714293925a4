"""The broker: what must cross core nodes that share one store, carried by Redis pub/sub.

A :class:`Broker` connects one core node to Redis (``LIGHTCONE_BROKER``, redis-py's asyncio
client). Features register a handler per channel (:meth:`Broker.on`) and publish
(:meth:`Broker.publish`); a node's own messages are not handed back to it. Channels are
namespaced (``<namespace>:<channel>``, the namespace from ``LIGHTCONE_BROKER_NAMESPACE`` or
the store's identity, :func:`namespace_of`), so two clusters on one Redis never mix: Redis
pub/sub ignores database numbers.

**Ordered channels.** :meth:`Broker.publish_ordered` numbers a message with a counter held in
Redis: one Lua script takes the counter's next value and publishes in the same step, so the
order in which every node receives a channel's messages is the order of their numbers. Its
handlers get every message, the node's own included (:meth:`Broker.on_ordered`): a strict
cursor room relays its moves only as they come back, so every node relays them in one order.

**On Redis.** A message is an 8-byte big-endian number (0: not ordered) and the msgpack array
``[sender node id, payload]``. Decoding is as strict as the link's: anything else (too long,
not msgpack, a sender that is not text, a number on a channel that has none) is dropped alone,
logged and counted in ``lightcone_items_dropped_total{where="broker"}``, as is a message whose
handler raises. Redis is trusted no more than an edge.

**Bounds.** :meth:`Broker.publish` never blocks and never raises: a message goes to a queue of
at most :data:`MAX_QUEUED` messages and :data:`MAX_QUEUED_BYTES`, sent in order by one task in
pipelines of at most :data:`MAX_BATCH`; a message over :data:`MAX_MESSAGE_BYTES`, a full
queue, or Redis being down drops it, counted in
``lightcone_broker_messages_dropped_total{reason}``.

**Liveness.** Every node publishes ``alive`` each heartbeat (``LIGHTCONE_HEARTBEAT_S``); a
node not heard from for :data:`GONE_AFTER_BEATS` heartbeats counts as gone
(:meth:`Broker.on_node`). The node's own ``alive`` coming back proves the round trip: when
nothing at all arrives for that long, or a command fails, Redis counts as down: the
connection is dropped and dialled again after a jittered exponential backoff
(:data:`RETRY_MIN_S` .. :data:`RETRY_MAX_S`), without end. When it is up again the
:meth:`Broker.on_up` callbacks run (nodes resync). Redis unreachable at start: the node starts
all the same (a warning names the URL without its password) and keeps dialling; until then it
behaves as if it were alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from core_region.db.postgres import redacted
from core_region.metrics import CoreMetrics
from shared.errors import ProtocolError
from shared.protocol import MAX_LINK_MESSAGE_BYTES, pack, unpack
from shared.tasks import backoff_s, spawn, stop
from shared.text import is_text

logger = logging.getLogger(__name__)

Handler = Callable[[str, bytes], None]
OrderedHandler = Callable[[str, int, bytes], None]

MAX_QUEUED = 10_000
"""Messages waiting to be sent; one more is dropped (``reason="full"``): a Redis slower than
the node's traffic costs messages, never the node's memory."""

MAX_QUEUED_BYTES = 16 << 20
"""Bytes waiting to be sent, at most (``reason="full"`` beyond): with :data:`MAX_QUEUED`, the
queue's memory bound whatever the messages' sizes."""

MAX_BATCH = 256
"""Most messages sent in one pipeline (one round trip to Redis)."""

MAX_MESSAGE_BYTES = MAX_LINK_MESSAGE_BYTES
"""Largest payload published or accepted: what a core accepts from an edge in one message."""

MAX_NODE_ID_CHARS = 256
"""Longest sender id accepted (a node's id is ``host:pid``)."""

MAX_NODES = 64
"""Other nodes tracked at once; a message from one more is dropped (Redis is trusted no
more than an edge: a flood of made-up senders cannot grow the node's memory)."""

GONE_AFTER_BEATS = 3
"""Heartbeats without a word from a node (or, for Redis itself, from any node, this one's own
``alive`` included) after which it counts as gone."""

RETRY_MIN_S = 0.1
"""First delay cap before dialling Redis again (doubles per failure in a row, full jitter)."""

RETRY_MAX_S = 2.0
"""Longest delay between two dials of Redis."""

TIMEOUT_S = 2.0
"""Deadline of a connection attempt and of each command."""

ORDER_TTL_S = 24 * 3600
"""An ordered channel's counter expires after this long without a message (Redis memory
stays bounded by the live rooms); numbering then starts again at 1."""

ALIVE = "alive"
"""The broker's own channel: each node's heartbeat."""

_HEADER = 8

_ORDERED_LUA = """
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', KEYS[2], struct.pack('>I8', n) .. ARGV[1])
return n
"""
"""Number and publish in one step: the publication order is the numbering order."""


def namespace_of(store_where: str) -> str:
    """The default namespace of a store's nodes: a digest of its location (URL without
    password, or SQLite file), the same for every node that names the store alike."""
    return "lightcone:" + hashlib.sha256(store_where.encode()).hexdigest()[:16]


def envelope(sender: str, payload: bytes, seq: int = 0) -> bytes:
    """A message as it travels on Redis (module doc); ``seq`` 0: not ordered."""
    return seq.to_bytes(_HEADER, "big") + _body(sender, payload)


def _body(sender: str, payload: bytes) -> bytes:
    """The envelope without its number (which the ordering script adds in Redis)."""
    return pack([sender, payload])


def open_envelope(data: Any) -> tuple[int, str, bytes]:
    """``(seq, sender, payload)`` of a message read from Redis.

    Raises:
        ProtocolError: it is not a message of :func:`envelope`'s form within the bounds.
    """
    if not isinstance(data, bytes) or not _HEADER < len(data) <= MAX_MESSAGE_BYTES + 1024:
        raise ProtocolError("a broker message is 9 bytes to the size bound")
    body = unpack(data[_HEADER:])
    if not isinstance(body, list) or len(body) != 2:
        raise ProtocolError("a broker message is [sender, payload]")
    sender, payload = body
    if not isinstance(sender, str) or not 0 < len(sender) <= MAX_NODE_ID_CHARS:
        raise ProtocolError("a broker message's sender is a node id")
    if not is_text(sender):
        raise ProtocolError("a broker message's sender is not text")
    if not isinstance(payload, bytes) or len(payload) > MAX_MESSAGE_BYTES:
        raise ProtocolError("a broker message's payload is bytes within the bound")
    return int.from_bytes(data[:_HEADER], "big"), sender, payload


class Peers:
    """The other nodes heard from lately (pure; ``now`` is monotonic seconds)."""

    def __init__(self, gone_after_s: float) -> None:
        self.gone_after_s = gone_after_s
        self._heard: dict[str, float] = {}

    def heard(self, node: str, now: float) -> bool:
        """Note a word from ``node``; whether it is new (or back after being gone).

        Raises:
            ProtocolError: ``node`` is new and :data:`MAX_NODES` are tracked already.
        """
        new = node not in self._heard
        if new and len(self._heard) >= MAX_NODES:
            raise ProtocolError(f"more than {MAX_NODES} core nodes on the broker")
        self._heard[node] = now
        return new

    def expired(self, now: float) -> list[str]:
        """The nodes silent too long, forgotten (so a word from one again is news)."""
        gone = sorted(n for n, at in self._heard.items() if now - at > self.gone_after_s)
        for node in gone:
            del self._heard[node]
        return gone

    def clear(self) -> list[str]:
        """Forget every node (Redis is down: none can be heard); those it knew."""
        known = sorted(self._heard)
        self._heard.clear()
        return known

    def __len__(self) -> int:
        return len(self._heard)


@dataclass(frozen=True, slots=True)
class _Outgoing:
    channel: str
    data: bytes
    counter: str = ""  # ordered: the key of its counter


class Broker:
    """One node's connection to the broker (module doc)."""

    def __init__(
        self,
        url: str,
        node_id: str,
        metrics: CoreMetrics,
        *,
        namespace: str = "lightcone",
        heartbeat_s: float = 1.0,
    ) -> None:
        self.url = url
        self.node_id = node_id
        self.metrics = metrics
        self.namespace = namespace
        self.heartbeat_s = heartbeat_s
        self.peers = Peers(GONE_AFTER_BEATS * heartbeat_s)
        self._handlers: dict[str, Handler] = {}
        self._ordered: dict[str, OrderedHandler] = {}
        self._up_callbacks: list[Callable[[], None]] = []
        self._down_callbacks: list[Callable[[], None]] = []
        self._node_callbacks: list[Callable[[str, bool], None]] = []
        self._queue: asyncio.Queue[_Outgoing] = asyncio.Queue(MAX_QUEUED)
        self._queued_bytes = 0
        self._up = False
        self._started = False
        self._first_try = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._client = aioredis.Redis.from_url(
            url,
            socket_timeout=TIMEOUT_S,
            socket_connect_timeout=TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),
        )
        self._script = self._client.register_script(_ORDERED_LUA)
        self.metrics.broker_up.set(0)

    # --- registration ----------------------------------------------------------------------

    def on(self, channel: str, handler: Handler) -> None:
        """Call ``handler(sender_node_id, payload)`` for every message ANOTHER node publishes
        on ``channel`` (a node's own messages are not handed back to it). Any time: every
        channel of the namespace is subscribed; messages before this call are not handed."""
        self._handlers[channel] = handler

    def on_ordered(self, channel: str, handler: OrderedHandler) -> None:
        """Call ``handler(sender_node_id, number, payload)`` for every message published on
        ``channel`` with :meth:`publish_ordered`, this node's own included, in number order."""
        self._ordered[channel] = handler

    def on_up(self, callback: Callable[[], None]) -> None:
        """Called each time the broker is reachable again after being down: nodes resync."""
        self._up_callbacks.append(callback)

    def on_down(self, callback: Callable[[], None]) -> None:
        """Called each time the broker is lost (after the :meth:`on_node` calls for the nodes
        it knew)."""
        self._down_callbacks.append(callback)

    def on_node(self, callback: Callable[[str, bool], None]) -> None:
        """``callback(node_id, True)`` when another node is heard from first (or again after
        being gone), ``callback(node_id, False)`` when it falls silent or Redis is lost."""
        self._node_callbacks.append(callback)

    # --- life ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (or, Redis being unreachable, go on without it and keep dialling)."""
        crashes = self.metrics.task_crashes
        self._tasks = [
            spawn("broker_listen", self._listen, crashes),
            spawn("broker_send", self._send, crashes),
            spawn("broker_alive", self._alive, crashes),
        ]
        await self._first_try.wait()
        self._started = True  # from now on, being up again is news (on_up)
        if not self._up:
            logger.warning(
                "the broker %s is unreachable: starting without it (cursors and changes of "
                "other core nodes wait), dialling it again",
                self.where,
            )

    async def close(self) -> None:
        """Send what is queued (within :data:`TIMEOUT_S`, if Redis is up), then stop."""
        if self._up:
            try:
                async with asyncio.timeout(TIMEOUT_S):
                    await self._queue.join()
            except TimeoutError:
                logger.warning("closing the broker with %d messages unsent", self._queue.qsize())
        await stop(*self._tasks)
        self._tasks = []
        await self._client.aclose()

    @property
    def up(self) -> bool:
        return self._up

    @property
    def where(self) -> str:
        """The URL without its password (for logs and ``/admin/status``)."""
        return redacted(self.url)

    def status(self) -> dict[str, Any]:
        """Its part of ``/admin/status``."""
        return {"url": self.where, "up": self._up, "nodes": len(self.peers)}

    # --- publishing ------------------------------------------------------------------------

    def publish(self, channel: str, payload: bytes) -> None:
        """Never blocks, never raises: queued (at most :data:`MAX_QUEUED` messages and
        :data:`MAX_QUEUED_BYTES`) and sent in order by one task; while Redis is unreachable,
        dropped and counted."""
        self._put(channel, payload, "")

    def publish_ordered(self, channel: str, counter: str, payload: bytes) -> None:
        """As :meth:`publish`, numbered by the counter ``counter`` (namespaced) in Redis."""
        self._put(channel, payload, counter)

    def _put(self, channel: str, payload: bytes, counter: str) -> None:
        if len(payload) > MAX_MESSAGE_BYTES:
            self._dropped("too_big")
            return
        if not self._up:
            self._dropped("down")
            return
        data = _body(self.node_id, payload) if counter else envelope(self.node_id, payload)
        if self._queued_bytes + len(data) > MAX_QUEUED_BYTES or self._queue.full():
            self._dropped("full")
            return
        self._queued_bytes += len(data)
        self._queue.put_nowait(_Outgoing(channel, data, counter))

    def _dropped(self, reason: str, count: int = 1) -> None:
        self.metrics.broker_dropped.labels(reason).inc(count)

    def _key(self, name: str) -> str:
        return f"{self.namespace}:{name}"

    async def _send(self) -> None:
        """Send what is queued, in order, a pipeline at a time (supervised)."""
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._queued_bytes -= sum(len(item.data) for item in batch)
            try:
                await self._send_batch(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _send_batch(self, batch: list[_Outgoing]) -> None:
        """One pipeline; a failure drops the batch (counted) and counts Redis as lost."""
        if not self._up:
            self._dropped("down", len(batch))
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for item in batch:
                    channel = self._key(item.channel)
                    if item.counter:
                        keys = [self._key(item.counter), channel]
                        await self._script(keys, [item.data, ORDER_TTL_S], client=pipe)
                    else:
                        pipe.publish(channel, item.data)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._dropped("failed", len(batch))
            self._lost(f"publishing failed: {exc}")
            return
        for item in batch:
            self.metrics.broker_published.labels(item.channel).inc()

    async def _alive(self) -> None:
        """Each heartbeat: say this node is alive, and forget the nodes silent too long."""
        while True:
            if self._up:
                self.publish(ALIVE, b"")
            for node in self.peers.expired(time.monotonic()):
                logger.warning("core node %s silent on the broker: counted as gone", node)
                self._nodes_changed(node, False)
            await asyncio.sleep(self.heartbeat_s)

    # --- receiving -------------------------------------------------------------------------

    async def _listen(self) -> None:
        """Subscribe to the namespace and hand out what arrives; dial again when lost."""
        attempt = 0
        pattern = _glob_escape(self.namespace) + ":*"
        while True:
            pubsub = self._client.pubsub()
            try:
                await pubsub.psubscribe(pattern)
                self._set_up()
                self._first_try.set()
                attempt = 0
                await self._read(pubsub)
            except (RedisError, OSError) as exc:
                self._lost(str(exc))
            finally:
                self._first_try.set()
                try:
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                    if not self._up:  # the publisher's connections are as dead: dial anew
                        await self._client.connection_pool.disconnect()
                except (RedisError, OSError):
                    pass
            delay = backoff_s(attempt, min_s=RETRY_MIN_S, max_s=RETRY_MAX_S, jitter=random.random())
            attempt += 1
            await asyncio.sleep(delay)

    async def _read(self, pubsub: aioredis.client.PubSub) -> None:
        prefix = self.namespace.encode() + b":"
        silent_s = GONE_AFTER_BEATS * self.heartbeat_s
        heard = time.monotonic()
        while self._up:
            message = await pubsub.get_message(
                ignore_subscribe_messages=True, timeout=self.heartbeat_s
            )
            now = time.monotonic()
            if message is None:
                if now - heard > silent_s:
                    raise RedisError(f"nothing heard for {silent_s:.1f} s, not even our own")
                continue
            heard = now
            channel = message.get("channel")
            if isinstance(channel, bytes) and channel.startswith(prefix):
                self._receive(channel[len(prefix) :].decode(errors="replace"), message["data"])

    def _receive(self, channel: str, data: Any) -> None:
        """Hand one message to its channel's handler; anything wrong drops it alone."""
        try:
            seq, sender, payload = open_envelope(data)
            if (seq > 0) != (channel in self._ordered):
                raise ProtocolError(f"a message numbered {seq} on channel {channel!r}")
            new = sender != self.node_id and self.peers.heard(sender, time.monotonic())
        except ProtocolError as exc:
            self.metrics.drops.drop("broker", data, exc)
            return
        if new:
            logger.info("core node %s is on the broker", sender)
            self._nodes_changed(sender, True)
        if channel == ALIVE:
            return
        ordered = self._ordered.get(channel)
        handler = self._handlers.get(channel)
        if ordered is None and (handler is None or sender == self.node_id):
            return  # a channel nobody here listens to, or our own message
        self.metrics.broker_received.labels(channel).inc()
        try:
            if ordered is not None:
                ordered(sender, seq, payload)
            elif handler is not None:
                handler(sender, payload)
        except Exception as exc:  # no poison pill: this message alone is lost
            self.metrics.drops.drop("broker", data, exc)

    # --- up and down -----------------------------------------------------------------------

    def _set_up(self) -> None:
        self._up = True
        self.metrics.broker_up.set(1)
        if self._started:
            logger.info("the broker %s is reachable again", self.where)
            for callback in self._up_callbacks:
                _call(callback)

    def _lost(self, reason: str) -> None:
        if not self._up:
            return
        self._up = False
        self.metrics.broker_up.set(0)
        logger.warning("lost the broker %s: %s", self.where, reason)
        for node in self.peers.clear():
            self._nodes_changed(node, False)
        for callback in self._down_callbacks:
            _call(callback)

    def _nodes_changed(self, node: str, alive: bool) -> None:
        self.metrics.broker_nodes.set(len(self.peers))
        for callback in self._node_callbacks:
            _call(callback, node, alive)


def _call(callback: Callable[..., None], *args: Any) -> None:
    """Run a callback; one that raises is logged, and the others still run."""
    try:
        callback(*args)
    except Exception:
        logger.exception("a broker callback failed")


def _glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis glob pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
