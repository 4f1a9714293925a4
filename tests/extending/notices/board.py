"""The notice board itself: pure (no I/O, no clock), shared by the core and the edge halves.

Bounds (each checked before the core takes a version, so a refused write costs none):
at most :data:`MAX_NOTICES` notices of at most :data:`MAX_NOTICE_CHARS` characters, ids of at
most :data:`~shared.text.MAX_ID_CHARS` (the one id limit of the project). The whole board is
then at most about 32 × 280 characters: it always fits one link frame, so it travels whole.
"""

from __future__ import annotations

from shared.errors import BadRequest, Conflict, NotFound
from shared.text import MAX_ID_CHARS, clean
from tests.extending.notices.messages import Notice

NAME = "notices"
"""The feature's name: its flag key, its version's key on the link, its part of /status."""

MAX_NOTICES = 32
"""Notices on the board at once; a new one beyond it is refused (409 ``board_full``)."""

MAX_NOTICE_CHARS = 280
"""Longest notice text (400 ``notice_too_long``)."""


class Board:
    """The notices in the order they were first posted, and the version that last changed
    them (a global version: the core takes it from the store's one sequence)."""

    def __init__(self) -> None:
        self.notices: dict[str, str] = {}
        self.version = -1

    def __len__(self) -> int:
        return len(self.notices)

    def items(self) -> list[Notice]:
        return [Notice(i, t) for i, t in self.notices.items()]

    def check_put(self, notice_id: str, text: str) -> None:
        """Raise if posting ``text`` as ``notice_id`` would break a bound.

        Raises:
            BadRequest: ``bad_id`` (empty or too long), ``bad_notice`` (empty text),
                ``notice_too_long``, ``bad_text``.
            Conflict: ``board_full`` (a new id while :data:`MAX_NOTICES` are posted).
        """
        clean(notice_id, field="id", max_chars=MAX_ID_CHARS, code="bad_id")
        if not notice_id:
            raise BadRequest(f"id must be 1..{MAX_ID_CHARS} characters", code="bad_id")
        clean(text, field="text", max_chars=MAX_NOTICE_CHARS, code="notice_too_long")
        if not text.strip():
            raise BadRequest("a notice needs some text", code="bad_notice")
        if notice_id not in self.notices and len(self.notices) >= MAX_NOTICES:
            raise Conflict(f"the board holds {MAX_NOTICES} notices already", code="board_full")

    def check_remove(self, notice_id: str) -> None:
        """Raises: NotFound: ``unknown_notice``."""
        if notice_id not in self.notices:
            raise NotFound(f"no notice {notice_id!r} on the board", code="unknown_notice")

    def put(self, notice_id: str, text: str, version: int) -> None:
        """Post (or replace) a notice checked by :meth:`check_put`, at ``version``."""
        self.notices[notice_id] = text
        self.version = version

    def remove(self, notice_id: str, version: int) -> None:
        """Take down a notice checked by :meth:`check_remove`, at ``version``."""
        del self.notices[notice_id]
        self.version = version

    def load(self, version: int, notices: list[Notice]) -> None:
        """Replace the whole board (an edge, from the core's ``notices_state``)."""
        self.notices = {n.id: n.text for n in notices}
        self.version = version
