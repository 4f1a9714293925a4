"""Messages of both conversations: errors and keep-alives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from shared.protocol.registry import CLIENT, LINK, Message, message

RequestId = str | int
"""A client's request id, echoed in the answer."""


@message(CLIENT, LINK)
@dataclass(frozen=True, slots=True)
class Error(Message):
    """Something in a request was refused; ``code`` is one of the names in docs/protocol.md.

    ``id`` is the request's own id when it had one; ``room`` names the room of the
    ``join`` or ``leave`` it answers (so an answer to a request without an id is still
    matched to it), and is ``None`` otherwise.
    """

    TYPE: ClassVar[str] = "error"
    id: RequestId | None
    code: str
    message: str
    room: str | None = None


@message(CLIENT)
@dataclass(frozen=True, slots=True)
class Ping(Message):
    """Keeps a quiet member present; answered with :class:`Pong`."""

    TYPE: ClassVar[str] = "ping"
    id: RequestId | None = None


@message(CLIENT)
@dataclass(frozen=True, slots=True)
class Pong(Message):
    TYPE: ClassVar[str] = "pong"
    id: RequestId | None = None
