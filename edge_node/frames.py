"""Frames an edge sends up the link: each within a byte budget, poison dropped alone.

Pure. :func:`frames` turns one message into the frames that carry it. The messages whose size
grows with their content are split into several frames of the same type, each within
``max_bytes`` (by default
:data:`~shared.protocol.MAX_UP_FRAME_BYTES`, below the core's 1 MiB limit), whatever the
number of items. An item that cannot be encoded at all (a string that is not Unicode scalar
values, a number out of range) or that alone exceeds the budget is returned apart, so the
caller drops that item alone and the rest still flows.

Splitting halves a chunk until it fits (one encode in the common case that the whole message
fits; O(n log n) encodes at worst), so frames are at least a quarter of the budget full
except the last ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from shared.protocol import MAX_UP_FRAME_BYTES, Message, encode

T = TypeVar("T")

Framed = tuple[list[bytes], list[Any]]
"""The frames to send, and the items (or the whole message) dropped."""


Split = Callable[[Any, int], Framed]
"""How a long message is split: ``(message, max_bytes)`` to its frames and dropped items."""

_SPLITS: dict[type[Message], Split] = {}


def splits(cls: type[Message], split: Split) -> None:
    """Register how messages of ``cls`` are split (each feature registers its long
    messages: see :func:`by_items`)."""
    _SPLITS[cls] = split


def by_items(field: str, make: Callable[[list[Any]], Message]) -> Split:
    """Split a message by the list in ``field``: ``make(chunk)`` is the message of a chunk."""

    def split(message: Any, max_bytes: int) -> Framed:
        return framed(chunks(getattr(message, field), make, max_bytes))

    return split


def frames(message: Message, max_bytes: int = MAX_UP_FRAME_BYTES) -> Framed:
    """The frames that carry ``message`` (several for a long one), and what was dropped."""
    split = _SPLITS.get(type(message))
    if split is not None:
        return split(message, max_bytes)
    frame = _encoded(message)
    if frame is None or len(frame) > max_bytes:
        return [], [message]
    return [frame], []


def _encoded(message: Message) -> bytes | None:
    try:
        return encode(message)
    except Exception:  # an unencodable value, whatever the codec raises for it
        return None


def chunks(
    items: Sequence[T], make: Callable[[list[T]], Message], max_bytes: int
) -> tuple[list[tuple[list[T], bytes]], list[T]]:
    """Consecutive chunks of ``items`` whose ``make(chunk)`` encodes within ``max_bytes``, with
    those frames, in order; and the items that do not encode (or fit) even alone."""
    good: list[tuple[list[T], bytes]] = []
    bad: list[T] = []

    def visit(chunk: list[T]) -> None:
        frame = _encoded(make(chunk))
        if frame is not None and len(frame) <= max_bytes:
            good.append((chunk, frame))
        elif len(chunk) <= 1:
            bad.extend(chunk)
        else:
            middle = len(chunk) // 2
            visit(chunk[:middle])
            visit(chunk[middle:])

    visit(list(items))
    return good, bad


def framed(chunked: tuple[list[tuple[list[T], bytes]], list[T]]) -> Framed:
    """The non-empty chunks' frames, and the items dropped."""
    good, bad = chunked
    return [frame for chunk, frame in good if chunk], list(bad)
