"""The edge's registry of client connections, apart from any feature.

Every client websocket (:class:`edge_node.ws.ClientSocket`) registers here and gets a
:data:`ConnId`; features address clients by that id. :meth:`Clients.send` encodes a message
at most once per codec and queues the same bytes to each recipient, so fan-out costs one
encode, not one per client; a slow client never holds up the sender (its own queue is
bounded, see :mod:`edge_node.ws`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from shared.protocol import Message, encode, encode_json

if TYPE_CHECKING:
    from edge_node.ws import ClientSocket

ConnId = int


class Clients:
    def __init__(self) -> None:
        self._clients: dict[ConnId, ClientSocket] = {}
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._clients)

    def __contains__(self, client: object) -> bool:
        return any(c is client for c in self._clients.values())

    def __iter__(self) -> Iterator[ClientSocket]:
        return iter(list(self._clients.values()))

    def register(self, client: ClientSocket) -> ConnId:
        conn = next(self._ids)
        self._clients[conn] = client
        return conn

    def unregister(self, conn: ConnId) -> None:
        self._clients.pop(conn, None)

    def get(self, conn: ConnId) -> ClientSocket | None:
        return self._clients.get(conn)

    def send(self, conns: Iterable[ConnId], message: Message, *, volatile: bool = False) -> int:
        """Queue ``message`` to each of ``conns`` still connected, encoded once per codec;
        returns how many got it. ``volatile``: dropped for a client whose queue is full (it
        is told later, see :meth:`edge_node.features.Feature.client_caught_up`).

        Raises:
            Exception: whatever encoding ``message`` raises (the caller drops it alone).
        """
        frames: dict[bool, bytes | str] = {}
        sent = 0
        for conn in conns:
            client = self._clients.get(conn)
            if client is None:
                continue
            frame = frames.get(client.json_codec)
            if frame is None:
                frame = encode_json(message) if client.json_codec else encode(message)
                frames[client.json_codec] = frame
            client.push(frame, volatile=volatile)
            sent += 1
        return sent
