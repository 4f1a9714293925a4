"""The edge's client websocket ``/ws``: msgpack binary frames, or JSON text frames.

The client picks the codec and protocol version with a subprotocol:
``lightcone.msgpack.v1`` (msgpack is the default when it asks for none) or
``lightcone.json.v1``; the names without a version mean version 1
(:func:`shared.protocol.choose_subprotocol`). A frame is decoded by its own kind (text as
JSON, binary as msgpack), strictly: an unknown field is refused; answers use the negotiated
codec.

Bounds (see docs/protocol.md): frames over ``max_frame_bytes`` are closed by the server with
1009; invalid UTF-8 in a text frame with 1007; messages over the per-connection rate get an
``error`` with code ``rate_limited`` and are dropped (moves silently, with one error a
second); at most ``MAX_IN_FLIGHT`` requests that wait on the core run at once per
connection. Bad messages get an ``error`` message and the connection stays open.

Backpressure: everything sent to a client goes through its own queue and writer task, so a
client that stops reading delays nobody else. Room frames (``moves``, ``joined``, ``left``,
``room_status``) are dropped when ``max_queued_frames`` are waiting; once the queue drains
the client gets a fresh ``presence`` for each of its rooms instead of what it missed
(latest-only). Answers to the client's own requests are never dropped: while its queue is
full the edge stops reading from it, so TCP pushes back on the client itself.

Supervision: the writer task runs under :func:`shared.tasks.supervise`. A frame the server
stack cannot send (text that is not valid Unicode) is dropped alone and counted
(``lightcone_items_dropped_total{where="ws_send"}``); if the writer crashes anyway (logged and
counted), the connection is closed with 1011 and unregistered, so the reader never waits on a
dead writer and shutdown never hangs on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from edge_node.node import EdgeNode
from shared.errors import CloseCode, Forbidden, LightconeError, ProtocolError, RateLimited
from shared.protocol import (
    Error,
    Message,
    Ping,
    Pong,
    RequestId,
    choose_subprotocol,
    decode,
    decode_json,
    encode,
    encode_json,
)
from shared.ratelimit import TokenBucket
from shared.server import close_quietly
from shared.tasks import STOP, spawn

logger = logging.getLogger(__name__)

MAX_IN_FLIGHT = 32


class ClientSocket:
    """One client connection: decode, dispatch, and answer through a bounded queue."""

    def __init__(self, websocket: WebSocket, node: EdgeNode, json_codec: bool) -> None:
        self.websocket = websocket
        self.node = node
        self.features = node.features
        self.json_codec = json_codec
        settings = node.settings
        self.bucket = TokenBucket(settings.ws_rate, settings.ws_burst, time.monotonic())
        self.max_queued = settings.max_queued_frames
        self.metrics = node.metrics
        self.queue: asyncio.Queue[bytes | str] = asyncio.Queue()
        self.missed = False
        self._writing = False  # the writer task is in the middle of a send
        self._space = asyncio.Event()  # set while the queue is below max_queued
        self._space.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_limit_error = 0.0
        self._writer_stopped = False
        self._reader: asyncio.Task[Any] | None = None
        self.conn = node.clients.register(self)
        # The hot path reads these once per message: kept here, not looked up each time.
        self._handlers = node.features.handlers
        self._watchers = tuple(feature.client_active for feature in node.features.watchers)

    # --- sending -------------------------------------------------------------------------

    def push(self, frame: bytes | str, *, volatile: bool = False) -> None:
        """Queue ``frame`` for this client (see the module docstring for the bounds)."""
        if volatile and self.queue.qsize() >= self.max_queued:
            self.missed = True
            self.metrics.frames_dropped.inc()
            return
        self.queue.put_nowait(frame)
        if self.queue.qsize() >= self.max_queued:
            self._space.clear()

    def send(self, message: Message) -> bool:
        """Queue ``message``; one that cannot be encoded is dropped alone (logged, counted
        under ``ws_send``) and ``False`` returned: the connection goes on."""
        try:
            frame = encode_json(message) if self.json_codec else encode(message)
        except Exception as exc:  # no poison pill: this message alone is lost
            self.metrics.drops.drop("ws_send", message, exc)
            return False
        self.push(frame)
        return True

    def send_error(
        self, request_id: RequestId | None, exc: LightconeError, room: str | None = None
    ) -> None:
        self.metrics.ws_errors.labels(exc.code).inc()
        if not self.send(Error(request_id, exc.code, str(exc), room)):
            # The request is still answered: its code, without the text that failed.
            self.send(Error(request_id, exc.code, "the error's message could not be encoded"))

    def answer_error(self, message: Message, exc: LightconeError) -> None:
        """Refuse ``message`` with ``exc``, matched to it by its id and by what its feature
        says the error should name (:meth:`~edge_node.features.Feature.error_room`)."""
        feature = self.features.client.get(type(message))
        room = feature.error_room(message) if feature is not None else None
        self.send_error(getattr(message, "id", None), exc, room)

    async def _write(self) -> None:
        while True:
            frame = await self.queue.get()
            self._writing = True
            try:
                await self._send_frame(frame)
            except (WebSocketDisconnect, RuntimeError, OSError):
                return  # the client is gone: the connection ends (see _writer_ended)
            finally:
                self._writing = False
            if self.queue.qsize() < self.max_queued:
                self._space.set()
            if self.missed and self.queue.empty():
                self.missed = False
                for feature in self.features:
                    feature.client_caught_up(self.conn)

    async def _send_frame(self, frame: bytes | str) -> None:
        try:
            if isinstance(frame, str):
                await self.websocket.send_text(frame)
            else:
                await self.websocket.send_bytes(frame)
        except UnicodeEncodeError as exc:  # raised before a byte is written: drop it alone
            self.metrics.drops.drop("ws_send", frame, exc)

    def _writer_ended(self, writer: asyncio.Task[None]) -> None:
        """The writer stopped on its own (the client is gone, or it crashed): end the
        connection now rather than wait for the reader to notice (see module doc)."""
        if writer.cancelled() or self._reader is None:
            return
        self._writer_stopped = True
        self._reader.cancel()

    # --- receiving -----------------------------------------------------------------------

    async def serve(self) -> None:
        self._reader = asyncio.current_task()
        writer = spawn("ws_writer", self._write, self.metrics.task_crashes, policy=STOP)
        writer.add_done_callback(self._writer_ended)
        try:
            while True:
                frame = await self.websocket.receive()
                if frame["type"] == "websocket.disconnect":
                    return
                answer = self.handle(frame.get("bytes"), frame.get("text"))
                if answer is not None:
                    if self.queue.empty() and not self._writing:
                        # Nothing ahead of it: send from here, sparing the writer task a
                        # wake-up (the hot path of tolerant suggestions).
                        await self._send_frame(answer)
                    else:
                        self.push(answer)
                if not self._space.is_set():
                    await self._space.wait()  # read no more from a client that does not read
        except WebSocketDisconnect:
            return
        except asyncio.CancelledError:
            if not self._writer_stopped:
                raise
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            await close_quietly(
                self.websocket, CloseCode.INTERNAL_ERROR, "connection writer stopped"
            )
        finally:
            for feature in self.features:
                feature.client_gone(self.conn)
            self.node.clients.unregister(self.conn)
            for task in [writer, *self._tasks]:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await writer

    def handle(self, data: bytes | None, text: str | None) -> bytes | str | None:
        """Act on one frame; returns an answer that may be sent at once (else ``None``)."""
        now = time.monotonic()
        try:
            message = decode_json(text) if text is not None else decode(data or b"")
        except ProtocolError as exc:
            if self.bucket.allow(now):  # a flood of garbage gets no more answers than the rate
                self.send_error(exc.request_id, exc)
            return None
        if not self.bucket.allow(now):
            self._rate_limited(message, now)
            return None
        for watch in self._watchers:
            watch(self.conn, now)
        try:
            handler = self._handlers.get(type(message))  # dispatch(), inlined: the hot path
            if handler is not None:
                return handler(self, message, now)
            return self.dispatch(message, now)
        except LightconeError as exc:
            self.answer_error(message, exc)
            return None

    def _rate_limited(self, message: Message, now: float) -> None:
        """A message over the rate is dropped. Every request that expects an answer (join,
        leave, suggest, search, ping) gets a ``rate_limited`` error matched to it; messages
        that expect none (moves: their feature says so, :meth:`Feature.over_rate`) are
        dropped quietly, with one error a second at most."""
        feature = self.features.client.get(type(message))
        if feature is not None and not feature.over_rate(self, message):
            if now - self._last_limit_error < 1.0:
                return
            self._last_limit_error = now
        self.answer_error(message, RateLimited("too many messages: slow down"))

    def dispatch(self, message: Message, now: float) -> bytes | str | None:
        """Hand ``message`` to the feature that answers it; an answer it returns is sent at
        once by the caller (a tolerant suggestion: nothing to wait for)."""
        handler = self._handlers.get(type(message))
        if handler is not None:
            return handler(self, message, now)
        if isinstance(message, Ping):  # the connection's own keep-alive
            self.send(Pong(message.id))
            return None
        raise ProtocolError(f"clients cannot send {message.TYPE!r}", code="unexpected_type")

    def run(
        self, message: Message, request_id: RequestId | None, answer: Coroutine[Any, Any, None]
    ) -> None:
        """Answer ``message`` in a task of this connection (it waits on the core): at most
        ``MAX_IN_FLIGHT`` at once; a :class:`LightconeError` it raises is sent as an error
        matched to ``request_id``; its time is observed under the message's type."""
        if len(self._tasks) >= MAX_IN_FLIGHT:
            answer.close()
            err = RateLimited(f"over {MAX_IN_FLIGHT} requests in flight", code="too_many_in_flight")
            self.send_error(request_id, err)
            return
        task = asyncio.create_task(self._answer(message.TYPE, request_id, answer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(
        self, kind: str, request_id: RequestId | None, answer: Coroutine[Any, Any, None]
    ) -> None:
        started = time.perf_counter()
        try:
            await answer
        except LightconeError as exc:
            self.send_error(request_id, exc)
        finally:
            self.metrics.ws_messages.labels(kind).observe(time.perf_counter() - started)


async def ws_endpoint(websocket: WebSocket) -> None:
    """Open a client websocket, if its page may (:class:`edge_node.origins.OriginPolicy`: no
    ``Origin``, the edge's own, or one of ``LIGHTCONE_WS_ALLOWED_ORIGINS``), else 403."""
    state = websocket.app.state
    origin = websocket.headers.get("origin")
    if not state.origin_policy.allows(origin, websocket.headers.get("host")):
        # Refused before accepting: a page from another site gets no socket at all.
        state.metrics.origin_refused.inc()
        refused = Forbidden(
            f"origin {origin!r} may not open this websocket (LIGHTCONE_WS_ALLOWED_ORIGINS)",
            code="origin_not_allowed",
        )
        await websocket.send_denial_response(JSONResponse(refused.to_json(), refused.status))
        return
    chosen, json_codec = choose_subprotocol(websocket.scope.get("subprotocols", []))
    await websocket.accept(subprotocol=chosen)
    client = ClientSocket(websocket, state.node, json_codec=json_codec)
    await client.serve()
