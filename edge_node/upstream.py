"""The edge's side of the link: dial the core, keep the index current, carry writes up.

The edge always dials (the core never calls edges). One websocket carries, down: the
snapshot, ordered deltas, flags, heartbeats and answers; up: hello, heartbeats, batches of
searches from the outbox, and sync requests for strict reads. Because it is one ordered
stream, a ``synced`` answer arrives after every delta the core had published when it read
the ``sync`` request: waiting for it is waiting for the head.

When the link drops, reads keep being served from the index (their age grows), searches
wait in the outbox, and the edge reconnects with exponential backoff and full jitter,
resuming from the version it holds.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import random
import uuid
from collections.abc import Callable
from typing import Protocol

import websockets
from websockets.asyncio.client import ClientConnection, connect

from edge_node.breaker import Breaker, backoff_s
from edge_node.index import GapError, SuggestIndex
from edge_node.metrics import EdgeMetrics
from edge_node.outbox import Outbox
from edge_node.settings import EdgeSettings
from shared import snapshot
from shared.errors import BadRequest, CloseCode, Conflict, ProtocolError, Unavailable
from shared.protocol import (
    ACK_ID_CONFLICT,
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
    Reach,
    Resync,
    RoomState,
    SearchAcks,
    Searches,
    Snapshot,
    Sync,
    Synced,
    decode,
    encode,
)

logger = logging.getLogger(__name__)

CONNECTING, UP, DOWN = "connecting", "up", "down"

CURSOR_MESSAGES = (RoomState, Joined, Left, Moves, Reach, Evict)


class LinkListener(Protocol):
    """What the cursor shell hears from the link (see :mod:`edge_node.cursors`)."""

    def link_changed(self, up: bool) -> list[Message]:
        """The link went up (return what to send right after hello) or down."""

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
        self._epoch = ""
        self._pending: SuggestIndex | None = None  # a compaction snapshot catching up
        self._ws: ClientConnection | None = None
        self._send_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._sync_ids = itertools.count(1)
        self._syncs: dict[int, asyncio.Future[int]] = {}
        self._acks: dict[str, list[asyncio.Future[int]]] = {}
        self._version_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.listener: LinkListener | None = None
        self._posting: set[asyncio.Task[None]] = set()
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
            except (OSError, TimeoutError, websockets.WebSocketException) as exc:
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
        else:
            logger.warning("link closed: %s", exc)

    async def _session(self, ws: ClientConnection) -> None:
        self._ws = ws
        await self._send(Hello(self.settings.region, self.edge_id, self.version, self._epoch))
        self._set_state(UP)
        logger.info("link up to %s at v%d", self.settings.link_url, self.version)
        for message in self.listener.link_changed(True) if self.listener else []:
            await self._send(message)
        tasks = [
            asyncio.create_task(self._send_searches()),
            asyncio.create_task(self._send_heartbeats()),
        ]
        self._wake.set()
        try:
            while True:
                try:
                    async with asyncio.timeout(self.settings.link_timeout_s):
                        data = await ws.recv(decode=False)
                except TimeoutError:
                    logger.warning(
                        "core silent for %.1f s: closing link", self.settings.link_timeout_s
                    )
                    await ws.close(CloseCode.LINK_TIMEOUT, "heartbeat timeout")
                    return
                await self._receive(data)
        finally:
            for task in tasks:
                task.cancel()
            # Collect their outcome: a send that failed because the link dropped is expected.
            await asyncio.gather(*tasks, return_exceptions=True)

    def _down(self) -> None:
        self._ws = None
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
        ws = self._ws
        if ws is None:
            raise Unavailable("the link to the core is down", code="core_unreachable")
        async with self._send_lock:
            await ws.send(encode(message))

    def post(self, message: Message) -> None:
        """Send ``message`` soon, without waiting; dropped if the link is down (volatile)."""
        if self._ws is None:
            return
        task = asyncio.create_task(self._post(message))
        self._posting.add(task)
        task.add_done_callback(self._posting.discard)

    async def _post(self, message: Message) -> None:
        try:
            await self._send(message)
        except (Unavailable, websockets.ConnectionClosed):
            pass  # the session's receive loop sees the drop and cleans up

    async def _send_searches(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while batch := self.outbox.take(self.settings.max_search_batch):
                await self._send(Searches(batch))

    async def _send_heartbeats(self) -> None:
        while True:
            await self._send(Heartbeat(self.version))
            await asyncio.sleep(self.settings.heartbeat_s)

    # --- what the core sends -------------------------------------------------------------

    async def _receive(self, data: bytes | str) -> None:
        try:
            message = decode(data if isinstance(data, bytes) else data.encode())
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
                self.listener.relayed(message)
        elif isinstance(message, Heartbeat):
            if self.index is not None and self.index.version >= message.version:
                self._confirm()
        elif isinstance(message, Synced):
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
        self._confirm()
        version = self.version
        waiting = []
        for wanted, fut in self._version_waiters:
            if wanted <= version:
                if not fut.done():
                    fut.set_result(None)
            else:
                waiting.append((wanted, fut))
        self._version_waiters = waiting

    def _confirm(self) -> None:
        self._confirmed_at = self._clock()

    def _acked(self, message: SearchAcks) -> None:
        for ack in message.acks:
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

    async def wait_version(self, version: int) -> None:
        """Return once the index holds ``version`` (callers bound the wait)."""
        if self.version >= version:
            return
        fut = asyncio.get_running_loop().create_future()
        self._version_waiters.append((version, fut))
        await fut

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
        try:
            head = await self._sync(timeout_s)
        except Unavailable:
            self.breaker.failure(self._clock())
            raise
        self.breaker.success()
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
