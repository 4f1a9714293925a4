"""The edge's client websocket ``/ws``: msgpack binary frames, or JSON text frames.

The client picks the codec with a subprotocol: ``lightcone.msgpack`` (the default when it
asks for none) or ``lightcone.json``. A frame is decoded by its own kind (text as JSON,
binary as msgpack); answers use the negotiated codec.

Bounds: frames over ``max_frame_bytes`` are closed by the server with 1009; invalid UTF-8 in
a text frame with 1007; messages over the per-connection rate get an ``error`` with code
``rate_limited`` and are dropped; at most ``MAX_IN_FLIGHT`` requests that wait on the core
(strict reads, logged searches) run at once per connection, beyond which requests get
``too_many_in_flight``. Bad messages get an ``error`` message and the connection stays open.
"""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.websockets import WebSocket, WebSocketDisconnect

from edge_node.ratelimit import TokenBucket
from edge_node.service import Service
from shared.errors import LightconeError, ProtocolError, RateLimited
from shared.protocol import (
    SUBPROTOCOL_JSON,
    SUBPROTOCOL_MSGPACK,
    Error,
    Message,
    RequestId,
    Search,
    Suggest,
    decode,
    decode_json,
    encode,
    encode_json,
)

logger = logging.getLogger(__name__)

MAX_IN_FLIGHT = 32


class ClientSocket:
    """One client connection: decode, dispatch to the service, answer in the client's codec."""

    def __init__(self, websocket: WebSocket, service: Service, json_codec: bool) -> None:
        self.websocket = websocket
        self.service = service
        self.json_codec = json_codec
        settings = service.settings
        self.bucket = TokenBucket(settings.ws_rate, settings.ws_burst, time.monotonic())
        self.metrics = service.upstream.metrics
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    async def send(self, message: Message) -> None:
        async with self._lock:
            if self.json_codec:
                await self.websocket.send_text(encode_json(message))
            else:
                await self.websocket.send_bytes(encode(message))

    async def send_error(self, request_id: RequestId | None, exc: LightconeError) -> None:
        self.metrics.ws_errors.labels(exc.code).inc()
        await self.send(Error(request_id, exc.code, str(exc)))

    async def serve(self) -> None:
        try:
            while True:
                frame = await self.websocket.receive()
                if frame["type"] == "websocket.disconnect":
                    return
                await self.handle(frame.get("bytes"), frame.get("text"))
        except WebSocketDisconnect:
            return
        finally:
            for task in self._tasks:
                task.cancel()

    async def handle(self, data: bytes | None, text: str | None) -> None:
        if not self.bucket.allow(time.monotonic()):
            await self.send_error(None, RateLimited("too many messages: slow down"))
            return
        try:
            message = decode_json(text) if text is not None else decode(data or b"")
        except ProtocolError as exc:
            await self.send_error(None, exc)
            return
        if isinstance(message, Suggest):
            if message.min_version is None and self.service.upstream.stale_ok("suggest"):
                await self.answer(message)  # tolerant: no await on the core, answer inline
            else:
                self.spawn(message)
        elif isinstance(message, Search):
            self.spawn(message)
        else:
            err = ProtocolError(f"clients cannot send {message.TYPE!r}", code="unexpected_type")
            await self.send_error(getattr(message, "id", None), err)

    def spawn(self, message: Suggest | Search) -> None:
        if len(self._tasks) >= MAX_IN_FLIGHT:
            err = RateLimited(f"over {MAX_IN_FLIGHT} requests in flight", code="too_many_in_flight")
            task = asyncio.create_task(self.send_error(message.id, err))
        else:
            task = asyncio.create_task(self.answer(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def answer(self, message: Suggest | Search) -> None:
        started = time.perf_counter()
        try:
            if isinstance(message, Suggest):
                await self.send(
                    await self.service.suggest(
                        message.q, message.limit, message.min_version, message.id
                    )
                )
            else:
                await self.send(await self.service.search(message.id, message.q))
        except LightconeError as exc:
            await self.send_error(message.id, exc)
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client went away while we worked; nothing to answer
        finally:
            self.metrics.ws_messages.labels(message.TYPE).observe(time.perf_counter() - started)


async def ws_endpoint(websocket: WebSocket) -> None:
    service: Service = websocket.app.state.service
    offered = websocket.scope.get("subprotocols", [])
    chosen = SUBPROTOCOL_JSON if SUBPROTOCOL_JSON in offered else None
    if chosen is None and SUBPROTOCOL_MSGPACK in offered:
        chosen = SUBPROTOCOL_MSGPACK
    await websocket.accept(subprotocol=chosen)
    await ClientSocket(websocket, service, json_codec=chosen == SUBPROTOCOL_JSON).serve()
