"""The one registry of wire messages: every message class registers itself here, by its type.

A message is a frozen dataclass that subclasses :class:`Message` and is decorated with
:func:`message`, naming the conversations it travels in (:data:`CLIENT`: an edge's ``/ws``
and its HTTP routes; :data:`LINK`: the edge ↔ core link). The codec looks types up here, and
nowhere else; a feature that brings its own messages (docs/extending.md) registers them the
same way, from its own module.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

CLIENT = "client"
"""Messages between a client and an edge (websocket ``/ws``)."""
LINK = "link"
"""Messages between an edge and the core (websocket ``/link``)."""


class Message:
    """The base of every wire message: ``TYPE`` names it on the wire."""

    __slots__ = ()
    TYPE: ClassVar[str]


M = TypeVar("M", bound=type[Message])

MESSAGES: Mapping[str, type[Message]] = {}
"""Every registered class by its wire ``type`` (read it; register with :func:`message`)."""
_MESSAGES = typing.cast(dict[str, type[Message]], MESSAGES)
_CONVERSATIONS: dict[type[Message], frozenset[str]] = {}


def message(*conversations: str) -> Callable[[M], M]:
    """Register a message class under its ``TYPE`` for ``conversations``.

    Raises:
        ValueError: another class already has that ``TYPE`` (a type names one message).
    """
    unknown = set(conversations) - {CLIENT, LINK}
    if not conversations or unknown:
        raise ValueError(f"conversations must be among {CLIENT!r}, {LINK!r}")

    def register(cls: M) -> M:
        known = _MESSAGES.get(cls.TYPE)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise ValueError(f"message type {cls.TYPE!r} is taken by {known.__qualname__}")
        _MESSAGES[cls.TYPE] = cls
        _CONVERSATIONS[cls] = frozenset(conversations)
        return cls

    return register


def lookup(tag: Any) -> type[Message] | None:
    """The class registered for the wire ``type`` ``tag``, if any."""
    return _MESSAGES.get(tag) if isinstance(tag, str) else None


def messages(conversation: str | None = None) -> tuple[type[Message], ...]:
    """Every registered message class (of ``conversation`` if given), in registration order."""
    return tuple(
        cls
        for cls in _MESSAGES.values()
        if conversation is None or conversation in _CONVERSATIONS[cls]
    )
