"""The core node apart from any feature: its edges, versions, flags, epoch and publishing.

Each edge's link is an :class:`EdgePeer` with a bounded send queue: an edge that falls
``MAX_QUEUED_FRAMES`` behind is disconnected (close 1008 "too slow"); it reconnects and catches
up from its versions, by deltas or a fresh snapshot, so nothing is lost and a slow edge never
holds up the others or grows the core's memory without bound. Frames are encoded once and the
same bytes queued to every edge.

Versions: one global sequence, the store's (each write takes the next, whatever feature it
changes; writes apply under :attr:`CoreNode.write_lock`, in commit order). The node publishes
every feature at once (within ``LIGHTCONE_PUBLISH_DELAY_MS`` of the first pending change), so
the published head says that every version up to it has been sent: heartbeats and ``synced``
carry that head and each data feature's version at it.

Epochs: an epoch names the database the edges' data came from. An edge of this epoch that
holds a version above the head saw versions the database no longer has (it was restored from a
backup): the node adopts a new epoch at once, every data feature re-encodes its base under it,
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
        """The newest version committed (and applied in memory)."""
        self.published = 0
        """Every version up to this one has been sent to every linked edge."""
        self.edges: set[EdgePeer] = set()
        self.peers: dict[str, EdgePeer] = {}
        self.write_lock = asyncio.Lock()
        """Held by every write from commit to apply: versions apply in commit order."""
        self.started = False
        self.features = Registry(make(self) for make in features)
        self._timer: asyncio.TimerHandle | None = None
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
        await claim(store, self.lease(time.time()), shared=bool(self.settings.broker))
        if await store.note_restore(self.settings.restored_from):
            logger.warning(
                "restored from %s: new epoch, edges load a snapshot", self.settings.restored_from
            )
        for feature in self.features:
            await feature.prepare()
        self.epoch = await store.epoch()
        self.committed = self.published = await store.version()
        levels = await store.init_flags({f.name: f.default_level() for f in self.features})
        for feature in self.features:
            feature.level = levels.get(feature.name, feature.default_level())
        for feature in self.features:
            await feature.start()
        self.metrics.head_version.set(self.committed)
        self.metrics.published_version.set(self.published)
        self._tasks.append(spawn("heartbeats", self._heartbeats, self.metrics.task_crashes))
        self._tasks.append(spawn("node_lease", self._renew_lease, self.metrics.task_crashes))
        for feature in self.features:
            if type(feature).run is not Feature.run:
                name = feature.task or f"{feature.name}_run"
                self._tasks.append(spawn(name, feature.run, self.metrics.task_crashes))
        self.started = True

    async def stop(self) -> None:
        await stop(*self._tasks)
        for feature in self.features:
            await feature.close()
        for edge in list(self.edges):
            edge.close(CloseCode.GOING_AWAY, "core shutting down")
        if self.started:
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
        """A feature applied a write of ``version`` (under :attr:`write_lock`): publish soon."""
        self.committed = max(self.committed, version)
        self.metrics.head_version.set(self.committed)
        self.schedule_publish()

    def schedule_publish(self) -> None:
        """Publish within ``publish_delay_ms``: changes in that window share one delta."""
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.settings.publish_delay_ms / 1000, self.publish)

    def publish(self) -> None:
        """Send what every feature has pending, now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        head = self.committed
        for feature in self.features.with_data:
            feature.publish()
        if head > self.published:
            self.published = head
            self.metrics.published_version.set(head)

    def heartbeat(self) -> Heartbeat:
        return Heartbeat(self.published, self.features.versions())

    def sync(self, request_id: int) -> Synced:
        """Publish what is pending; the head every edge will have once its queue drains."""
        self.publish()
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

    def connect(self, hello: Hello) -> EdgePeer:
        """Register an edge and queue what it needs to catch up from the versions it holds.

        Data from another database (``epoch``) counts as none: the edge gets a snapshot.
        An edge of this epoch above the head saw versions the database no longer has (it
        was restored from a backup): the epoch is rotated first (:meth:`rotate_epoch`).
        """
        held = self._held(hello.versions, hello.version)
        if hello.epoch == self.epoch and any(v > self.committed for v in held.values()):
            self.rotate_epoch(
                f"edge {hello.edge_id} holds {_versions(held)}, the head is v{self.committed}"
            )
        if hello.epoch != self.epoch:
            held = dict.fromkeys(held, -1)
        self.publish()
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
        self.publish()
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
        background.
        """
        self.epoch = uuid.uuid4().hex
        logger.warning("rollback found (%s): new epoch %s", reason, self.epoch)
        self.metrics.epoch_rotations.inc()
        self.publish()
        for feature in self.features.with_data:
            feature.epoch_changed()
            frames = feature.catch_up(-1)
            for edge in self.edges_with(feature):
                for frame in frames:
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

    # --- flags -----------------------------------------------------------------------------

    def flags(self) -> Flags:
        return Flags.of({f.name: f.level for f in self.features})

    async def set_level(self, feature: Feature, level: Level) -> None:
        """Store ``feature``'s new flag and push every flag to every edge at once."""
        await self.store.set_flag(feature.name, level)
        feature.level = level
        feature.flag_changed(level)
        self.broadcast(encode(self.flags()))

    # --- heartbeats ------------------------------------------------------------------------

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_s)
            self.broadcast(encode(self.heartbeat()))
            now = time.monotonic()
            for feature in self.features:
                feature.tick(now)


def _versions(versions: dict[str, int]) -> str:
    """``suggest v6, notices v4`` for a log line."""
    return ", ".join(f"{name} v{v}" for name, v in versions.items()) or "no data"


def node_lease(settings: CoreSettings, now: float) -> CoreNodeLease:
    """This process's lease from ``now``: its id is the host and the process, so a node
    restarted on the same host takes its own lease over."""
    host = socket.gethostname()
    return CoreNodeLease(
        f"{host}:{os.getpid()}", host, os.getpid(), settings.region, now + settings.node_lease_s
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


async def claim(store: Store, lease: CoreNodeLease, *, shared: bool = False) -> None:
    """Register ``lease`` on ``store``, or refuse: several core nodes on one store without a
    broker would each apply only their own writes and serve edges diverging data.

    ``shared``: this node has a broker (``LIGHTCONE_BROKER``), so other live nodes are fine.

    Raises:
        ConfigError: another core node holds a live lease and this one has no broker, naming
            it and what to do.
    """
    others = await store.claim_node(lease, time.time(), still_running)
    if others and not shared:
        other = others[0]
        raise ConfigError(
            f"another core node uses the store {store.where}: {other.node_id} (region "
            f"{other.region}), its lease held until {time.ctime(other.lease_until)}. Several "
            "core nodes on one store share changes and cursors through a broker: give every "
            "node the same --broker redis://... (LIGHTCONE_BROKER), or stop that node, or, if "
            "it died on another host, wait for its lease (LIGHTCONE_NODE_LEASE_S) to expire."
        )
