"""The edge's going-away hook: on SIGTERM every client websocket closes with 1001.

Registered as ``app.state.going_away`` (see :mod:`shared.server`): clients hear "going
away" and reconnect (on Fly.io, to another Machine) instead of seeing uvicorn's 1012.
"""

from __future__ import annotations

from edge_node.clients import Clients
from edge_node.ws import ClientSocket
from shared.errors import CloseCode
from shared.server import GoingAway, close_quietly, going_away

REASON = "edge shutting down"


def client_sockets(clients: Clients) -> GoingAway:
    """Close every client connection with 1001; done once they have all left."""
    return going_away(clients, close)


async def close(client: ClientSocket) -> None:
    await close_quietly(client.websocket, CloseCode.GOING_AWAY, REASON)
