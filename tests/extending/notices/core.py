"""The notice board's core half: the board, its admin routes, and what edges are sent.

Seam points it uses (:class:`core_region.features.Feature`): a link message from edges
(``notices_reads``: each linked edge's total of answers, one entry per linked edge), admin
routes (``PUT`` / ``DELETE /admin/notices/{id}``), its flag (its levels; the node stores it
and pushes it to edges), its own version (``has_data``: each change takes the next global
version from the store, :meth:`core_region.store.Store.next_version`;
:attr:`~NoticesCore.version` is the last one that changed the board as published;
:meth:`~NoticesCore.catch_up` sends the board to an edge that holds another version), and
edges linking and going (``/admin/status`` shows ``notices.linked_edges`` and the sum of their
``notices.reads``).

The board is kept in memory only (a restart empties it, and every edge then gets the empty
board, since its version differs): a real feature would keep it durable, in a file of its own
or in a table of the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from core_region.admin import MAX_BODY_BYTES
from core_region.features import Feature
from shared import openapi as oa
from shared.errors import BadRequest
from shared.http import json_body
from shared.protocol import STRICT, TOLERANT, encode
from shared.text import MAX_ID_CHARS
from tests.extending.notices.board import MAX_NOTICE_CHARS, NAME, Board
from tests.extending.notices.messages import NoticesReads, NoticesState

if TYPE_CHECKING:
    from core_region.node import CoreNode, EdgePeer


class NoticesCore(Feature):
    """The notice board of the core (registered as ``notices``)."""

    name = NAME
    link_messages = (NoticesReads,)
    has_data = True
    levels = (STRICT, TOLERANT)

    def __init__(self, node: CoreNode) -> None:
        super().__init__(node)
        self.board = Board()
        self.published = -1
        """The board's version as last sent to every edge."""
        self.reads: dict[str, int] = {}
        """Each linked edge's reported total of answers, by edge id (a link that replaced
        another keeps its id): one entry per linked edge."""

    # --- data ------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self.published

    def publish(self) -> None:
        """Send the whole board to every edge if it changed since the last publication."""
        if self.board.version != self.published:
            self.published = self.board.version
            self.node.broadcast(self._frame(), self)

    def catch_up(self, have: int, base: int | None = None) -> list[bytes]:
        """The board, for an edge holding any other version (behind, or from before a
        restart of this core): one frame, so nothing else to choose (``base``, the snapshot
        a feature's data grew from, means nothing here)."""
        return [] if have == self.published else [self._frame()]

    def _frame(self) -> bytes:
        return encode(NoticesState(self.published, self.board.items()))

    # --- writes ----------------------------------------------------------------------------

    async def put(self, notice_id: str, text: str) -> int:
        """Post or replace a notice; returns the global version that carries it."""
        self.board.check_put(notice_id, text)  # a refused write takes no version
        async with self.node.write_lock:
            self.board.check_put(notice_id, text)  # again: another write may have filled it
            version = await self.node.store.next_version()
            self.board.put(notice_id, text, version)
            self.node.committed_at(version)
        return version

    async def remove(self, notice_id: str) -> int:
        """Take a notice down; returns the global version from which it is gone."""
        self.board.check_remove(notice_id)
        async with self.node.write_lock:
            self.board.check_remove(notice_id)
            version = await self.node.store.next_version()
            self.board.remove(notice_id, version)
            self.node.committed_at(version)
        return version

    # --- edges and status ------------------------------------------------------------------

    def edge_linked(self, peer: EdgePeer) -> None:
        self.reads.setdefault(peer.edge_id, 0)

    def edge_gone(self, peer: EdgePeer) -> None:
        self.reads.pop(peer.edge_id, None)

    async def on_link(self, peer: EdgePeer, message: Any) -> None:
        """An edge's total of answers (a core trusts no edge: a negative one counts as 0).
        Ignored from a link a newer one replaced, or that is gone."""
        reads: NoticesReads = message
        if self.node.is_current(peer) and peer.edge_id in self.reads:
            self.reads[peer.edge_id] = max(0, reads.reads)

    async def status(self) -> dict[str, Any]:
        return {
            "notices": {
                "count": len(self.board),
                "linked_edges": len(self.reads),
                "reads": sum(self.reads.values()),
            }
        }

    # --- admin routes ------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        async def put_notice(request: Request) -> Response:
            notice_id = request.path_params["id"]
            body = await json_body(request, MAX_BODY_BYTES)
            text = body.get("text")
            if not isinstance(text, str) or body.keys() != {"text"}:
                raise BadRequest('the body must be {"text": string}', code="bad_field")
            version = await self.put(notice_id, text)
            return JSONResponse({"id": notice_id, "text": text, "version": version})

        async def delete_notice(request: Request) -> Response:
            notice_id = request.path_params["id"]
            version = await self.remove(notice_id)
            return JSONResponse({"id": notice_id, "status": "removed", "version": version})

        path = "/admin/notices/{id}"
        admin = self.node.admin
        return [
            Route(path, admin(f"PUT {path}", put_notice), methods=["PUT"]),
            Route(path, admin(f"DELETE {path}", delete_notice), methods=["DELETE"]),
        ]

    def openapi_paths(self) -> dict[str, Any]:
        param = [oa.path_param("id", {"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS})]
        text = {"type": "string", "minLength": 1, "maxLength": MAX_NOTICE_CHARS}
        version = {"type": "integer"}
        put_errors = {
            400: "bad_json, bad_field, bad_id, bad_notice, notice_too_long, bad_text",
            409: "board_full",
            413: "payload_too_large",
        }
        return {
            "/admin/notices/{id}": {
                "put": {
                    **oa.admin(
                        "Post or replace a notice",
                        oa.obj({"id": {"type": "string"}, "text": text, "version": version}),
                        put_errors,
                    ),
                    "parameters": param,
                    "requestBody": oa.request_body(oa.obj({"text": text}), MAX_BODY_BYTES),
                },
                "delete": {
                    **oa.admin(
                        "Take a notice down",
                        oa.obj(
                            {
                                "id": {"type": "string"},
                                "status": {"const": "removed"},
                                "version": version,
                            }
                        ),
                        {404: "unknown_notice"},
                    ),
                    "parameters": param,
                },
            }
        }
