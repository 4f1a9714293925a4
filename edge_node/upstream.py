"""The edge's side of the link: dial the core, keep the index current, carry writes up.

The edge always dials (the core never calls edges). One websocket carries, down: the
snapshot, ordered deltas, flags, heartbeats and answers; up: hello, heartbeats, batches of
searches from the outbox, and sync requests for strict reads. Because it is one ordered
stream, a ``synced`` answer arrives after every delta the core had published when it read
the ``sync`` request: waiting for it is waiting for the head.

When the link drops, reads keep being served from the index (their age grows), searches
wait in the outbox, and the edge reconnects with exponential backoff and full jitter,
resuming from the version it holds.

Frames up are bounded (:mod:`edge_node.frames`): long messages are split below
:data:`~shared.protocol.MAX_UP_FRAME_BYTES`, and an item that cannot be encoded is dropped
alone (counted in ``lightcone_items_dropped_total``). Cursor messages go through one sender
with a queue of :data:`MAX_POSTED` messages; beyond it they are dropped (counted in
``lightcone_link_posts_dropped_total``) and, once the queue has drained, the edge announces its
rooms again (``room_sync``), so the core's picture heals. Each session's senders run under
:func:`shared.tasks.supervise`: one that stops ends the session, and the edge reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

import websockets
from sortedcontainers import SortedKeyList
from websockets.asyncio.client import ClientConnection, connect

from edge_node.breaker import Breaker
from edge_node.frames import frames
from edge_node.metrics import EdgeMetrics
from edge_node.settings import EdgeSettings
from edge_node.suggest.index import GapError, SuggestIndex
from edge_node.suggest.outbox import Outbox
from shared import snapshot
from shared.errors import BadRequest, CloseCode, Conflict, ProtocolError, Unavailable
from shared.protocol import (
    ACK_ID_CONFLICT,
    PROTOCOL_VERSION,
    Delta,
    Error,
    Evict,
    Flags,
    Heartbeat,
    Hello,
    Joined,
    Left,
    Message,
    Moves,
    MovesBatch,
    Reach,
    Resync,
    RoomState,
    SearchAcks,
    Searches,
    SearchItem,
    Snapshot,
    Sync,
    Synced,
    decode,
)
from shared.tasks import STOP, backoff_s, spawn, stop

logger = logging.getLogger(__name__)

CONNECTING, UP, DOWN = "connecting", "up", "down"

CURSOR_MESSAGES = (RoomState, Joined, Left, Moves, MovesBatch, Reach, Evict)

MAX_POSTED = 1024
"""Cursor messages waiting for the link's sender; beyond it they are dropped (module doc)."""

_Waiter = tuple[int, int, "asyncio.Future[None]"]


class LinkListener(Protocol):
    """What the cursor shell hears from the link (see :mod:`edge_node.cursors`)."""

    def link_changed(self, up: bool) -> list[Message]:
        """The link went up (return what to send right after hello) or down."""

    def announce(self) -> list[Message]:
        """What tells the core everything again (after cursor messages were dropped)."""

    def flags_changed(self, flags: dict[str, bool]) -> None: ...

    def relayed(self, message: Message) -> None:
        """A cursor message from the core."""


class Upstream:
    def __init__(
        self,
        settings: EdgeSettings,
        token: str,
        metrics: EdgeMetrics,
        *,
        clock: Callable[[], float] | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.edge_id = f"{settings.region}-{uuid.uuid4().hex[:8]}"
        self.index: SuggestIndex | None = None
        self.flags: dict[str, bool] = {}
        self.state = CONNECTING
        self.ready = asyncio.Event()
        self.outbox = Outbox(settings.outbox_max)
        self.breaker = Breaker(settings.breaker_failures, settings.breaker_reset_s)
        self._token = token
        self._clock = clock or asyncio.get_running_loop().time
        self._jitter = jitter
        self._confirmed_at: float | None = None
        self._heard_at: float | None = None
        self._epoch = ""
        self._pending: SuggestIndex | None = None  # a compaction snapshot catching up
        self._ws: ClientConnection | None = None
        self._send_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._sync_ids = itertools.count(1)
        self._syncs: dict[int, asyncio.Future[int]] = {}
        self._acks: dict[str, list[asyncio.Future[int]]] = {}
        self._version_waiters: SortedKeyList = SortedKeyList(key=lambda w: (w[0], w[1]))
        self._waiter_ids = itertools.count()
        self.core_head = -1
        """The newest version the core is known to have (heartbeats, acks, syncs, data)."""
        self.listener: LinkListener | None = None
        self._posted: asyncio.Queue[Message] = asyncio.Queue(MAX_POSTED)
        self._overflowed = False
        metrics.bind(self)

    # --- what the app reads --------------------------------------------------------------

    @property
    def version(self) -> int:
        return self.index.version if self.index else -1

    def age_ms(self) -> int:
        """Milliseconds since the edge last knew it was current with the core's stream."""
        if self._confirmed_at is None:
            return 0
        return int((self._clock() - self._confirmed_at) * 1000)

    def heard_ms(self) -> int | None:
        """Milliseconds since the last frame from the core; None if none ever came."""
        if self._heard_at is None:
            return None
        return int((self._clock() - self._heard_at) * 1000)

    def stale_ok(self, feature: str) -> bool:
        return self.flags.get(feature, True)

    # --- the connection loop -------------------------------------------------------------

    async def run(self) -> None:
        """Stay connected to the core until cancelled."""
        attempt = 0
        while True:
            try:
                async with connect(
                    self.settings.link_url,
                    additional_headers={"Authorization": f"Bearer {self._token}"},
                    max_size=self.settings.max_snapshot_bytes,
                    ping_interval=None,
                    open_timeout=self.settings.link_timeout_s,
                    close_timeout=1,
                    compression=None,
                ) as ws:
                    attempt = 0  # the core answered: the next drop starts the backoff afresh
                    await self._session(ws)
            except websockets.ConnectionClosed as exc:
                self._closed(exc)
            except websockets.InvalidStatus as exc:
                self._refused(exc)
            except (OSError, TimeoutError, websockets.WebSocketException, Unavailable) as exc:
                logger.warning("link to %s failed: %s", self.settings.link_url, exc)
            finally:
                self._down()
            delay = backoff_s(
                attempt,
                min_s=self.settings.reconnect_min_s,
                max_s=self.settings.reconnect_max_s,
                jitter=self._jitter(),
            )
            attempt += 1
            self.metrics.reconnects.inc()
            await asyncio.sleep(delay)

    def _closed(self, exc: websockets.ConnectionClosed) -> None:
        code = exc.rcvd.code if exc.rcvd else None
        if code == CloseCode.UNAUTHORIZED:
            logger.error(
                "the core refused the link token (close %s): check LIGHTCONE_LINK_TOKEN", code
            )
        elif code == CloseCode.UNSUPPORTED_PROTOCOL:
            logger.error(
                "the core does not talk this edge's protocol version %d (close %s): deploy an "
                "edge and a core whose versions overlap (docs/protocol.md)",
                PROTOCOL_VERSION,
                code,
            )
        else:
            logger.warning("link closed: %s", exc)

    def _refused(self, exc: websockets.InvalidStatus) -> None:
        """The core answered the handshake with an HTTP status instead of a websocket."""
        status = exc.response.status_code
        if status == 401:
            logger.error(
                "the core refused the link token (HTTP %d): check LIGHTCONE_LINK_TOKEN", status
            )
        else:
            logger.warning("link to %s refused: %s", self.settings.link_url, exc)

    async def _session(self, ws: ClientConnection) -> None:
        self._ws = ws
        await self._send(
            Hello(self.settings.region, self.edge_id, self.version, self._epoch, PROTOCOL_VERSION)
        )
        self._set_state(UP)
        logger.info("link up to %s at v%d", self.settings.link_url, self.version)
        for message in self.listener.link_changed(True) if self.listener else []:
            self.post(message)  # ahead of every cursor message of this session
        senders = [
            self._sender("link_searches", self._send_searches),
            self._sender("link_heartbeats", self._send_heartbeats),
            self._sender("link_posts", self._send_posted),
        ]
        self._wake.set()
        try:
            while True:
                try:
                    async with asyncio.timeout(self.settings.link_timeout_s):
                        data = await ws.recv(decode=False)
                    self._heard_at = self._clock()
                except TimeoutError:
                    logger.warning(
                        "core silent for %.1f s: closing link", self.settings.link_timeout_s
                    )
                    await ws.close(CloseCode.LINK_TIMEOUT, "heartbeat timeout")
                    return
                await self._receive(data)
                if any(task.done() for task in senders):
                    # A sender stopped (it crashed, logged and counted): start afresh. The
                    # core's heartbeats wake this loop at least every heartbeat interval.
                    logger.warning("a link sender stopped: closing the link to reconnect")
                    await ws.close(CloseCode.INTERNAL_ERROR, "link sender stopped")
                    return
        finally:
            await stop(*senders)

    def _sender(self, name: str, factory: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        """A supervised sender of this session; the session ends if it stops (see above)."""
        return spawn(name, factory, self.metrics.task_crashes, policy=STOP)

    def _down(self) -> None:
        self._ws = None
        # Cursor messages are volatile: the next session starts with a fresh room_sync.
        while not self._posted.empty():
            self._posted.get_nowait()
        self._overflowed = False
        if self.state == UP and self.listener is not None:
            self.listener.link_changed(False)
        self._set_state(DOWN)
        self.outbox.requeue()
        for fut in self._syncs.values():
            if not fut.done():
                fut.set_exception(
                    Unavailable("the link to the core dropped", code="core_unreachable")
                )
        self._syncs.clear()

    def _set_state(self, state: str) -> None:
        self.state = state
        self.metrics.link_state.state(state)

    async def _send(self, message: Message) -> None:
        """Send ``message`` in as many frames as its size needs; poison is dropped alone.

        Raises:
            Unavailable: the link is down, or dropped during the send.
        """
        sent, dropped = frames(message)
        for item in dropped:
            self.metrics.drops.drop("link_send", item)
        for frame in sent:
            await self._send_frame(frame)

    async def _send_frame(self, frame: bytes) -> None:
        ws = self._ws
        if ws is None:
            raise Unavailable("the link to the core is down", code="core_unreachable")
        try:
            async with self._send_lock:
                await ws.send(frame)
        except websockets.ConnectionClosed:
            raise Unavailable("the link to the core dropped", code="core_unreachable") from None

    def post(self, message: Message) -> None:
        """Send ``message`` soon, without waiting; dropped if the link is down (volatile) or
        :data:`MAX_POSTED` messages wait (then the rooms are announced again, module doc)."""
        if self._ws is None:
            return
        try:
            self._posted.put_nowait(message)
        except asyncio.QueueFull:
            self.metrics.link_posts_dropped.inc()
            self._overflowed = True

    async def _send_posted(self) -> None:
        """The one sender of cursor messages (an ended link ends it)."""
        with contextlib.suppress(Unavailable):
            while True:
                await self._send(await self._posted.get())
                if self._overflowed and self._posted.empty() and self.listener is not None:
                    self._overflowed = False
                    for message in self.listener.announce():
                        self.post(message)

    async def _send_searches(self) -> None:
        with contextlib.suppress(Unavailable):
            while True:
                await self._wake.wait()
                self._wake.clear()
                while batch := self.outbox.take(self.settings.max_search_batch):
                    sent, dropped = frames(Searches(batch))
                    for item in dropped:
                        self._refuse(item)
                    for frame in sent:
                        await self._send_frame(frame)

    def _refuse(self, item: SearchItem) -> None:
        """A search that cannot be sent to the core (poison): drop it alone, tell its waiters."""
        self.metrics.drops.drop("outbox", item)
        self.outbox.ack(item.id)
        for fut in self._acks.pop(item.id, []):
            if not fut.done():
                fut.set_exception(BadRequest("the search cannot be sent", code="rejected"))

    async def _send_heartbeats(self) -> None:
        with contextlib.suppress(Unavailable):
            while True:
                await self._send(Heartbeat(self.version))
                await asyncio.sleep(self.settings.heartbeat_s)

    # --- what the core sends -------------------------------------------------------------

    async def _receive(self, data: bytes | str) -> None:
        try:
            # A newer core may send fields this edge does not know: they are dropped.
            message = decode(data if isinstance(data, bytes) else data.encode(), strict=False)
        except ProtocolError as exc:
            logger.error("undecodable message from the core: %s", exc)
            return
        if isinstance(message, Snapshot):
            await self._load(message)
        elif isinstance(message, Delta):
            await self._apply(message)
        elif isinstance(message, Flags):
            self.flags = dict(message.flags)
            if self.listener is not None:
                self.listener.flags_changed(self.flags)
        elif isinstance(message, CURSOR_MESSAGES):
            if self.listener is not None:
                try:
                    self.listener.relayed(message)
                except Exception as exc:  # one relay must not end the link (no poison pill)
                    self.metrics.drops.drop("link_receive", message, exc)
        elif isinstance(message, Heartbeat):
            self._core_at(message.version)
            if self.index is not None and self.index.version >= message.version:
                self._confirm()
        elif isinstance(message, Synced):
            self._core_at(message.version)
            fut = self._syncs.pop(message.id, None)
            if fut is not None and not fut.done():
                fut.set_result(message.version)
        elif isinstance(message, SearchAcks):
            self._acked(message)
        elif isinstance(message, Error):
            logger.warning("the core says: %s (%s)", message.message, message.code)

    async def _load(self, message: Snapshot) -> None:
        data = await asyncio.to_thread(snapshot.parse, message.data)
        # The snapshot is long-lived: keep its objects out of the collector's full passes.
        gc.freeze()
        self.metrics.snapshots.inc()
        logger.info("loaded snapshot v%d: %d terms", data.version, len(data))
        fresh = SuggestIndex(data)
        if message.epoch != self._epoch:
            self.core_head = data.version  # another database: its versions start afresh
        self._core_at(data.version)
        current = self.index
        if current is not None and message.epoch == self._epoch and data.version < current.version:
            # A compaction snapshot older than what we serve, with the deltas since right
            # behind it: keep serving the current index until the new one has caught up, so
            # answers never go back in time.
            self._pending = fresh
            return
        self._install(fresh, message.epoch)

    def _install(self, index: SuggestIndex, epoch: str) -> None:
        self.index, self._epoch, self._pending = index, epoch, None
        self._advanced()
        self.ready.set()

    async def _apply(self, delta: Delta) -> None:
        self._core_at(delta.to_version)
        target = self._pending or self.index
        if target is None:
            return  # a snapshot is on its way: hello said we hold nothing
        try:
            target.apply(delta)
        except GapError as exc:
            self.metrics.gaps.inc()
            logger.warning("%s: resyncing", exc)
            await self._send(Resync(target.version))
            return
        if self._pending is not None:
            if self.index is not None and self._pending.version < self.index.version:
                return
            self._install(self._pending, self._epoch)
            return
        self._advanced()

    def _advanced(self) -> None:
        """Wake the readers waiting for a version now held: O(woken + log n), not O(waiting)."""
        self._confirm()
        version = self.version
        waiters = self._version_waiters
        while waiters and waiters[0][0] <= version:
            fut = waiters.pop(0)[2]
            if not fut.done():
                fut.set_result(None)

    def _confirm(self) -> None:
        self._confirmed_at = self._clock()

    def _core_at(self, version: int) -> None:
        self.core_head = max(self.core_head, version)

    def _acked(self, message: SearchAcks) -> None:
        for ack in message.acks:
            if ack.version is not None:
                self._core_at(ack.version)
            self.outbox.ack(ack.id)
            for fut in self._acks.pop(ack.id, []):
                if fut.done():
                    continue
                if ack.error == ACK_ID_CONFLICT:
                    fut.set_exception(Conflict.reused_id(ack.id))
                elif ack.version is None:
                    fut.set_exception(BadRequest(ack.error or "refused", code="rejected"))
                else:
                    fut.set_result(ack.version)

    # --- what requests ask of the link ---------------------------------------------------

    @property
    def version_waiters(self) -> int:
        """Readers waiting for a version (each leaves when answered, timed out or cancelled)."""
        return len(self._version_waiters)

    async def wait_version(self, version: int) -> None:
        """Return once the index holds ``version`` (callers bound the wait; a waiter is removed
        however the wait ends)."""
        if self.version >= version:
            return
        waiter: _Waiter = (
            version,
            next(self._waiter_ids),
            asyncio.get_running_loop().create_future(),
        )
        self._version_waiters.add(waiter)
        try:
            await waiter[2]
        finally:
            self._version_waiters.discard(waiter)

    async def sync(self, timeout_s: float) -> int:
        """Bring the index up to the core's head as of now; returns that head.

        Raises:
            Unavailable: at once if the link is down or the breaker is open; after
                ``timeout_s`` if the core does not answer.
        """
        if not self.breaker.allow(self._clock()):
            raise Unavailable(
                "circuit breaker open: the core is not answering", code="core_unreachable"
            )
        verdict: bool | None = None  # no verdict if this caller is cancelled
        try:
            head = await self._sync(timeout_s)
            verdict = True
        except Exception:
            verdict = False
            raise
        finally:
            # Whatever happens, the call (a half-open trial, maybe) is ended here.
            if verdict is None:
                self.breaker.release()
            elif verdict:
                self.breaker.success()
            else:
                self.breaker.failure(self._clock())
        return head

    async def _sync(self, timeout_s: float) -> int:
        sync_id = next(self._sync_ids)
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._syncs[sync_id] = fut
        try:
            async with asyncio.timeout(timeout_s):
                await self._send(Sync(sync_id))
                head = await fut
                await self.wait_version(head)
            self._confirm()
        except TimeoutError:
            ms = int(timeout_s * 1000)
            raise Unavailable(
                f"no answer from the core within {ms} ms", code="strict_timeout"
            ) from None
        finally:
            self._syncs.pop(sync_id, None)
        return head

    async def commit(self, search_id: str, timeout_s: float) -> int | None:
        """Wait for the core to commit a queued search; ``None`` if it is still queued."""
        if self.state != UP:
            return None
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._acks.setdefault(search_id, []).append(fut)
        self._wake.set()
        try:
            async with asyncio.timeout(timeout_s):
                return await fut
        except TimeoutError:
            return None
        finally:
            waiters = self._acks.get(search_id)
            if waiters and fut in waiters:
                waiters.remove(fut)
                if not waiters:
                    del self._acks[search_id]
