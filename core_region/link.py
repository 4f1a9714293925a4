"""The core's ``/link`` websocket: one per edge, msgpack frames, token in the handshake.

The link speaks ``hello``, ``heartbeat``, ``sync``/``synced``, ``resync`` and ``error`` itself
and hands every other message to the feature that declared it
(:class:`core_region.features.Registry`).

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
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from core_region.node import CoreNode, EdgePeer
from shared.errors import CloseCode, ProtocolError, StoreUnavailable, Unauthorized
from shared.http import bearer_matches
from shared.protocol import (
    Error,
    Heartbeat,
    Hello,
    Message,
    Resync,
    Sync,
    check_protocol,
    decode,
    encode,
)
from shared.server import close_quietly
from shared.tasks import STOP, spawn, stop

logger = logging.getLogger(__name__)


async def link_endpoint(websocket: WebSocket) -> None:
    state = websocket.app.state
    node: CoreNode = state.node
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
        await close_quietly(websocket, CloseCode.POLICY_VIOLATION, "expected hello")
        return
    try:
        check_protocol(hello.protocol)
    except ProtocolError as exc:
        logger.warning("refused edge %s (%s): %s", hello.edge_id, hello.region, exc)
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            await websocket.send_bytes(encode(Error(None, exc.code, str(exc))))
        await close_quietly(websocket, CloseCode.UNSUPPORTED_PROTOCOL, exc.code)
        return
    try:
        peer = await node.connect(hello)
    except StoreUnavailable as exc:
        # The edge is ahead of this node, which cannot reach the store to catch up: the
        # edge tries again (here or on another node) after its backoff.
        logger.warning("edge %s (%s) must wait: %s", hello.edge_id, hello.region, exc)
        await close_quietly(websocket, CloseCode.INTERNAL_ERROR, "store unavailable")
        return
    sender = spawn(
        "link_sender", lambda: _send_frames(websocket, peer), node.metrics.task_crashes, policy=STOP
    )
    try:
        await _receive_loop(websocket, node, peer, timeout_s, sender)
    finally:
        node.disconnect(peer)
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
    websocket: WebSocket,
    node: CoreNode,
    peer: EdgePeer,
    timeout_s: float,
    sender: asyncio.Task[None],
) -> None:
    while True:
        if sender.done() and not peer.close_reason:
            # The sender crashed (logged and counted): nothing reaches this edge any more.
            # The edge's heartbeats wake this loop at least every heartbeat interval. The
            # sender may have stopped because the edge hung up: then there is nothing to close.
            await close_quietly(websocket, CloseCode.INTERNAL_ERROR, "link sender stopped")
            return
        try:
            async with asyncio.timeout(timeout_s):
                message = await _receive(websocket)
        except TimeoutError:
            logger.warning("edge %s silent for %.1f s: closing", peer.edge_id, timeout_s)
            await close_quietly(websocket, CloseCode.LINK_TIMEOUT, "heartbeat timeout")
            return
        except WebSocketDisconnect:
            return
        except ProtocolError as exc:
            peer.send(encode(Error(None, exc.code, str(exc))))
            continue
        assert message is not None
        await handle(node, peer, message)
        await asyncio.sleep(0)  # let the other edges' senders run between frames


async def handle(node: CoreNode, peer: EdgePeer, message: Message) -> None:
    """Act on one message from ``peer``; if that raises, drop the message alone (module doc)."""
    node.metrics.link_messages.labels(message.TYPE).inc()
    try:
        own = _OWN.get(type(message))
        if own is not None:
            await own(node, peer, message)
            return
        feature = node.features.link.get(type(message))
        if feature is None:
            text = f"unexpected message type {message.TYPE!r} on the link"
            peer.send(encode(Error(None, "unexpected_type", text)))
            return
        await feature.on_link(peer, message)
    except Exception as exc:  # no poison pill: this message alone is lost
        node.metrics.drops.drop("link_handle", message, exc)
        peer.send(encode(Error(None, "internal_error", f"could not handle {message.TYPE!r}")))


async def _heartbeat(node: CoreNode, peer: EdgePeer, message: Heartbeat) -> None:
    peer.version = message.version
    if message.versions:  # else: an edge from before per-feature versions, as in its hello
        # Only the features this core has (an edge's map is its to fill, not ours to keep).
        held = message.versions
        peer.versions = {f.name: held[f.name] for f in node.features.with_data if f.name in held}


async def _sync(node: CoreNode, peer: EdgePeer, message: Sync) -> None:
    try:
        peer.send(encode(await node.sync(message.id)))
    except StoreUnavailable as exc:
        # Strict reads fail fast at the edge while the store is away, as in a partition.
        peer.send(encode(Error(message.id, exc.code, str(exc))))


async def _resync(node: CoreNode, peer: EdgePeer, message: Resync) -> None:
    node.resync(peer, message.versions, message.version)


_OWN: dict[type[Message], Callable[[CoreNode, EdgePeer, Any], Awaitable[None]]] = {
    Heartbeat: _heartbeat,
    Sync: _sync,
    Resync: _resync,
}
"""The link's own messages from an edge (every other type goes to its feature)."""


async def _send_frames(websocket: WebSocket, peer: EdgePeer) -> None:
    try:
        while (frame := await peer.queue.get()) is not None:
            await websocket.send_bytes(frame)
        await websocket.close(peer.close_code, peer.close_reason)
    except (WebSocketDisconnect, RuntimeError, OSError):
        # The receive loop sees the disconnect too and cleans up.
        pass
