"""The edge's link to the core, apart from any feature: dial, hello, heartbeats, dispatch.

The edge always dials (the core never calls edges). One websocket carries every feature's
messages both ways; the link itself speaks only ``hello``, ``flags``, ``heartbeat``,
``sync``/``synced``, ``resync``'s framing and ``error``, and hands every other message to the
feature that declared it (:class:`edge_node.features.Registry`). Because the link is one ordered
stream, a ``synced`` answer arrives after everything the core had published when it read the
``sync``: waiting for it is waiting for the head. Reads share ``sync``s, at most
``LIGHTCONE_SYNCS_IN_FLIGHT`` in flight and one boarding (:mod:`edge_node.single_flight`), so
the core sees at most that many per round trip of the link whatever the read rate.

Each feature with data has its own :class:`~edge_node.freshness.Freshness`: its version goes
up in ``hello`` and heartbeats; the core's heartbeats and ``synced`` say every feature's
version at the published head, so each feature's ``stale``, ``age_ms`` and catch-up are its
own. A feature without data reports the link's: the time since the core was last heard.

When the link drops, features keep serving from what they hold (their age grows), and the edge
dials again, another core node first when LIGHTCONE_CORE_URL names several
(:mod:`edge_node.cores`: the failed node last, exponential backoff with full jitter that resets
after a healthy session), resuming from the versions it holds: ``hello`` carries them, so a node
of the same database sends only what is missing.

Frames up are bounded (:mod:`edge_node.frames`): long messages are split below
:data:`~shared.protocol.MAX_UP_FRAME_BYTES`, and an item that cannot be encoded is dropped
alone (counted in ``lightcone_items_dropped_total``). Messages features *post* (send soon,
without waiting: cursor traffic) go through one sender with a queue of :data:`MAX_POSTED`;
beyond it they are dropped (counted in ``lightcone_link_posts_dropped_total``) and, once the
queue has drained, each feature that lost some announces its state again
(:meth:`~edge_node.features.Feature.announce`), so the core's picture heals. Each session's
senders run under :func:`shared.tasks.supervise`: one that stops ends the session, and the
edge reconnects. A message whose handler raises is dropped alone (``link_receive``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable

import websockets
from sortedcontainers import SortedKeyList
from websockets.asyncio.client import ClientConnection, connect

from edge_node import cores, memory
from edge_node.breaker import CLOSED, Breaker
from edge_node.features import Feature, Registry
from edge_node.frames import frames
from edge_node.freshness import Freshness, RoundTrips
from edge_node.metrics import EdgeMetrics
from edge_node.settings import EdgeSettings
from edge_node.single_flight import Flight, SingleFlight
from shared.errors import CloseCode, ProtocolError, Unavailable
from shared.protocol import (
    DEFAULT_MAX_AGE_MS,
    PROTOCOL_VERSION,
    Error,
    Flags,
    Heartbeat,
    Hello,
    Level,
    Message,
    Resync,
    Sync,
    Synced,
    decode,
)
from shared.tasks import STOP, spawn, stop

logger = logging.getLogger(__name__)

CONNECTING, UP, DOWN = "connecting", "up", "down"

RELEASE_WAIT_S = 0.5
"""Longest wait for the core's answer to a ping after a snapshot, before it is decoded with the
library's copy of it still held (:meth:`Link._release`): a round trip between regions, well
inside the second an edge has to be ready after a snapshot arrives."""

QUEUED_S = 0.001
"""A frame the link's loop got from the websocket within this of asking was waiting already
(behind the frames handled before it): it arrived no earlier than the last frame the loop
waited for, and its confirmations are dated then (:attr:`Link.frame_at`)."""

MAX_POSTED = 1024
"""Posted messages waiting for the link's sender; beyond it they are dropped (module doc)."""

_Waiter = tuple[int, int, "asyncio.Future[None]"]

_Outcome = tuple[Synced, float] | BaseException
"""How a ``sync`` ended, for the reads it served: the ``synced`` and when it arrived, or the
error."""


class Session:
    """One connection of the link: what a feature may do while it lasts."""

    def __init__(self, link: Link) -> None:
        self._link = link
        self.tasks: list[asyncio.Task[None]] = []

    async def send(self, message: Message) -> None:
        """Send ``message`` now (see :meth:`Link.send`)."""
        await self._link.send(message)

    async def send_frame(self, frame: bytes) -> None:
        await self._link.send_frame(frame)

    def post(self, message: Message, feature: Feature) -> None:
        """Send ``message`` soon, for ``feature`` (see :meth:`Link.post`)."""
        self._link.post(message, feature)

    def spawn(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        """Run a sender for this session, supervised; the session ends if it stops."""
        self.tasks.append(spawn(name, factory, self._link.metrics.task_crashes, policy=STOP))


class Link:
    def __init__(
        self,
        settings: EdgeSettings,
        token: str,
        metrics: EdgeMetrics,
        features: Registry,
        *,
        clock: Callable[[], float] | None = None,
        jitter: Callable[[], float] = random.random,
        resolve: cores.Resolver = cores.system_resolver,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.features = features
        self.edge_id = f"{settings.region}-{uuid.uuid4().hex[:8]}"
        self.state = CONNECTING
        self.epoch = ""
        """The core database the edge's data came from (features that load data say so:
        :meth:`loading`)."""
        self.breaker = Breaker(settings.breaker_failures, settings.breaker_reset_s)
        self.freshness = {f.name: Freshness() for f in features.with_data}
        self.round_trips = RoundTrips()
        """The link's recent round trips: the unseen core→edge delay of ``bounded`` reads."""
        self.default_max_age_ms = DEFAULT_MAX_AGE_MS
        """The core's default bound (``flags.max_age_ms``), for a read that asks for
        ``bounded`` when its feature is strict."""
        self.frame_at: float | None = None
        """No later than the arrival of the frame from the core being handled: when the link's
        loop received it, or, if it was waiting behind others (:data:`QUEUED_S`), when the
        last frame the loop waited for came. What it confirms is dated then, so the time the
        edge spends on a frame (a snapshot's parse) counts in the data's age."""
        self.head = -1
        """The newest global version the core is known to have published or committed."""
        self._token = token
        self.clock = clock or time.monotonic
        """Monotonic seconds (what the event loop's clock reads); a test may pass its own."""
        self._jitter = jitter
        self._resolve = resolve
        self._targets = settings.core_targets
        self.failover = cores.Failover(
            min_s=settings.reconnect_min_s,
            max_s=settings.reconnect_max_s,
            healthy_after_s=settings.link_timeout_s,
        )
        self.core: str | None = None
        """The core node the link is on, or was last dialled (``/status`` ``core``)."""
        self._heard_at: float | None = None
        self._ws: ClientConnection | None = None
        self._send_lock = asyncio.Lock()
        self._ping_ids = itertools.count(1)
        self.flights = SingleFlight()
        """The syncs in flight and the one boarding (:meth:`sync`)."""
        self._landings: dict[int, asyncio.Future[_Outcome]] = {}
        """Each flight's outcome, for its readers (a flight's entry goes when it lands or,
        boarding, when its last reader leaves)."""
        self._flying: set[asyncio.Task[None]] = set()
        self._syncs: dict[int, asyncio.Future[tuple[Synced, float]]] = {}
        """The core's answer to each flight in flight, by its ``sync`` id."""
        self._waiters: dict[str, SortedKeyList] = {
            name: SortedKeyList(key=lambda w: (w[0], w[1])) for name in self.freshness
        }
        self._waiter_ids = itertools.count()
        self._posted: asyncio.Queue[tuple[Message, Feature]] = asyncio.Queue(MAX_POSTED)
        self._overflowed: set[str] = set()

    # --- freshness -------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock()

    def version(self, feature: str) -> int:
        """The version ``feature`` holds; for a feature without data, the core's head."""
        fresh = self.freshness.get(feature)
        return fresh.version if fresh is not None else self.head

    def age_ms(self, feature: str) -> int:
        """Milliseconds since ``feature``'s data was last known current; for a feature
        without data, since the core was last heard."""
        fresh = self.freshness.get(feature)
        if fresh is not None:
            return fresh.age_ms(self.clock())
        heard = self.heard_ms()
        return heard if heard is not None else 0

    def heard_ms(self) -> int | None:
        """Milliseconds since the last frame from the core; None if none ever came."""
        if self._heard_at is None:
            return None
        return int((self.clock() - self._heard_at) * 1000)

    def round_trip_ms(self) -> int | None:
        """The round trip to assume for the delay the edge cannot see (:class:`RoundTrips`)."""
        return self.round_trips.bound_ms(self.clock())

    def _arrived(self) -> float:
        """When the frame being handled arrived, at the latest (:attr:`frame_at`)."""
        return self.clock() if self.frame_at is None else self.frame_at

    def advanced(self, feature: str, version: int) -> None:
        """``feature`` applied data up to ``version`` (from the frame being handled): wake the
        readers it now satisfies."""
        self.freshness[feature].advanced(version, self._arrived())
        self.head = max(self.head, version)
        self._wake(feature)

    def _wake(self, feature: str) -> None:
        """Wake the readers of ``feature`` whose version its data now reflects:
        O(woken + log n), not O(waiting)."""
        fresh = self.freshness[feature]
        reach = max(fresh.version, fresh.current_at)
        waiters = self._waiters[feature]
        while waiters and waiters[0][0] <= reach:
            fut = waiters.pop(0)[2]
            if not fut.done():
                fut.set_result(None)

    def loading(self, epoch: str) -> None:
        """A feature loads data of database ``epoch``: if that is another database than the
        edge's, versions start afresh (the global head and what every feature reflects)."""
        if epoch != self.epoch:
            self.epoch, self.head = epoch, -1
            for fresh in self.freshness.values():
                fresh.restarted()

    def core_at(self, version: int) -> None:
        """The core is known to have ``version`` (an ack, a snapshot)."""
        self.head = max(self.head, version)

    # --- the connection loop -------------------------------------------------------------

    async def run(self) -> None:
        """Stay linked to a core node until cancelled, failing over between the nodes of
        LIGHTCONE_CORE_URL by :class:`~edge_node.cores.Failover`'s rule. Cancelled (the edge
        stops), it ends the syncs in flight too: their readers are answered
        ``core_unreachable`` and nothing more is sent (:meth:`_fly`)."""
        try:
            while True:
                candidate = self.failover.choose(await self._candidates(), self.clock())
                if candidate is not None:
                    self.core = candidate.name
                    await self._dial(candidate)
                delay = self.failover.ended(self.clock(), self._jitter())
                self.metrics.reconnects.inc()
                await asyncio.sleep(delay)
        finally:
            await stop(*self._flying)

    async def _candidates(self) -> list[cores.Candidate]:
        """The core nodes to choose from, names resolved afresh (in a thread: getaddrinfo
        blocks; bounded by the link timeout)."""
        try:
            async with asyncio.timeout(self.settings.link_timeout_s):
                found, problems = await asyncio.to_thread(
                    cores.resolve, self._targets, self._resolve
                )
        except TimeoutError:
            found, problems = [], ["resolving the core URLs timed out"]
        for problem in problems:
            logger.warning("link: %s", problem)
        return found

    async def _dial(self, candidate: cores.Candidate) -> None:
        """Link to ``candidate`` and serve the session until it ends (however it ends)."""
        target = candidate.target
        try:
            async with connect(
                target.link_url,
                host=candidate.address,  # the address chosen; the URL's name stays the
                port=target.port,  # Host header and the TLS server name
                proxy=None,
                additional_headers={"Authorization": f"Bearer {self._token}"},
                max_size=self.settings.max_snapshot_bytes,
                ping_interval=None,
                open_timeout=self.settings.link_timeout_s,
                close_timeout=1,
                compression=None,
            ) as ws:
                self.failover.opened(self.clock())
                await self._run_session(ws)
        except websockets.ConnectionClosed as exc:
            self._closed(exc)
        except websockets.InvalidStatus as exc:
            self._refused(exc)
        except (OSError, TimeoutError, websockets.WebSocketException, Unavailable) as exc:
            logger.warning("link to %s failed: %s", candidate.name, exc)
        finally:
            self._down()

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
            logger.warning("link to %s refused: %s", self.core, exc)

    def hello(self) -> Hello:
        versions = {f.name: f.hello_version() for f in self.features.with_data}
        bases = {
            f.name: base for f in self.features.with_data if (base := f.hello_base()) is not None
        }
        # ``version`` for a core from before per-feature versions: the first data feature's.
        legacy = next(iter(versions.values()), -1)
        region, edge_id = self.settings.region, self.edge_id
        return Hello(region, edge_id, legacy, self.epoch, PROTOCOL_VERSION, versions, bases)

    async def _run_session(self, ws: ClientConnection) -> None:
        self._ws = ws
        session = Session(self)
        await self.send(self.hello())
        self._set_state(UP)
        held = ", ".join(f"{n} v{v}" for n, v in self.hello().versions.items()) or "no data"
        logger.info("link up to %s at %s", self.core, held)
        for feature in self.features:
            feature.link_up(session)  # ahead of every posted message of this session
        session.spawn("link_heartbeats", self._send_heartbeats)
        session.spawn("link_posts", self._send_posted)
        try:
            while True:
                try:
                    asked = self.clock()
                    async with asyncio.timeout(self.settings.link_timeout_s):
                        data = await ws.recv(decode=False)
                    self._heard_at = self.clock()
                    self.failover.heard(self._heard_at)
                    if self.frame_at is None or self._heard_at - asked >= QUEUED_S:
                        self.frame_at = self._heard_at
                except TimeoutError:
                    logger.warning(
                        "core silent for %.1f s: closing link", self.settings.link_timeout_s
                    )
                    # A silent core (a dead host, a black hole) will not answer the close
                    # either: send it without waiting, and move on to another node at once.
                    ws.close_timeout = 0
                    await ws.close(CloseCode.LINK_TIMEOUT, "heartbeat timeout")
                    return
                if len(data) >= memory.MMAP_FROM:  # a snapshot
                    await self._release(ws)
                message = self._decoded(data)
                del data  # a snapshot's frame is as large as its data: not held while it loads
                if message is not None:
                    await self._handle(message)
                if any(task.done() for task in session.tasks):
                    # A sender stopped (it crashed, logged and counted): start afresh. The
                    # core's heartbeats wake this loop at least every heartbeat interval.
                    logger.warning("a link sender stopped: closing the link to reconnect")
                    await ws.close(CloseCode.INTERNAL_ERROR, "link sender stopped")
                    return
        finally:
            await stop(*session.tasks)

    def _down(self) -> None:
        self._ws = None
        self.round_trips.reset()
        self.frame_at = None
        # Posted messages are volatile: each feature announces itself again on the next link.
        while not self._posted.empty():
            self._posted.get_nowait()
        self._overflowed.clear()
        was_up = self.state == UP
        self._set_state(DOWN)
        if was_up:
            for feature in self.features:
                feature.link_down()
        for fut in self._syncs.values():
            if not fut.done():
                fut.set_exception(
                    Unavailable("the link to the core dropped", code="core_unreachable")
                )
        self._syncs.clear()

    def _set_state(self, state: str) -> None:
        self.state = state
        self.metrics.link_state.state(state)

    # --- sending ---------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        """Send ``message`` in as many frames as its size needs; poison is dropped alone.

        Raises:
            Unavailable: the link is down, or dropped during the send.
        """
        sent, dropped = frames(message)
        for item in dropped:
            self.metrics.drops.drop("link_send", item)
        for frame in sent:
            await self.send_frame(frame)

    async def send_frame(self, frame: bytes) -> None:
        ws = self._ws
        if ws is None:
            raise Unavailable("the link to the core is down", code="core_unreachable")
        try:
            async with self._send_lock:
                await ws.send(frame)
        except websockets.ConnectionClosed:
            raise Unavailable("the link to the core dropped", code="core_unreachable") from None

    def post(self, message: Message, feature: Feature) -> None:
        """Send ``message`` soon, without waiting; dropped if the link is down (volatile) or
        :data:`MAX_POSTED` messages wait (then ``feature`` announces itself again, module
        doc)."""
        if self._ws is None:
            return
        try:
            self._posted.put_nowait((message, feature))
        except asyncio.QueueFull:
            self.metrics.link_posts_dropped.inc()
            self._overflowed.add(feature.name)

    async def _send_posted(self) -> None:
        """The one sender of posted messages (an ended link ends it)."""
        with contextlib.suppress(Unavailable):
            while True:
                await self.send((await self._posted.get())[0])
                if self._overflowed and self._posted.empty():
                    names, self._overflowed = self._overflowed, set()
                    for name in sorted(names):
                        feature = self.features[name]
                        for message in feature.announce():
                            self.post(message, feature)

    async def _send_heartbeats(self) -> None:
        with contextlib.suppress(Unavailable):
            while True:
                hello = self.hello()
                await self.send(Heartbeat(hello.version, hello.versions))
                await self._ping()
                await asyncio.sleep(self.settings.heartbeat_s)

    async def _ping(self) -> None:
        """Measure the link's round trip with a websocket ping (:class:`RoundTrips`), without
        waiting for the pong: the core's websocket library answers it as it reads it."""
        ws = self._ws
        if ws is None:
            return
        trip = self.round_trips.started(self.clock())
        try:
            pong = asyncio.ensure_future(await ws.ping(self._ping_payload()))
        except websockets.ConnectionClosed:
            self.round_trips.dropped(trip)
            return
        pong.add_done_callback(functools.partial(self._ponged, trip))

    def _ping_payload(self) -> str:
        """A ping's payload of its own: the library's default draws on the process's global
        random generator (shared with everything else in the process)."""
        return f"p{next(self._ping_ids)}"

    def _ponged(self, trip: int | None, pong: asyncio.Future[float]) -> None:
        if pong.cancelled() or pong.exception() is not None:
            self.round_trips.dropped(trip)
        else:
            self.round_trips.ended(trip, self.clock())

    async def resync(self, feature: Feature) -> None:
        """Ask the core again for ``feature``'s data from the version it holds (a gap)."""
        self.metrics.gaps.inc()
        version = feature.hello_version()
        await self.send(Resync(version, {feature.name: version}))

    # --- what the core sends -------------------------------------------------------------

    async def _release(self, ws: ClientConnection) -> None:
        """Give back what receiving a large message took, before it is decoded.

        The websocket library's parser keeps the payload of the last frame it read (a copy
        of the message as large as it) until the next frame comes: the answer to a ping is
        one, waited for at most :data:`RELEASE_WAIT_S`. Then the C heap is trimmed
        (edge_node/memory.py).
        """
        with contextlib.suppress(TimeoutError, websockets.ConnectionClosed):
            async with asyncio.timeout(RELEASE_WAIT_S):
                await (await ws.ping(self._ping_payload()))
        await asyncio.to_thread(memory.give_back)

    async def receive(self, data: bytes | str) -> None:
        """Act on one frame from the core; one that cannot be decoded or handled is dropped
        alone (logged; a handler's failure counted under ``link_receive``)."""
        message = self._decoded(data)
        if message is not None:
            self.frame_at = self.clock()
            await self._handle(message)

    def _decoded(self, data: bytes | str) -> Message | None:
        """The message of a frame from the core; ``None`` (logged) if it has none."""
        try:
            # A newer core may send fields this edge does not know: they are dropped.
            return decode(data if isinstance(data, bytes) else data.encode(), strict=False)
        except ProtocolError as exc:
            if exc.code == "unknown_type":  # a feature this edge does not have (a newer core)
                logger.warning("a message this edge has no feature for: %s", exc)
            else:
                logger.error("undecodable message from the core: %s", exc)
            return None

    async def _handle(self, message: Message) -> None:
        """Act on a decoded message from the core (:meth:`receive`)."""
        own = self._OWN.get(type(message))
        try:
            if own is not None:
                own(self, message)
                return
            feature = self.features.link.get(type(message))
            if feature is None:
                logger.warning("no feature handles %r from the core: dropped", message.TYPE)
                return
            await feature.on_link(message)
        except Exception as exc:  # one message must not end the link (no poison pill)
            self.metrics.drops.drop("link_receive", message, exc)

    def _flags(self, message: Flags) -> None:
        levels = message.read()
        self.default_max_age_ms = message.default_max_age_ms()
        for feature in self.features:
            level = levels.get(feature.name, Level())
            feature.level = level
            feature.flag_changed(level)

    def _heartbeat(self, message: Heartbeat) -> None:
        self._heard(message.version, message.versions)

    def _heard(self, head: int, versions: dict[str, int]) -> None:
        """The core published up to ``head``, with each feature at ``versions``."""
        self.head = max(self.head, head)
        now = self._arrived()
        for name, fresh in self.freshness.items():
            fresh.heard(head, versions.get(name, head), now)
            self._wake(name)

    def _synced(self, message: Synced) -> None:
        self._heard(message.version, message.versions)
        fut = self._syncs.pop(message.id, None)
        if fut is not None and not fut.done():
            fut.set_result((message, self._arrived()))

    def _error(self, message: Error) -> None:
        """An error from the core: one that answers a strict read's ``sync`` fails it fast
        (e.g. ``store_unavailable``: the core cannot reach its database)."""
        logger.warning("the core says: %s (%s)", message.message, message.code)
        fut = self._syncs.pop(message.id, None) if isinstance(message.id, int) else None
        if fut is not None and not fut.done():
            fut.set_exception(Unavailable(message.message, code=message.code))

    _OWN: dict[type[Message], Callable[[Link, Message], None]] = {
        Flags: _flags,  # type: ignore[dict-item]
        Heartbeat: _heartbeat,  # type: ignore[dict-item]
        Synced: _synced,  # type: ignore[dict-item]
        Error: _error,  # type: ignore[dict-item]
    }
    """The link's own messages from the core (every other type goes to its feature)."""

    # --- what requests ask of the link ---------------------------------------------------

    def version_waiters(self, feature: str) -> int:
        """Readers waiting for a version of ``feature`` (each leaves when answered, timed out
        or cancelled)."""
        return len(self._waiters[feature])

    async def wait_version(self, feature: str, version: int) -> None:
        """Return once ``feature``'s data reflects global ``version``
        (:meth:`Freshness.reflects`; callers bound the wait; a waiter is removed however the
        wait ends)."""
        if self.freshness[feature].reflects(version):
            return
        waiter: _Waiter = (
            version,
            next(self._waiter_ids),
            asyncio.get_running_loop().create_future(),
        )
        self._waiters[feature].add(waiter)
        try:
            await waiter[2]
        finally:
            self._waiters[feature].discard(waiter)

    async def sync(self, feature: str, timeout_s: float) -> int:
        """Bring ``feature`` up to the core's head as of this call; returns that head.

        The ``sync`` that answers it is one sent after the call, shared with every read that
        waits for it (:mod:`edge_node.single_flight`: ``LIGHTCONE_SYNCS_IN_FLIGHT`` in flight
        per link, one boarding);
        then ``feature``'s data is waited for up to its version at that head, per read.

        Raises:
            Unavailable: ``core_unreachable`` at once if the link is down or the breaker is
                open, or when the flight this read boarded finds them so; ``strict_timeout``
                after ``timeout_s``, whatever the flight does.
        """
        flight, send = self.flights.join(self.clock(), timeout_s, self._capacity())
        landing = self._landings.get(flight.id)
        if landing is None:
            landing = self._landings[flight.id] = asyncio.get_running_loop().create_future()
        if send:
            self._launch(flight)
        try:
            async with asyncio.timeout(timeout_s):
                # Shielded: a read that leaves (timed out, cancelled) never ends the flight.
                outcome = await asyncio.shield(landing)
                if isinstance(outcome, BaseException):
                    raise _afresh(outcome)
                synced, arrived = outcome
                fresh = self.freshness.get(feature)
                if fresh is not None:
                    await self.wait_version(feature, synced.versions.get(feature, synced.version))
                    fresh.confirm(arrived)  # its deltas came before it: current as it came
        except TimeoutError:
            ms = int(timeout_s * 1000)
            raise Unavailable(
                f"no answer from the core within {ms} ms", code="strict_timeout"
            ) from None
        finally:
            self.flights.leave(flight)
            if flight.sent_at is None and flight is not self.flights.boarding:
                del self._landings[flight.id]  # its last reader left before it was sent
        return synced.version

    def _launch(self, flight: Flight | None) -> None:
        """Send ``flight`` now, and the flights that follow it at once if the breaker refuses
        it (the breaker is asked once per flight: its readers are one call to the core)."""
        while flight is not None:
            if self.breaker.allow(self.clock()):
                task = asyncio.get_running_loop().create_task(self._fly(flight))
                self._flying.add(task)
                task.add_done_callback(self._flying.discard)
                return
            refused = Unavailable(
                "circuit breaker open: the core is not answering", code="core_unreachable"
            )
            flight = self._land(flight, refused)

    def _land(self, flight: Flight, outcome: _Outcome) -> Flight | None:
        """``flight`` ended with ``outcome``: tell its readers; the flight to send next."""
        landing = self._landings.pop(flight.id)
        if not landing.done():
            landing.set_result(outcome)
        return self.flights.landed(flight, self.clock(), self._capacity())

    def _capacity(self) -> int:
        """Syncs that may be in flight now: the setting's while the breaker is closed; one
        otherwise (a half-open trial flies alone, and reads wait for its verdict)."""
        now = self.clock()
        return self.settings.syncs_in_flight if self.breaker.state(now) == CLOSED else 1

    async def _fly(self, flight: Flight) -> None:
        """Send ``flight``'s ``sync`` and wait for its ``synced`` until the latest deadline of
        its readers; give the breaker its verdict (whatever happens, once) and send the next
        flight."""
        answer: asyncio.Future[tuple[Synced, float]] = asyncio.get_running_loop().create_future()
        self._syncs[flight.id] = answer
        trip = self.round_trips.started(self.clock())  # a sync is a round trip: measured too
        outcome: _Outcome = Unavailable("the edge stopped", code="core_unreachable")
        verdict: bool | None = None  # no verdict if the edge stops (this task is cancelled)
        try:
            async with asyncio.timeout(max(0.0, flight.deadline - self.clock())):
                await self.send(Sync(flight.id))
                self.metrics.core_syncs.inc()
                outcome = await answer
            self.round_trips.ended(trip, outcome[1])
            verdict = True
        except TimeoutError:
            self.round_trips.ended(trip, self.clock())  # at least this long
            outcome = TimeoutError()  # the latest reader's deadline: each says its own
            verdict = False
        except Exception as exc:
            outcome = exc
            verdict = False
        finally:
            self._syncs.pop(flight.id, None)
            self.round_trips.dropped(trip)
            if verdict is None:
                self.breaker.release()
            elif verdict:
                self.breaker.success()
            else:
                self.breaker.failure(self.clock())
            following = self._land(flight, outcome)
            if verdict is None:  # the edge stops: nothing more is sent
                while following is not None:
                    following = self._land(following, outcome)
            self._launch(following)


def _afresh(error: BaseException) -> BaseException:
    """A flight's error, for one of its readers: an :class:`Unavailable` or a timeout is
    raised as a new one per reader (one instance raised by each would gather all their
    tracebacks); a timeout then reads as the reader's own."""
    if isinstance(error, Unavailable):
        return type(error)(error.message, code=error.code)
    if isinstance(error, TimeoutError):
        return TimeoutError()
    return error
