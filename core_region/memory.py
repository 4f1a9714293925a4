"""Giving memory back: the core builds snapshots of a million terms (a few hundred MB that
live for seconds) in a process whose budget is what it holds (docs/operations.md §5, "A million
terms").

Both functions call glibc through ``ctypes`` and do nothing where there is no glibc, nor for
fewer than :data:`LARGE` terms (there a build's memory is a few MB, not worth a walk of the
heap).
"""

from __future__ import annotations

import ctypes
import gc
from typing import Any

LARGE = 100_000
"""Terms from which a build's memory is given back and glibc is tuned for it."""


def release_memory(terms: int) -> None:
    """Give the memory a build over ``terms`` terms freed back to the system (glibc keeps
    freed heap pages mapped; ``malloc_trim`` returns them): the core's resident memory after
    a seed or a compaction is then what it holds, not its peak."""
    if terms >= LARGE and _LIBC is not None:
        gc.collect()
        _LIBC.malloc_trim(0)


def tune_malloc(terms: int) -> None:
    """Have glibc give back every large block (128 KiB and more) as soon as it is freed, in
    a process about to build over ``terms`` terms (for the rest of its life).

    By default glibc raises that threshold after the first large block is freed, up to
    32 MB, and keeps later ones in its heap: the transient blocks of a snapshot build (the
    trie's, the packed blob's) then pile up, and the core's peak at a million terms is their
    sum, not their maximum (about 80 MB more, measured at a million terms).
    """
    if terms >= LARGE and _LIBC is not None:
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
