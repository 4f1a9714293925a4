"""The edge mesh's messages (edge ↔ edge, on a peer's mesh listener at :data:`MESH_PATH`).

Edges of a tolerant cursor room exchange each tick's moves directly, not through the core
(docs/protocol.md, "Edge mesh"). A mesh link is a websocket of binary msgpack frames,
authenticated with the link token in the handshake as the core's ``/link`` is; the side that
dials (:func:`dials`) sends :class:`MeshHello`, the other answers with its own, then both send
:class:`MeshMoves` and :class:`MeshBeat`. The messages travel in the link conversation (the
same codec and registry); a mesh listener accepts no other type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from shared.protocol.cursors import Moves
from shared.protocol.registry import LINK, Message, message

MESH_PATH = "/mesh"
"""Path of the mesh websocket on an edge's mesh listener (never on its public listener)."""


def dials(region: str, peer: str) -> bool:
    """The dial rule: of a pair of edges, the one whose region sorts first dials the other
    (regions are unique in a mesh); the other only accepts."""
    return region < peer


@message(LINK)
@dataclass(frozen=True, slots=True)
class MeshHello(Message):
    """First message each way on a mesh link: who the edge is. ``protocol`` is the
    sender's protocol version; a pair that does not share one is closed (4426)."""

    TYPE: ClassVar[str] = "mesh_hello"
    region: str
    edge_id: str
    protocol: int


@message(LINK)
@dataclass(frozen=True, slots=True)
class MeshMoves(Message):
    """One tick of an edge's tolerant moves for the peer: each room's :class:`Moves` (with
    the members' counters ``n``) for the rooms where the peer has members."""

    TYPE: ClassVar[str] = "mesh_moves"
    batches: list[Moves]


@message(LINK)
@dataclass(frozen=True, slots=True)
class MeshBeat(Message):
    """Keep-alive, each way twice per ``LIGHTCONE_HEARTBEAT_S``. ``heard_ms``: how long ago
    the sender last heard the receiver, so that a cut in one direction is seen on both sides.
    A link unheard for a heartbeat carries no moves (they go through the core); one silent
    for ``LIGHTCONE_LINK_TIMEOUT_S`` is closed (4408)."""

    TYPE: ClassVar[str] = "mesh_beat"
    heard_ms: int


@message(LINK)
@dataclass(frozen=True, slots=True)
class MeshPeers(Message):
    """Edge → core, on the core link: the regions whose mesh link is up at this edge, sent on
    every (re)connect and every change. While a connected edge still reaches the region of an
    edge whose link to the core is down, the core keeps that edge's members past the presence
    timeout (their moves still flow over the mesh); once none does, the timeout runs."""

    TYPE: ClassVar[str] = "mesh_peers"
    regions: list[str]
