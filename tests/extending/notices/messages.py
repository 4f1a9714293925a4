"""The notice board's wire messages, registered from here like any feature's.

Client ↔ edge: ``notices`` (a request) → ``notice_board`` (the answer). On the link, core →
edge: ``notices_state`` (the whole board at a version); edge → core: ``notices_reads`` (how
many answers the edge has served). Type names are global: a feature prefixes its own with its
name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from shared.protocol import CLIENT, LINK, Message, RequestId, message


@dataclass(frozen=True, slots=True)
class Notice:
    """One notice: its admin-chosen id and its text."""

    id: str
    text: str


@message(CLIENT)
@dataclass(frozen=True, slots=True)
class Notices(Message):
    """A client asks for the board (checked strictly, as every client message)."""

    TYPE: ClassVar[str] = "notices"
    id: RequestId


@message(CLIENT)
@dataclass(frozen=True, slots=True)
class NoticeBoard(Message):
    """The board as this edge holds it, and how fresh it is (as ``suggestions`` says)."""

    TYPE: ClassVar[str] = "notice_board"
    id: RequestId | None
    notices: list[Notice]
    version: int
    age_ms: int
    mode: str
    stale: bool
    region: str


@message(LINK)
@dataclass(frozen=True, slots=True)
class NoticesState(Message):
    """The core's whole board at ``version``: the last global version that changed it
    (-1: never changed). Small by its bounds, so it is never sent as a delta."""

    TYPE: ClassVar[str] = "notices_state"
    version: int
    notices: list[Notice]


@message(LINK)
@dataclass(frozen=True, slots=True)
class NoticesReads(Message):
    """An edge's running total of board answers served (HTTP and websocket) since it started.
    A total, not an increment: a lost or repeated report changes nothing, the next one heals."""

    TYPE: ClassVar[str] = "notices_reads"
    reads: int
