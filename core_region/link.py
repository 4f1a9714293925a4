"""The core's ``/link`` websocket: one per edge, msgpack frames, token in the handshake.

The receive loop yields to the event loop after every frame, so an edge that sends many
frames at once cannot starve the senders of the other edges (whose queues would then fill up
and get them disconnected as too slow). A message whose handling raises is dropped alone
(logged, counted in ``lightcone_items_dropped_total{where="link_handle"}``, answered with an
``error`` ``internal_error``); the link stays up. The sender runs supervised: if it crashes,
the link is closed (1011) and the edge reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from core_region.hub import EdgePeer, Hub
from shared.errors import CloseCode, ProtocolError, Unauthorized
from shared.http import bearer_matches
from shared.protocol import (
    Error,
    Heartbeat,
    Hello,
    Joined,
    Left,
    Message,
    Moves,
    MovesBatch,
    Resync,
    RoomSync,
    Searches,
    Sync,
    Synced,
    check_protocol,
    decode,
    encode,
)
from shared.tasks import STOP, spawn, stop

logger = logging.getLogger(__name__)


async def link_endpoint(websocket: WebSocket) -> None:
    state = websocket.app.state
    hub: Hub = state.hub
    timeout_s: float = state.settings.link_timeout_s
    if not bearer_matches(websocket.headers.get("authorization"), state.link_token):
        # Refused before accepting: no websocket, no frame read, for a wrong token.
        logger.warning("refused a link from %s: invalid link token", websocket.client)
        refused = Unauthorized("missing or wrong link token", code="unauthorized")
        await websocket.send_denial_response(JSONResponse(refused.to_json(), refused.status))
        return
    await websocket.accept()
    try:
        async with asyncio.timeout(timeout_s):
            hello = await _receive(websocket)
    except WebSocketDisconnect:
        return  # gone before saying hello: nothing to close, nothing to log
    except (TimeoutError, ProtocolError):
        hello = None
    if not isinstance(hello, Hello):
        # The peer may hang up while we close: that is its business, not an error of ours.
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await websocket.close(CloseCode.POLICY_VIOLATION, "expected hello")
        return
    try:
        check_protocol(hello.protocol)
    except ProtocolError as exc:
        logger.warning("refused edge %s (%s): %s", hello.edge_id, hello.region, exc)
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await websocket.send_bytes(encode(Error(None, exc.code, str(exc))))
            await websocket.close(CloseCode.UNSUPPORTED_PROTOCOL, exc.code)
        return
    peer = hub.connect(hello.edge_id, hello.region, hello.version, hello.epoch)
    sender = spawn(
        "link_sender", lambda: _send_frames(websocket, peer), hub.metrics.task_crashes, policy=STOP
    )
    try:
        await _receive_loop(websocket, hub, peer, timeout_s, sender)
    finally:
        hub.disconnect(peer)
        await stop(sender)


async def _receive(websocket: WebSocket) -> Message | None:
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", CloseCode.NORMAL))
    data = message.get("bytes")
    if data is None:
        raise ProtocolError("the link carries binary msgpack frames only")
    return decode(data, strict=False)  # a newer edge may send fields this core ignores


async def _receive_loop(
    websocket: WebSocket, hub: Hub, peer: EdgePeer, timeout_s: float, sender: asyncio.Task[None]
) -> None:
    while True:
        if sender.done() and not peer.close_reason:
            # The sender crashed (logged and counted): nothing reaches this edge any more.
            # The edge's heartbeats wake this loop at least every heartbeat interval.
            await websocket.close(CloseCode.INTERNAL_ERROR, "link sender stopped")
            return
        try:
            async with asyncio.timeout(timeout_s):
                message = await _receive(websocket)
        except TimeoutError:
            logger.warning("edge %s silent for %.1f s: closing", peer.edge_id, timeout_s)
            await websocket.close(CloseCode.LINK_TIMEOUT, "heartbeat timeout")
            return
        except WebSocketDisconnect:
            return
        except ProtocolError as exc:
            peer.send(encode(Error(None, exc.code, str(exc))))
            continue
        assert message is not None
        await handle(hub, peer, message)
        await asyncio.sleep(0)  # let the other edges' senders run between frames


async def handle(hub: Hub, peer: EdgePeer, message: Message) -> None:
    """Act on one message from ``peer``; if that raises, drop the message alone (module doc)."""
    hub.metrics.link_messages.labels(message.TYPE).inc()
    try:
        await _handle(hub, peer, message)
    except Exception as exc:  # no poison pill: this message alone is lost
        hub.metrics.drops.drop("link_handle", message, exc)
        peer.send(encode(Error(None, "internal_error", f"could not handle {message.TYPE!r}")))


async def _handle(hub: Hub, peer: EdgePeer, message: Message) -> None:
    if isinstance(message, Heartbeat):
        peer.version = message.version
    elif isinstance(message, Sync):
        peer.send(encode(Synced(message.id, hub.sync())))
    elif isinstance(message, Resync):
        hub.resync(peer, message.version)
    elif isinstance(message, RoomSync | Joined | Left | Moves | MovesBatch):
        hub.cursor(peer, message)
    elif isinstance(message, Searches):
        # A batch larger than ours (an edge configured differently) is committed in chunks:
        # refusing it would leave those searches in the edge's outbox for ever.
        size = hub.max_search_batch
        for start in range(0, len(message.searches), size):
            chunk = Searches(message.searches[start : start + size])
            peer.send(encode(await hub.log_searches(peer, chunk)))
    else:
        text = f"unexpected message type {message.TYPE!r} on the link"
        peer.send(encode(Error(None, "unexpected_type", text)))


async def _send_frames(websocket: WebSocket, peer: EdgePeer) -> None:
    try:
        while (frame := await peer.queue.get()) is not None:
            await websocket.send_bytes(frame)
        await websocket.close(peer.close_code, peer.close_reason)
    except (WebSocketDisconnect, RuntimeError, OSError):
        # The receive loop sees the disconnect too and cleans up.
        pass
