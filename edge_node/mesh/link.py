"""The edge mesh's sockets: a private listener, a dialer per peer this edge dials, and one
session per open link. The decisions are :class:`~edge_node.mesh.peers.MeshTable`'s.

Listener: a websockets server of its own on ``LIGHTCONE_MESH_HOST:LIGHTCONE_MESH_PORT``,
apart from the public listener (which has no ``/mesh`` route: 404), so that the mesh is
reachable on the private network only: bind it to a private address (loopback in the demo,
``fly-local-6pn`` on Fly.io, where no service exposes its port). It answers only
``/mesh`` (else 404), and only with the link token in ``Authorization: Bearer`` (else 401
before any websocket), as the core's ``/link``.

A session: the dialer sends ``mesh_hello``, the other side checks it (its region, the dial
rule, the link budget; a refusal is a named close) and answers with its own; then each side
sends its ticks (``mesh_moves``, queued: :data:`~edge_node.mesh.peers.MAX_PEER_FRAMES`) and a
``mesh_beat`` every half heartbeat. A link silent for ``LIGHTCONE_LINK_TIMEOUT_S`` is closed
(4408); a newer link of the same region replaces an older one (4409). A dialer that fails
or ends tries again after an exponential backoff with full jitter
(``LIGHTCONE_RECONNECT_MIN_S`` .. ``LIGHTCONE_RECONNECT_MAX_S``), reset by a session that
lasted a link timeout; the peer's name is resolved again on every dial (6PN DNS).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Protocol

import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.connection import Connection
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from edge_node.frames import by_items, frames, splits
from edge_node.mesh.peers import (
    ADMITTED,
    FULL,
    MAX_PEER_FRAMES,
    SAME_REGION,
    WRONG_DIALER,
    MeshTable,
    PeerLink,
)
from edge_node.metrics import EdgeMetrics
from edge_node.settings import EdgeSettings
from shared.errors import CloseCode, ProtocolError
from shared.http import bearer_matches
from shared.protocol import (
    MAX_UP_FRAME_BYTES,
    MESH_PATH,
    PROTOCOL_VERSION,
    MeshBeat,
    MeshHello,
    MeshMoves,
    Message,
    Moves,
    check_protocol,
    decode,
    encode,
)
from shared.tasks import backoff_s, spawn, stop

logger = logging.getLogger(__name__)

MAX_MESH_FRAME_BYTES = MAX_UP_FRAME_BYTES
"""Largest mesh frame either way: a tick's ``mesh_moves`` is split by room below it."""

splits(MeshMoves, by_items("batches", MeshMoves))

REFUSALS = {
    SAME_REGION: (CloseCode.POLICY_VIOLATION, "same region"),
    WRONG_DIALER: (CloseCode.POLICY_VIOLATION, "the region that sorts first dials"),
    FULL: (CloseCode.TRY_AGAIN_LATER, "mesh full"),
}
"""How each refusal of :meth:`MeshTable.admit` closes the link."""


class MeshHandler(Protocol):
    """What the cursor feature does with the mesh's news."""

    def mesh_changed(self, region: str, up: bool) -> None: ...

    def mesh_moves(self, region: str, message: MeshMoves) -> None: ...


class _Session:
    def __init__(self, link: PeerLink, ws: Connection) -> None:
        self.link = link
        self.ws = ws
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(MAX_PEER_FRAMES)


class Mesh:
    """The mesh of one edge (module doc); :meth:`run` for the edge's lifetime."""

    def __init__(
        self,
        settings: EdgeSettings,
        token: str,
        metrics: EdgeMetrics,
        edge_id: Callable[[], str],
        handler: MeshHandler,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.table = MeshTable(
            settings.region, settings.mesh_peer_map(), max_peers=settings.mesh_max_peers
        )
        self.fresh_s = settings.heartbeat_s
        """A link unheard (either way) for longer is not ready (peers module doc)."""
        self.port: int | None = None
        """The mesh listener's port, once it listens."""
        self._token = token
        self._edge_id = edge_id
        self._handler = handler
        self._clock = clock
        self._sessions: dict[str, _Session] = {}
        metrics.mesh_links.set_function(lambda: len(self._sessions))

    # --- what the cursor feature asks ----------------------------------------------------

    def ready(self) -> frozenset[str]:
        """The regions whose link may carry this tick's frame."""
        return self.table.ready(self._clock(), self.fresh_s, self._queued())

    def send(self, region: str, batches: list[Moves]) -> None:
        """Queue a tick's ``batches`` to the peer of ``region`` (volatile: dropped, counted,
        if the link is gone or its queue full)."""
        session = self._sessions.get(region)
        sent, dropped = frames(MeshMoves(batches), MAX_MESH_FRAME_BYTES)
        if session is None or session.queue.qsize() + len(sent) > MAX_PEER_FRAMES:
            self.metrics.mesh_frames_dropped.inc(len(sent) + len(dropped))
            return
        self.metrics.mesh_frames_dropped.inc(len(dropped))
        for frame in sent:
            session.queue.put_nowait(frame)
        self.metrics.mesh_moves_sent.inc(sum(len(b.moves) for b in batches))

    def status(self) -> dict[str, object]:
        return {
            "port": self.port,
            "peers": self.table.view(self._clock(), self.fresh_s, self._queued()),
        }

    def _queued(self) -> dict[str, int]:
        return {region: s.queue.qsize() for region, s in self._sessions.items()}

    # --- the lifetime --------------------------------------------------------------------

    async def run(self) -> None:
        """Listen (if a port is set) and dial every peer this edge dials, until cancelled."""
        tasks = [
            spawn(f"mesh_dial_{region}", self._dialer(region, url), self.metrics.task_crashes)
            for region, url in self.table.dialed().items()
        ]
        try:
            if self.settings.mesh_port is not None:
                await self._listen()
            await asyncio.Event().wait()  # until cancelled
        finally:
            await stop(*tasks)

    async def _listen(self) -> None:
        """Serve the mesh listener until cancelled; an address that cannot be bound (not
        there yet, or taken) is tried again with backoff, and said once as a warning."""
        failures = 0
        while True:
            try:
                server = await serve(
                    self._accept,
                    self.settings.mesh_host,
                    self.settings.mesh_port,
                    process_request=self._check,
                    max_size=MAX_MESH_FRAME_BYTES,
                    ping_interval=None,
                    open_timeout=self.settings.handshake_timeout_s,
                    close_timeout=1,
                    compression=None,
                )
            except OSError as exc:
                if failures == 0:
                    logger.warning(
                        "mesh listener cannot listen on %s:%s (%s): trying again; meanwhile "
                        "peers that dial this edge go through the core",
                        self.settings.mesh_host,
                        self.settings.mesh_port,
                        exc,
                    )
                failures += 1
                await asyncio.sleep(self._backoff(failures))
                continue
            break
        self.port = next(iter(server.sockets)).getsockname()[1]
        logger.info("mesh listening on ws://%s:%d%s", self.settings.mesh_host, self.port, MESH_PATH)
        try:
            await asyncio.Event().wait()
        finally:
            server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await server.wait_closed()

    def _backoff(self, failures: int) -> float:
        """Exponential, with full jitter, between the reconnect bounds."""
        return backoff_s(
            failures,
            min_s=self.settings.reconnect_min_s,
            max_s=self.settings.reconnect_max_s,
            jitter=random.random(),
        )

    def _dialer(self, region: str, url: str) -> Callable[[], Awaitable[None]]:
        async def dial_forever() -> None:
            failures = 0
            while True:
                started = self._clock()
                await self._dial(region, url)
                if self._clock() - started >= self.settings.link_timeout_s:
                    failures = 0  # a healthy session: the next attempt is quick again
                delay = self._backoff(failures)
                failures += 1
                await asyncio.sleep(delay)

        return dial_forever

    async def _dial(self, region: str, url: str) -> None:
        try:
            async with connect(
                url,
                additional_headers={"Authorization": f"Bearer {self._token}"},
                max_size=MAX_MESH_FRAME_BYTES,
                ping_interval=None,
                open_timeout=self.settings.link_timeout_s,
                close_timeout=1,
                compression=None,
                proxy=None,
            ) as ws:
                await ws.send(encode(self._hello()))
                hello = await self._hello_from(ws)
                if hello is None:
                    return
                if hello.region != region:
                    logger.warning("mesh peer at %s is %r, not %r", url, hello.region, region)
                    await ws.close(CloseCode.POLICY_VIOLATION, "unexpected region")
                    return
                await self._session(ws, hello)
        except websockets.ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else None
            logger.info("mesh link to %s closed (%s)", region, code)
        except websockets.InvalidStatus as exc:
            logger.error(
                "mesh peer %s refused the link (HTTP %d): check LIGHTCONE_LINK_TOKEN",
                region,
                exc.response.status_code,
            )
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            logger.debug("mesh link to %s failed: %s", region, exc)

    def _hello(self) -> MeshHello:
        return MeshHello(self.settings.region, self._edge_id(), PROTOCOL_VERSION)

    async def _hello_from(self, ws: Connection) -> MeshHello | None:
        """The peer's ``mesh_hello``, or None once the link is closed for its absence."""
        try:
            async with asyncio.timeout(self.settings.link_timeout_s):
                message = decode(await ws.recv(decode=False), strict=False)
        except (TimeoutError, ProtocolError):
            message = None
        if not isinstance(message, MeshHello):
            self.metrics.mesh_refused.labels("no_hello").inc()
            await ws.close(CloseCode.POLICY_VIOLATION, "expected mesh_hello")
            return None
        try:
            check_protocol(message.protocol)
        except ProtocolError as exc:
            self.metrics.mesh_refused.labels("protocol").inc()
            await ws.close(CloseCode.UNSUPPORTED_PROTOCOL, exc.code)
            return None
        return message

    # --- the listener --------------------------------------------------------------------

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse, before any websocket, a request for another path or without the token."""
        if request.path != MESH_PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        if not bearer_matches(request.headers.get("Authorization"), self._token):
            self.metrics.mesh_refused.labels("unauthorized").inc()
            logger.warning(
                "refused a mesh link from %s: invalid link token", connection.remote_address
            )
            return connection.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong link token\n")
        return None

    async def _accept(self, ws: ServerConnection) -> None:
        hello = await self._hello_from(ws)
        if hello is None:
            return
        verdict = self.table.admit(hello.region)
        if verdict != ADMITTED:
            self.metrics.mesh_refused.labels(verdict).inc()
            code, reason = REFUSALS[verdict]
            logger.warning("refused a mesh link from %s: %s", hello.region, reason)
            await ws.close(code, reason)
            return
        await ws.send(encode(self._hello()))
        await self._session(ws, hello)

    # --- a session -----------------------------------------------------------------------

    async def _session(self, ws: Connection, hello: MeshHello) -> None:
        region = hello.region
        old = self._sessions.get(region)
        if old is not None:
            await old.ws.close(CloseCode.SUPERSEDED, "a newer mesh link")
        session = _Session(self.table.opened(region, hello.edge_id, self._clock()), ws)
        self._sessions[region] = session
        logger.info("mesh link up with %s (%s)", region, hello.edge_id)
        self._handler.mesh_changed(region, True)
        tasks = [
            spawn(f"mesh_send_{region}", lambda: self._send(session), self.metrics.task_crashes),
            spawn(f"mesh_beat_{region}", lambda: self._beat(session), self.metrics.task_crashes),
        ]
        try:
            await self._receive(session)
        finally:
            await stop(*tasks)
            if self.table.closed(session.link):
                del self._sessions[region]
                logger.info("mesh link down with %s", region)
                self._handler.mesh_changed(region, False)

    async def _receive(self, session: _Session) -> None:
        ws, link = session.ws, session.link
        while True:
            try:
                async with asyncio.timeout(self.settings.link_timeout_s):
                    data = await ws.recv(decode=False)
            except TimeoutError:
                logger.warning("mesh peer %s silent: closing", link.region)
                ws.close_timeout = 0
                await ws.close(CloseCode.LINK_TIMEOUT, "heartbeat timeout")
                return
            except websockets.ConnectionClosed:
                return
            now = self._clock()
            link.heard(now)
            try:
                message: Message = decode(data, strict=False)
            except ProtocolError as exc:
                logger.warning("undecodable mesh frame from %s: %s", link.region, exc)
                continue
            if isinstance(message, MeshBeat):
                link.beat(message.heard_ms, now)
            elif isinstance(message, MeshMoves):
                self.metrics.mesh_moves_received.inc(sum(len(b.moves) for b in message.batches))
                try:
                    self._handler.mesh_moves(link.region, message)
                except Exception as exc:  # no poison pill: this frame alone is lost
                    self.metrics.drops.drop("mesh_receive", message, exc)
            else:
                logger.warning("unexpected %r on the mesh from %s", message.TYPE, link.region)

    async def _send(self, session: _Session) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await session.ws.send(await session.queue.get())

    async def _beat(self, session: _Session) -> None:
        """Two beats per heartbeat, each saying how long ago this edge heard the peer (in the
        queue, after the ticks before it: one sender per websocket)."""
        while True:
            heard_ms = int((self._clock() - session.link.heard_at) * 1000)
            await session.queue.put(encode(MeshBeat(heard_ms)))
            await asyncio.sleep(self.settings.heartbeat_s / 2)
