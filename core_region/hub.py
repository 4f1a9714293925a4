"""The core's link to its edges: catch-up, publishing, heartbeats, writes from edges.

The shell around three pure pieces: the :class:`~core_region.suggest.catalog.Catalog` (what is
served), the :class:`~core_region.suggest.stream.Stream` (what was published) and the store (what
is durable). Each frame is encoded once and the same bytes are queued to every edge.

Backpressure: each edge has a send queue of at most ``MAX_QUEUED_FRAMES`` frames. An edge
that falls that far behind is disconnected (close 1008 "too slow"); it reconnects and
catches up from its version, by deltas or a fresh snapshot, so nothing is lost and a slow
edge never holds up the others or grows the core's memory without bound.

No poison pills: a relay message, a term change or a snapshot entry that cannot be encoded is
dropped alone (logged, ``lightcone_items_dropped_total{where=...}``) and the rest goes out.
Compaction runs as a supervised task (:mod:`shared.tasks`): a crash is logged, counted and
retried with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from array import array
from dataclasses import dataclass, field

from core_region.cursors.rooms import Out as RoomsOut, RoomDirectory
from core_region.metrics import CoreMetrics
from core_region.store import LoggedSearch, Store
from core_region.suggest.catalog import Catalog, TermRow
from core_region.suggest.stream import Stream
from shared import snapshot
from shared.errors import BadRequest, CloseCode
from shared.protocol import (
    ACK_ID_CONFLICT,
    ACK_INVALID,
    MAX_SOURCE_CHARS,
    AckItem,
    Delta,
    Flags,
    Heartbeat,
    Joined,
    Left,
    Message,
    Moves,
    MovesBatch,
    RoomSync,
    SearchAcks,
    Searches,
    Snapshot,
    decode,
    encode,
)
from shared.tasks import spawn
from shared.text import MAX_ID_CHARS, clean, term as text_term

logger = logging.getLogger(__name__)

MAX_QUEUED_FRAMES = 1000


@dataclass(eq=False)
class EdgePeer:
    """One connected edge, as the hub sees it."""

    edge_id: str
    region: str
    version: int
    connected_at: float
    queue: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    close_code: CloseCode = CloseCode.NORMAL
    close_reason: str = ""

    def send(self, frame: bytes) -> None:
        """Queue ``frame``; an edge that fell too far behind is told to go (see module doc)."""
        if self.close_reason:
            return
        if self.queue.qsize() >= MAX_QUEUED_FRAMES:
            logger.warning("edge %s (%s) is too slow: disconnecting", self.edge_id, self.region)
            self.close(CloseCode.POLICY_VIOLATION, "too slow")
            return
        self.queue.put_nowait(frame)

    def close(self, code: CloseCode, reason: str) -> None:
        """Send what is queued, then close the link with ``code``."""
        if not self.close_reason:
            self.close_code, self.close_reason = code, reason
            self.queue.put_nowait(None)


class Hub:
    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        flags: dict[str, bool],
        metrics: CoreMetrics,
        *,
        publish_delay_s: float,
        compact_after: int,
        region: str,
        max_search_batch: int,
        presence_timeout_s: float = 20.0,
        epoch: str = "",
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.flags = flags
        self.metrics = metrics
        self.stream = Stream()
        self.publish_delay_s = publish_delay_s
        self.compact_after = compact_after
        self.region = region
        self.max_search_batch = max_search_batch
        self.epoch = epoch
        self.edges: set[EdgePeer] = set()
        self.peers: dict[str, EdgePeer] = {}
        self.rooms = RoomDirectory(presence_timeout_s=presence_timeout_s)
        self._timer: asyncio.TimerHandle | None = None
        self._write_lock = asyncio.Lock()  # commit and apply in commit order
        self._rebasing: asyncio.Task[None] | None = None
        self._storing: set[asyncio.Task[None]] = set()  # new epochs being stored

    # --- snapshots -------------------------------------------------------------------------

    async def rebase(self) -> None:
        """Build a snapshot of the head off the event loop and make it the stream's base."""
        self.publish()
        version = self.catalog.version
        entries = self.catalog.entries()
        hot, blob = await asyncio.to_thread(self._build, entries, version)
        self.catalog.install_hot(hot, version)
        self.stream.rebase(version, encode(Snapshot(version, blob, self.epoch)))
        self.metrics.snapshot_bytes.set(len(blob))
        logger.info("published snapshot v%d: %d terms, %d bytes", version, len(entries), len(blob))
        for edge in self.edges:
            for frame in self.stream.catch_up(-1):
                edge.send(frame)
        if self.catalog.has_pending:
            self.schedule_publish()

    def _build(
        self, entries: list[snapshot.Entry], version: int
    ) -> tuple[dict[str, list[str]], bytes]:
        entries = self.metrics.drops.keep("snapshot", entries, _check_entry)
        hot = self.catalog.compute_hot(entries)
        blob = snapshot.build(
            entries,
            version=version,
            hot=hot,
            hot_threshold=self.catalog.hot_threshold,
            depth=self.catalog.depth,
        )
        return hot, blob

    # --- publishing ----------------------------------------------------------------------

    def schedule_publish(self) -> None:
        """Publish within ``publish_delay_s``: changes in that window share one delta."""
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.publish_delay_s, self.publish)

    def publish(self) -> None:
        """Send what is pending now, as one delta to every edge."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        delta = self.catalog.take_delta()
        if delta is None:
            return
        frame = self._encode_delta(delta)
        self.stream.append(delta.from_version, delta.to_version, frame)
        self.metrics.deltas.inc()
        self.metrics.published_version.set(delta.to_version)
        for edge in self.edges:
            edge.send(frame)
        if self._rebasing is None and self.catalog.changes_since_rebase >= self.compact_after:
            self._rebasing = spawn("compaction", self.rebase, self.metrics.task_crashes)
            self._rebasing.add_done_callback(self._compacted)

    def _compacted(self, task: asyncio.Task[None]) -> None:
        self._rebasing = None

    async def close(self) -> None:
        """Stop background work (a compaction in progress)."""
        if self._rebasing is not None:
            self._rebasing.cancel()
            await asyncio.gather(self._rebasing, return_exceptions=True)

    def _encode_delta(self, delta: Delta) -> bytes:
        """``delta`` encoded; term changes and hot lists that cannot be are dropped alone."""
        try:
            return encode(delta)
        except Exception:
            terms = self.metrics.drops.keep(
                "delta", delta.terms, lambda t: encode(Delta(0, 0, [t]))
            )
            hot = dict(
                self.metrics.drops.keep(
                    "delta", delta.hot.items(), lambda h: encode(Delta(0, 0, [], dict([h])))
                )
            )
            return encode(Delta(delta.from_version, delta.to_version, terms, hot))

    def set_flags(self, flags: dict[str, bool]) -> None:
        """Adopt new flags and push them to every edge at once (no batching delay)."""
        self.flags = dict(flags)
        frame = encode(Flags(self.flags))
        for edge in self.edges:
            edge.send(frame)

    def heartbeat(self) -> None:
        frame = encode(Heartbeat(self.catalog.published))
        for edge in self.edges:
            edge.send(frame)

    # --- edges ---------------------------------------------------------------------------

    def connect(self, edge_id: str, region: str, version: int, epoch: str = "") -> EdgePeer:
        """Register an edge and queue what it needs to catch up from ``version``.

        Data from another database (``epoch``) counts as none: the edge gets a snapshot.
        An edge of this epoch above the head saw versions the database no longer has (it
        was restored from a backup): the epoch is rotated first (:meth:`rotate_epoch`).
        """
        if epoch == self.epoch and version > self.catalog.version:
            self.rotate_epoch(
                f"edge {edge_id} holds v{version}, the head is v{self.catalog.version}"
            )
        if epoch != self.epoch:
            version = -1
        self.publish()
        peer = EdgePeer(edge_id, region, version, time.time())
        for frame in self.stream.catch_up(version):
            peer.send(frame)
        peer.send(encode(Flags(self.flags)))
        peer.send(encode(Heartbeat(self.catalog.published)))
        old = self.peers.get(edge_id)
        if old is not None:
            old.close(CloseCode.SUPERSEDED, "replaced by a newer link from the same edge")
        self.peers[edge_id] = peer
        self.edges.add(peer)
        self.metrics.edges.set(len(self.edges))
        logger.info("edge %s (%s) connected at v%d", edge_id, region, version)
        return peer

    def rotate_epoch(self, reason: str) -> None:
        """Adopt a new epoch at once, so no version of the old one is ever reused.

        The base snapshot is sent again under it to every edge (an edge loads a snapshot of
        another epoch whatever its version); the new epoch is stored in the background.
        """
        self.epoch = uuid.uuid4().hex
        logger.warning("rollback found (%s): new epoch %s", reason, self.epoch)
        self.metrics.epoch_rotations.inc()
        self.publish()
        base = decode(self.stream.catch_up(-1)[0])
        assert isinstance(base, Snapshot)
        self.stream.rebase(base.version, encode(Snapshot(base.version, base.data, self.epoch)))
        for edge in self.edges:
            for frame in self.stream.catch_up(-1):
                edge.send(frame)
        stored = asyncio.get_running_loop().create_task(self.store.set_epoch(self.epoch))
        self._storing.add(stored)
        stored.add_done_callback(self._stored)

    def _stored(self, task: asyncio.Task[None]) -> None:
        self._storing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Edges hold the new epoch; the old one back after a restart only costs them a
            # fresh snapshot.
            logger.error("could not store the new epoch", exc_info=task.exception())

    def disconnect(self, peer: EdgePeer) -> None:
        self.edges.discard(peer)
        if self.peers.get(peer.edge_id) is peer:
            del self.peers[peer.edge_id]
            self.route(self.rooms.edge_down(peer.edge_id, time.monotonic()))
        self.metrics.edges.set(len(self.edges))
        logger.info("edge %s (%s) disconnected", peer.edge_id, peer.region)

    # --- cursors ---------------------------------------------------------------------------

    def cursor(self, peer: EdgePeer, message: Message) -> None:
        """A cursor message from an edge: update the directory, relay what it says to relay.

        Ignored from a link that a newer one of the same edge replaced (4409): it may still
        drain frames it had buffered, and a late part of its old ``room_sync`` would keep
        members the edge no longer has (ghosts nothing would remove).
        """
        if self.peers.get(peer.edge_id) is not peer:
            return
        edge = peer.edge_id
        if isinstance(message, RoomSync):
            out = self.rooms.sync(edge, message.rooms, part=message.part, final=message.final)
        elif isinstance(message, Joined):
            out = self.rooms.joined(edge, message.room, message.member)
        elif isinstance(message, Left):
            out = self.rooms.left(edge, message.room, message.id, message.reason)
        elif isinstance(message, Moves):
            strict = not self.flags.get("cursors", True)
            out = self.rooms.moves(edge, message, strict=strict)
            self.metrics.cursor_moves.inc(len(message.moves))
        elif isinstance(message, MovesBatch):
            strict = not self.flags.get("cursors", True)
            out = self.rooms.moves_batch(edge, message, strict=strict)
            self.metrics.cursor_moves.inc(sum(len(m.moves) for m in message.batches))
        else:
            return
        self.route(out)

    def route(self, out: RoomsOut) -> None:
        """Send each message once encoded to the edges it names (if still connected)."""
        for edge_ids, message in out:
            try:
                frame = encode(message)
            except Exception as exc:  # no poison pill: this message alone is not relayed
                self.metrics.drops.drop("hub_fanout", message, exc)
                continue
            for edge_id in edge_ids:
                peer = self.peers.get(edge_id)
                if peer is not None:
                    peer.send(frame)

    def expire(self) -> None:
        self.route(self.rooms.expire(time.monotonic()))

    def resync(self, peer: EdgePeer, version: int) -> None:
        self.publish()
        for frame in self.stream.catch_up(version):
            peer.send(frame)

    def sync(self) -> int:
        """Publish what is pending; the head every edge will have once its queue drains."""
        self.publish()
        return self.catalog.published

    async def log_searches(self, peer: EdgePeer, batch: Searches) -> SearchAcks:
        """Commit a batch of searches from ``peer``; acknowledge each id."""
        acks: list[AckItem] = []
        valid: list[LoggedSearch] = []
        for item in batch.searches:
            try:  # the same door as at the edge: a core trusts no edge's checks
                clean(item.id, field="id", max_chars=MAX_ID_CHARS)
                term, key = text_term(item.q, field="q")
            except BadRequest:
                term = key = ""
            if not key or not item.id:
                acks.append(AckItem(item.id, None, ACK_INVALID))
            else:
                source = item.source if len(item.source) <= MAX_SOURCE_CHARS else ""
                valid.append(LoggedSearch(item.id, key, term, item.q, peer.region, source))
        if valid:
            async with self._write_lock:
                started = time.perf_counter()
                result = await self.store.log_searches(valid)
                self.metrics.write_seconds.observe(time.perf_counter() - started)
                if result.version is not None:
                    self._applied(result.rows, result.version)
                    self.metrics.searches.inc(result.fresh)
            acks += [
                AckItem(s.id, None, ACK_ID_CONFLICT) if v is None else AckItem(s.id, v)
                for s, v in zip(valid, result.acks, strict=True)
            ]
        return SearchAcks(acks)

    async def upsert_term(self, key: str, term: str, weight: int) -> int:
        """Admin: set a term's weight; returns the version that carries it."""
        async with self._write_lock:
            version, row = await self.store.upsert_term(key, term, weight)
            self._applied([row], version)
        return version

    async def block_term(self, key: str, term: str) -> int:
        """Admin: take a term down; returns the version from which it is no longer served."""
        async with self._write_lock:
            version, row = await self.store.block_term(key, term)
            self._applied([row], version)
        return version

    def _applied(self, rows: list[TermRow], version: int) -> None:
        self.catalog.apply(rows, version)
        self.metrics.head_version.set(version)
        self.schedule_publish()


def _check_entry(entry: snapshot.Entry) -> None:
    """Raise if ``entry`` cannot go into a snapshot (see :func:`shared.snapshot.build`)."""
    entry.key.encode()
    entry.term.encode()
    if "\n" in entry.term:  # the snapshot joins the display forms with new lines
        raise ValueError("a display form with a new line")
    array("q", [entry.weight])
