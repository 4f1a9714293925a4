"""The notice board's edge half: a copy of the core's board, served from memory.

Seam points it uses (:class:`edge_node.features.Feature`): a client message (``notices``), a
link message each way (``notices_state`` down, ``notices_reads`` up), an HTTP route
(``GET /notices``), its flag
(:meth:`~NoticesEdge.flag_changed`: tolerant answers from the copy at once, strict syncs with
the core first and fails fast with 503 when it cannot), its own version (``has_data``,
:meth:`~NoticesEdge.hello_version`, ``link.advanced``), and link up and down (while the link is
down every answer says ``stale: true``, and ``/status`` shows ``notices.link: "down"``; on
link up it posts its count of answers, then a sender of the session reports it every heartbeat
interval when it changed; :meth:`~NoticesEdge.announce` reports it again after a drop).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from edge_node.features import Feature
from shared import openapi as oa
from shared.protocol import STRICT, TOLERANT, Level, Message, RequestId, to_wire
from shared.text import MAX_ID_CHARS
from tests.extending.notices.board import MAX_NOTICE_CHARS, MAX_NOTICES, NAME, Board
from tests.extending.notices.messages import NoticeBoard, Notices, NoticesReads, NoticesState

if TYPE_CHECKING:
    from edge_node.link import Session
    from edge_node.node import EdgeNode
    from edge_node.ws import ClientSocket

logger = logging.getLogger(__name__)


class NoticesEdge(Feature):
    """The notice board of an edge (registered as ``notices``)."""

    name = NAME
    client_messages = (Notices,)
    link_messages = (NoticesState,)
    has_data = True

    def __init__(self, node: EdgeNode) -> None:
        super().__init__(node)
        self.board = Board()
        self.mode = TOLERANT
        """What the flag says, as answers name it (set by :meth:`flag_changed`)."""
        self.link_is_up = False
        self.boards_received = 0
        """``notices_state`` messages applied: a reconnect with nothing new adds none."""
        self.reads = 0
        """Answers served since the edge started (reported to the core as a total)."""

    # --- answers -------------------------------------------------------------------------

    def answer(self, request_id: RequestId | None) -> NoticeBoard:
        """The board from memory, saying how old it is; stale while the link is down."""
        self.reads += 1
        age_ms = self.node.link.age_ms(self.name)
        return NoticeBoard(
            request_id,
            self.board.items(),
            self.board.version,
            age_ms,
            self.mode,
            not self.link_is_up or self.node.stale(age_ms),
            self.node.region,
        )

    async def read(self, request_id: RequestId | None) -> NoticeBoard:
        """The answer under the flag: strict brings the board up to the core's head first.

        Raises:
            Unavailable: strict, and the link is down or the breaker open
                (``core_unreachable``, at once) or the core is slow (``strict_timeout``).
        """
        if self.mode == STRICT:
            await self.node.link.sync(self.name, self.node.settings.strict_timeout_ms / 1000)
        return self.answer(request_id)

    def on_client(self, client: ClientSocket, message: Any, now: float) -> bytes | str | None:
        if self.mode == TOLERANT:
            client.send(self.answer(message.id))  # nothing to wait for
        else:
            client.run(message, message.id, self._answer_later(client, message))
        return None

    async def _answer_later(self, client: ClientSocket, message: Notices) -> None:
        client.send(await self.read(message.id))

    def routes(self) -> list[BaseRoute]:
        async def get_notices(request: Request) -> Response:
            board = to_wire(await self.read(None))
            del board["type"], board["id"]
            return JSONResponse(board)

        return [Route("/notices", self.node.http("/notices", get_notices), methods=["GET"])]

    def openapi_paths(self) -> dict[str, Any]:
        notice = oa.obj(
            {
                "id": {"type": "string", "maxLength": MAX_ID_CHARS},
                "text": {"type": "string", "maxLength": MAX_NOTICE_CHARS},
            }
        )
        board = oa.obj(
            {
                "notices": {"type": "array", "items": notice, "maxItems": MAX_NOTICES},
                "version": {"type": "integer"},
                "age_ms": {"type": "integer"},
                "mode": {"enum": [TOLERANT, STRICT]},
                "stale": {"type": "boolean"},
                "region": {"type": "string"},
            }
        )
        responses = {
            "200": oa.json_answer(board, "the board"),
            **oa.error_answers(
                {
                    429: "rate_limited (with Retry-After)",
                    503: "core_unreachable, strict_timeout",
                }
            ),
        }
        return {"/notices": {"get": oa.operation("The notice board", responses)}}

    # --- the link --------------------------------------------------------------------------

    def hello_version(self) -> int:
        return self.board.version

    async def on_link(self, message: Any) -> None:
        state: NoticesState = message
        self.board.load(state.version, state.notices)
        self.boards_received += 1
        self.node.link.advanced(self.name, state.version)

    def link_up(self, session: Session) -> None:
        self.link_is_up = True
        for message in self.announce():
            session.post(message, self)
        session.spawn("notices_reads", lambda: self._report(session))

    def announce(self) -> list[Message]:
        return [NoticesReads(self.reads)]

    async def _report(self, session: Session) -> None:
        """Post the count of answers every heartbeat interval, when it changed (the
        session's sender: it ends with the link)."""
        reported = self.reads
        while True:
            await asyncio.sleep(self.node.settings.heartbeat_s)
            if self.reads != reported:
                reported = self.reads
                session.post(NoticesReads(reported), self)

    def link_down(self) -> None:
        self.link_is_up = False
        logger.info("link down: the notice board answers from v%d, stale", self.board.version)

    def flag_changed(self, level: Level) -> None:
        self.mode = TOLERANT if level.stale_ok else STRICT

    def status(self) -> dict[str, Any]:
        return {
            "notices": {
                "count": len(self.board),
                "link": "up" if self.link_is_up else "down",
                "boards_received": self.boards_received,
                "reads": self.reads,
            }
        }
