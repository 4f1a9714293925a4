"""Giving the memory of a replaced snapshot back to the system (glibc's allocator).

A snapshot arrives as a few blocks of tens of MB (the websocket frame, the message's data,
msgpack's parts), each copied from the one before and dropped once the next exists. glibc
serves a block from its heap rather than from its own mapping once a block of that size has
been freed before (its mmap threshold grows with what it sees freed, up to 32 MB), and it
keeps freed heap memory for reuse rather than return it. At a million terms that left the
edge 36 MB over its due at the next snapshot swap, and holding its peak after it.

So an edge process fixes the threshold (:func:`configure`, at start): every block of
:data:`MMAP_FROM` or more is a mapping of its own, returned whole the moment it is freed. A
block that grew there by reallocation stays in the heap though (the websocket library's
receive buffer does, to the size of the frame), so the edge also returns the heap's free pages
(:func:`give_back`, ``malloc_trim``) once a frame of that size is received, before it is
decoded, and after a swap. That takes a few milliseconds, in a worker thread (the call
releases the interpreter lock), once per snapshot. Where the C library is not glibc (musl,
macOS) both do nothing.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

MMAP_FROM = 1 << 20
"""Blocks of this many bytes or more get a mapping of their own (1 MiB: what the edge
allocates so large is snapshot data and large frames, rare enough that a mapping each costs
nothing measurable; requests and answers are far smaller)."""

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)


def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)  # the C library the interpreter runs on
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError):  # not glibc
        return None
    return libc


_LIBC = _libc()


def configure() -> bool:
    """Give every block of :data:`MMAP_FROM` or more its own mapping; whether this C library
    takes the setting."""
    return _LIBC is not None and _LIBC.mallopt(_M_MMAP_THRESHOLD, MMAP_FROM) == 1


def give_back() -> bool:
    """Return the C heap's free pages to the system; whether this C library can."""
    if _LIBC is None:
        return False
    _LIBC.malloc_trim(0)
    return True
