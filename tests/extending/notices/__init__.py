"""A notice board: the worked example of docs/extending.md, and the proof of the feature seam.

An admin posts and removes short notices on the core (``PUT`` / ``DELETE
/admin/notices/{id}``); the core pushes the whole board to every edge (``notices_state`` on
the link); edges serve it from memory (``GET /notices``, and ``notices`` → ``notice_board`` on
the websocket) under the feature's own flag and its own version, and report how many answers
they served (``notices_reads`` up the link). It lives under ``tests/``
and is registered only by its test (:mod:`tests.extending.test_notices`), one line per app:

    create_app(settings, features=(*FEATURES, NoticesEdge))   # edge_node.app
    create_app(settings, features=(*FEATURES, NoticesCore))   # core_region.app

The modules: :mod:`.messages` (its wire messages), :mod:`.board` (the pure core both halves
share), :mod:`.edge` and :mod:`.core` (the two halves).
"""

from __future__ import annotations

from tests.extending.notices.board import MAX_NOTICE_CHARS, MAX_NOTICES, NAME, Board
from tests.extending.notices.core import NoticesCore
from tests.extending.notices.edge import NoticesEdge
from tests.extending.notices.messages import (
    Notice,
    NoticeBoard,
    Notices,
    NoticesReads,
    NoticesState,
)

__all__ = [
    "MAX_NOTICES",
    "MAX_NOTICE_CHARS",
    "NAME",
    "Board",
    "Notice",
    "NoticeBoard",
    "Notices",
    "NoticesCore",
    "NoticesEdge",
    "NoticesReads",
    "NoticesState",
]
