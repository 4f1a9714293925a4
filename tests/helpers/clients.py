"""Websocket clients the end-to-end tests share: a node's URL, one request and its answer,
and a bystander that must keep being served while other clients misbehave."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from shared.protocol import Message, Suggest, Suggestions, decode, decode_json, encode
from tests.helpers.nodes import Node


def prefix_terms(items: list[Any]) -> list[str]:
    """The terms of the prefix matches among suggestion ``items`` (JSON maps or decoded
    items): what tests about data flow compare, leaving out the typo matches that fill the
    rest of ``limit``."""
    return [
        i["term"] if isinstance(i, dict) else i.term
        for i in items
        if (i.get("match") if isinstance(i, dict) else i.match) is None
    ]


def ws_url(node: Node, path: str = "/ws") -> str:
    return node.url.replace("http://", "ws://") + path


async def reply(ws: ClientConnection, frame: bytes | str) -> Message:
    """Send ``frame`` and decode the next frame that comes back, in its own codec."""
    await ws.send(frame)
    data = await ws.recv()
    return decode_json(data) if isinstance(data, str) else decode(data)


@contextlib.asynccontextmanager
async def bystander(edge: Node) -> AsyncIterator[ClientConnection]:
    """A well-behaved client of ``edge`` (default corpus), connected throughout; on the way
    out it must still be answered."""
    async with connect(ws_url(edge)) as ws:
        yield ws
        await ws.send(encode(Suggest(id="still", q="lond", limit=1)))
        answer = decode(await ws.recv(decode=False))
        assert isinstance(answer, Suggestions) and answer.items[0].term == "London"
