"""The core node apart from any feature: its edges, versions, flags, epoch and publishing.

Each edge's link is an :class:`EdgePeer` with a bounded send queue: an edge that falls
``MAX_QUEUED_FRAMES`` behind is disconnected (close 1008 "too slow"); it reconnects and catches
up from its versions, by deltas or a fresh snapshot, so nothing is lost and a slow edge never
holds up the others or grows the core's memory without bound. Frames are encoded once and the
same bytes queued to every edge.

Versions: one global sequence, the store's, whatever node committed (each write takes the
next, whatever feature it changes). What edges get is decided by the database, not by a node's
memory, so every core node on one store sends the same frames: a node publishes (within
``LIGHTCONE_PUBLISH_DELAY_MS`` of its first write, or at once for a strict read) by recording a
*mark* at the store's head (:meth:`core_region.store.Store.mark`), then *follows* every mark
since its last one, in order; each data feature turns the versions up to a mark into what it
sends (:meth:`core_region.features.Feature.follow`). Other nodes hear of a mark through the
broker (``LIGHTCONE_BROKER``) and follow it too; with a broker they also look for new marks,
flags and epochs in the store every heartbeat, so a lost notification only costs that long.
The published head is the last mark followed: heartbeats and ``synced`` carry it and each data
feature's version at it.

Epochs: an epoch names the database the edges' data came from. An edge of this epoch that
holds a version above the database's head (the node publishes first, so it is the store's head,
not this node's) saw versions the database no longer has (it was restored from a backup): the
node adopts a new epoch at once, every data feature re-encodes its base under it,
and every edge gets it (:meth:`CoreNode.rotate_epoch`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from core_region.features import Feature, Registry
from core_region.metrics import CoreMetrics
from core_region.settings import CoreSettings
from core_region.store import CoreNodeLease, Store
from shared.config import ConfigError
from shared.errors import CloseCode, StoreUnavailable
from shared.http import check_bearer, timed
from shared.protocol import Flags, Heartbeat, Hello, Level, Synced, encode
from shared.tasks import spawn, stop

if TYPE_CHECKING:
    from core_region.broker import Broker

logger = logging.getLogger(__name__)

MAX_QUEUED_FRAMES = 1000

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(eq=False)
class EdgePeer:
    """One connected edge, as the core sees it."""

    edge_id: str
    region: str
    version: int
    connected_at: float
    versions: dict[str, int] = field(default_factory=dict)
    """What the edge holds of each feature with data it has (its features' names are the
    keys): a feature the edge does not have gets none of its frames."""
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


class CoreNode:
    """What every feature of the core may use (``feature.node``)."""

    def __init__(
        self,
        settings: CoreSettings,
        metrics: CoreMetrics,
        features: Sequence[Callable[[CoreNode], Feature]],
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.region = settings.region
        self.store: Store = None  # type: ignore[assignment]  # opened by start()
        self.broker: Broker | None = None
        """What crosses core nodes (``LIGHTCONE_BROKER``); set, and started, before
        :meth:`start`. None: this node is its store's only one."""
        self.epoch = ""
        self.committed = 0
        """The newest version this node committed."""
        self.published = 0
        """The last mark followed: every version up to it has been sent to every linked edge."""
        self.edges: set[EdgePeer] = set()
        self.peers: dict[str, EdgePeer] = {}
        self.write_lock = asyncio.Lock()
        """For a feature that keeps its data outside the store (docs/extending.md): held from
        commit to apply, so it applies versions in commit order."""
        self.started = False
        self.features = Registry(make(self) for make in features)
        self._timer: asyncio.TimerHandle | None = None
        self._publishing = asyncio.Lock()  # one publication or follow at a time, in order
        self._asked = self._done = 0  # publications asked for / done (see publish())
        self._wake = asyncio.Event()  # the publisher has something to do
        self._publish_due = self._changed = False  # the delay is up / others changed things
        self._heard = -1  # the newest mark another node published
        self._retry = False  # a publication failed: the next heartbeat tries again
        self._tasks: list[asyncio.Task[None]] = []
        self._storing: set[asyncio.Task[None]] = set()  # new epochs being stored

    # --- life ------------------------------------------------------------------------------

    async def start(self, store: Store) -> None:
        """Claim this node's lease on ``store``, load every feature from it and start their
        background work.

        Raises:
            ConfigError: another core node holds a live lease on the store (:func:`claim`).
        """
        self.store = store
        await claim(store, self.lease(time.time()))
        if await store.note_restore(self.settings.restored_from):
            logger.warning(
                "restored from %s: new epoch, edges load a snapshot", self.settings.restored_from
            )
        for feature in self.features:
            await feature.prepare()
        self.epoch = await store.epoch()
        self.committed = await store.version()
        levels = await store.init_flags({f.name: f.default_level() for f in self.features})
        for feature in self.features:
            feature.level = levels.get(feature.name, feature.default_level())
        for feature in self.features:
            await feature.start()
        self.published = min((f.version for f in self.features.with_data), default=0)
        await self.publish()
        self.metrics.head_version.set(self.committed)
        self._tasks.append(spawn("publisher", self._publisher, self.metrics.task_crashes))
        self._tasks.append(spawn("heartbeats", self._heartbeats, self.metrics.task_crashes))
        self._tasks.append(spawn("node_lease", self._renew_lease, self.metrics.task_crashes))
        for feature in self.features:
            if type(feature).run is not Feature.run:
                name = feature.task or f"{feature.name}_run"
                self._tasks.append(spawn(name, feature.run, self.metrics.task_crashes))
        self.started = True

    async def stop(self) -> None:
        """Stop everything :meth:`start` began: the background tasks cancelled and awaited,
        a new epoch being stored awaited (one short write), the publication timer cancelled,
        then the lease released. Nothing of this node uses the store once it returns, so the
        caller can close it; the node can be started again (a test restarts a lifespan)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await stop(*self._tasks)
        self._tasks.clear()
        await asyncio.gather(*self._storing, return_exceptions=True)
        for feature in self.features:
            await feature.close()
        for edge in list(self.edges):
            edge.close(CloseCode.GOING_AWAY, "core shutting down")
        if self.started:
            self.started = False
            try:
                await self.store.release_node(self.node_id)
            except Exception as exc:  # best effort: the lease then expires on its own
                logger.warning("could not release this node's lease (it expires): %s", exc)

    @property
    def node_id(self) -> str:
        return self.lease(0).node_id

    def lease(self, now: float) -> CoreNodeLease:
        return node_lease(self.settings, now)

    async def _renew_lease(self) -> None:
        """Renew the lease every third of it; a store that cannot be reached is retried at
        the next turn (the lease lasts three turns)."""
        while True:
            await asyncio.sleep(self.settings.node_lease_s / 3)
            try:
                await self.store.renew_node(self.node_id, self.lease(time.time()).lease_until)
            except StoreUnavailable as exc:
                logger.warning("could not renew this node's lease: %s", exc)

    def ready(self) -> bool:
        return self.started and all(f.ready() for f in self.features)

    def admin(self, name: str, endpoint: Endpoint) -> Endpoint:
        """``endpoint`` of an admin route: bearer-protected (the admin token) and timed
        under ``name``."""

        async def guarded(request: Request) -> Response:
            check_bearer(request, request.app.state.admin_token)
            return await endpoint(request)

        return timed(self.metrics.requests, name)(guarded)

    # --- versions and publishing -----------------------------------------------------------

    def committed_at(self, version: int) -> None:
        """A write of ``version`` committed here: publish soon."""
        self.committed = max(self.committed, version)
        self.metrics.head_version.set(self.committed)
        self.schedule_publish()

    def schedule_publish(self) -> None:
        """Publish within ``publish_delay_ms``: changes in that window share one delta."""
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.settings.publish_delay_ms / 1000, self._due)

    def _due(self) -> None:
        self._timer = None
        self._publish_due = True
        self._wake.set()

    def attach(self, broker: Broker) -> None:
        """Share the store with other core nodes through ``broker``: follow the marks they
        publish, adopt the epoch and flags they change (and look again in the store when
        the broker comes back: notices may have been lost meanwhile)."""
        self.broker = broker
        broker.on("marks", self._heard_mark)
        broker.on("epoch", self._heard_change)
        broker.on("flags", self._heard_change)
        broker.on_up(lambda: self._heard_change("", b""))  # notices may have been lost

    def _heard_mark(self, sender: str, payload: bytes) -> None:
        try:
            mark = int(payload)
        except ValueError:
            self.metrics.drops.drop("broker", payload, ValueError("not a mark"))
            return
        self._heard = max(self._heard, mark)
        self._wake.set()

    def _heard_change(self, sender: str, payload: bytes) -> None:
        self._changed = True
        self._wake.set()

    async def _publisher(self) -> None:
        """Publish when :meth:`schedule_publish`'s delay is up, follow what other nodes
        published, adopt what they changed (a supervised task: one thing at a time, in
        order)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                if self._publish_due:
                    self._publish_due = False
                    await self.publish()
                if self._changed:
                    self._changed = False
                    await self.store_changed()
                heard, self._heard = self._heard, -1  # a bogus notice is not kept
                if heard > self.published:
                    await self.follow(heard)
            except StoreUnavailable as exc:  # the next heartbeat tries again
                logger.warning("could not publish: %s", exc)
                self._retry = True

    async def publish(self) -> int:
        """Publish every version committed before this call, by any node: mark the store's
        head, follow the marks up to it, tell the other nodes. Returns the published head.

        Calls that overlap share the work: one that finds a publication started after it
        was asked for returns when that one is done.

        Raises:
            StoreUnavailable: the store cannot be reached (nothing was sent).
        """
        self._asked += 1
        ticket = self._asked
        async with self._publishing:
            if self._done >= ticket:
                return self.published
            ticket = self._asked
            before = self.published
            mark = await self.store.mark()
            await self._follow(mark)
            self._done = ticket
        if self.broker is not None and mark > before:  # only news: strict reads add none
            self.broker.publish("marks", str(mark).encode())
        return self.published

    async def follow(self, mark: int) -> None:
        """Send what another node published up to ``mark`` (heard through the broker)."""
        if mark > self.published:
            async with self._publishing:
                await self._follow(mark)

    async def _follow(self, upto: int) -> None:
        """Send the marks after the published head up to ``upto`` (under the lock)."""
        if upto <= self.published:
            return
        marks = await self.store.marks(self.published, upto)
        if not marks:
            return
        for feature in self.features.with_data:
            await feature.follow(self.published, marks)
        self.published = marks[-1]
        self.metrics.published_version.set(self.published)

    def heartbeat(self) -> Heartbeat:
        return Heartbeat(self.published, self.features.versions())

    async def sync(self, request_id: int) -> Synced:
        """Publish every version committed so far (by any node): the head every edge will
        have once its queue drains.

        While the store cannot be reached, a node alone on it (no broker) that published
        every version it committed answers with its head: nobody else commits there, and it
        cannot commit either, so nothing newer exists (strict reads go on). With other nodes
        on the store it cannot know what they committed before the store went away.

        Raises:
            StoreUnavailable: the store is away and the head cannot be vouched for.
        """
        try:
            await self.publish()
        except StoreUnavailable:
            if self.settings.broker or self.committed > self.published:
                raise
        return Synced(request_id, self.published, self.features.versions())

    # --- edges -----------------------------------------------------------------------------

    def broadcast(self, frame: bytes, feature: Feature | None = None) -> None:
        """Queue ``frame`` to every edge (that has ``feature``, if given)."""
        for edge in self.edges_with(feature) if feature is not None else self.edges:
            edge.send(frame)

    def edges_with(self, feature: Feature) -> list[EdgePeer]:
        """The linked edges that have ``feature`` (a feature with data)."""
        return [edge for edge in self.edges if feature.name in edge.versions]

    def send_to(self, edge_ids: Iterable[str], frame: bytes) -> None:
        for edge_id in edge_ids:
            peer = self.peers.get(edge_id)
            if peer is not None:
                peer.send(frame)

    def is_current(self, peer: EdgePeer) -> bool:
        """Whether ``peer`` is its edge's newest link (not one a newer link replaced)."""
        return self.peers.get(peer.edge_id) is peer

    async def connect(self, hello: Hello) -> EdgePeer:
        """Register an edge and queue what it needs to catch up from the versions it holds.

        Data from another database (``epoch``) counts as none: the edge gets a snapshot.
        An edge ahead of this node (it came from another node that published later) waits
        for this node to publish; an edge of this epoch still above the head then saw
        versions the database no longer has (it was restored from a backup): the epoch is
        rotated first (:meth:`rotate_epoch`).

        Raises:
            StoreUnavailable: the edge is ahead and the store cannot be reached to catch up.
        """
        held = self._held(hello.versions, hello.version)
        if hello.epoch == self.epoch and any(v > self.published for v in held.values()):
            await self.publish()
        if hello.epoch == self.epoch and any(v > self.published for v in held.values()):
            self.rotate_epoch(
                f"edge {hello.edge_id} holds {_versions(held)}, the head is v{self.published}"
            )
        if hello.epoch != self.epoch:
            held = dict.fromkeys(held, -1)
        peer = EdgePeer(hello.edge_id, hello.region, hello.version, time.time(), held)
        bases = hello.bases if hello.epoch == self.epoch else {}
        for feature in self.features.with_data:
            if feature.name in held:
                for frame in feature.catch_up(held[feature.name], bases.get(feature.name)):
                    peer.send(frame)
        peer.send(encode(self.flags()))
        peer.send(encode(self.heartbeat()))
        old = self.peers.get(hello.edge_id)
        if old is not None:
            old.close(CloseCode.SUPERSEDED, "replaced by a newer link from the same edge")
        self.peers[hello.edge_id] = peer
        self.edges.add(peer)
        self.metrics.edges.set(len(self.edges))
        for feature in self.features:
            feature.edge_linked(peer)
        logger.info("edge %s (%s) connected at %s", hello.edge_id, hello.region, _versions(held))
        return peer

    def _held(self, versions: dict[str, int], version: int) -> dict[str, int]:
        """What an edge holds of each data feature it has: ``versions`` (a feature it does not
        name, it does not have); from an edge before per-feature versions (no ``versions``),
        ``version`` for the feature it carried (:attr:`Feature.legacy_version`)."""
        if versions:
            return {f.name: versions[f.name] for f in self.features.with_data if f.name in versions}
        return {f.name: version for f in self.features.with_data if f.legacy_version}

    def resync(self, peer: EdgePeer, versions: dict[str, int], version: int) -> None:
        """Send ``peer`` again what it lacks of the features it names (a gap)."""
        held = self._held(versions, version)
        for feature in self.features.with_data:
            if feature.name in held:
                for frame in feature.catch_up(held[feature.name]):
                    peer.send(frame)

    def disconnect(self, peer: EdgePeer) -> None:
        self.edges.discard(peer)
        if self.is_current(peer):
            del self.peers[peer.edge_id]
            for feature in self.features:
                feature.edge_gone(peer)
        self.metrics.edges.set(len(self.edges))
        logger.info("edge %s (%s) disconnected", peer.edge_id, peer.region)

    def rotate_epoch(self, reason: str) -> None:
        """Adopt a new epoch at once, so no version of the old one is ever reused.

        Every data feature re-encodes its base under it and every edge gets it (an edge loads
        data of another epoch whatever its version); the new epoch is stored in the
        background, and the other nodes told.
        """
        logger.warning("rollback found (%s)", reason)
        self.metrics.epoch_rotations.inc()
        self.adopt_epoch(uuid.uuid4().hex, "this node")
        stored = asyncio.get_running_loop().create_task(self._store_epoch(self.epoch))
        self._storing.add(stored)
        stored.add_done_callback(self._stored)

    async def _store_epoch(self, epoch: str) -> None:
        await self.store.set_epoch(epoch)
        if self.broker is not None:
            self.broker.publish("epoch", epoch.encode())

    def adopt_epoch(self, epoch: str, by: str) -> None:
        """Make ``epoch`` this node's (made by ``by``) and send every edge its data under it."""
        self.epoch = epoch
        logger.warning("new epoch %s (made by %s): edges load a snapshot", epoch, by)
        for feature in self.features.with_data:
            feature.epoch_changed()
            frames = feature.catch_up(-1)
            for edge in self.edges_with(feature):
                for frame in frames:
                    edge.send(frame)

    def _stored(self, task: asyncio.Task[None]) -> None:
        self._storing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Edges hold the new epoch; the old one back after a restart only costs them a
            # fresh snapshot.
            logger.error("could not store the new epoch", exc_info=task.exception())

    # --- flags -----------------------------------------------------------------------------

    def flags(self) -> Flags:
        return Flags.of({f.name: f.level for f in self.features}, self.settings.bounded_max_age_ms)

    async def set_level(self, feature: Feature, level: Level) -> None:
        """Store ``feature``'s new flag and push every flag to every edge at once."""
        await self.store.set_flag(feature.name, level)
        feature.level = level
        feature.flag_changed(level)
        self.broadcast(encode(self.flags()))
        if self.broker is not None:
            self.broker.publish("flags", feature.name.encode())

    # --- heartbeats ------------------------------------------------------------------------

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_s)
            if self._retry or self.settings.broker:
                await self._look_around()
            self.broadcast(encode(self.heartbeat()))
            now = time.monotonic()
            for feature in self.features:
                feature.tick(now)

    async def _look_around(self) -> None:
        """Publish what failed to publish; with other nodes on the store, catch up with what
        they did that this node did not hear of (a broker message lost or late): marks, the
        epoch, the flags."""
        try:
            if self._retry:
                self._retry = False
                await self.publish()
            if self.settings.broker:
                await self.store_changed()
        except StoreUnavailable as exc:
            logger.warning("could not look for other nodes' changes: %s", exc)

    async def store_changed(self) -> None:
        """Adopt what other nodes changed in the store: its epoch, its flags, and what they
        published (:meth:`follow`)."""
        epoch = await self.store.epoch()
        if epoch != self.epoch:
            self.adopt_epoch(epoch, "another core node")
        levels = await self.store.flags()
        changed = False
        for feature in self.features:
            level = levels.get(feature.name)
            if level is not None and level != feature.level:
                feature.level = level
                feature.flag_changed(level)
                changed = True
        if changed:
            self.broadcast(encode(self.flags()))
        await self.follow(await self.store.last_mark())


def _versions(versions: dict[str, int]) -> str:
    """``suggest v6, notices v4`` for a log line."""
    return ", ".join(f"{name} v{v}" for name, v in versions.items()) or "no data"


def node_lease(settings: CoreSettings, now: float) -> CoreNodeLease:
    """This process's lease from ``now``: its id is the host and the process, so a node
    restarted on the same host takes its own lease over."""
    host = socket.gethostname()
    return CoreNodeLease(
        f"{host}:{os.getpid()}",
        host,
        os.getpid(),
        settings.region,
        now + settings.node_lease_s,
        shared=bool(settings.broker),
    )


def still_running(pid: int) -> bool:
    """Whether process ``pid`` runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it runs, as another user
    return True


async def claim(store: Store, lease: CoreNodeLease) -> None:
    """Register ``lease`` on ``store``, or refuse: several core nodes on one store without a
    broker would each publish only their own writes and serve edges diverging data.

    A ``shared`` lease (the node has a broker, ``LIGHTCONE_BROKER``) lives beside other shared
    ones; a node without a broker is alone on its store.

    Raises:
        ConfigError: another core node holds a live lease that cannot be shared with this
            one, naming it and what to do.
    """
    others = await store.claim_node(lease, time.time(), still_running)
    alone = [other for other in others if not (lease.shared and other.shared)]
    if alone:
        other = alone[0]
        raise ConfigError(
            f"another core node uses the store {store.where}: {other.node_id} (region "
            f"{other.region}), its lease held until {time.ctime(other.lease_until)}. Several "
            "core nodes on one store share changes and cursors through a broker: give every "
            "node the same --broker redis://... (LIGHTCONE_BROKER), or stop that node, or, if "
            "it died on another host, wait for its lease (LIGHTCONE_NODE_LEASE_S) to expire."
        )
