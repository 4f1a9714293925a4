"""Giving memory back: the core builds snapshots of a million terms (a few hundred MB that
live for seconds) in a process whose budget is what it holds (docs/operations.md §5, "A million
terms").

Both functions call glibc through ``ctypes`` and do nothing where there is no glibc.
"""

from __future__ import annotations

import ctypes
import gc
from typing import Any


def release_memory() -> None:
    """Give the memory a snapshot build freed back to the system (glibc keeps freed heap
    pages mapped; ``malloc_trim`` returns them): the core's resident memory after a seed or a
    compaction is then what it holds, not its peak. A no-op where there is no glibc."""
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def tune_malloc() -> None:
    """Have glibc give back every large block (128 KiB and more) as soon as it is freed.

    By default glibc raises that threshold after the first large block is freed, up to
    32 MB, and keeps later ones in its heap: the transient blocks of a snapshot build (the
    trie's, the packed blob's) then pile up, and the core's peak at a million terms is their
    sum, not their maximum (about 80 MB more, measured at a million terms). A no-op without
    glibc.
    """
    if _LIBC is not None:
        _LIBC.mallopt(_M_MMAP_THRESHOLD, _LARGE)
        _LIBC.mallopt(_M_TRIM_THRESHOLD, _LARGE)


_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_LARGE = 128 * 1024
"""glibc's default threshold, kept fixed (``mallopt(3)``)."""


def _libc() -> Any:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _libc()
