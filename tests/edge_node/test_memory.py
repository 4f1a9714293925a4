"""The edge's allocator settings (edge_node/memory.py) on the C library the tests run on."""

from __future__ import annotations

import platform

from edge_node import memory


def test_configure_and_give_back_work_on_glibc_and_do_nothing_elsewhere() -> None:
    """On glibc both calls take effect (and can be repeated); elsewhere they say they did not."""
    glibc = platform.libc_ver()[0] == "glibc"
    assert memory.configure() is glibc
    assert memory.configure() is glibc
    assert memory.give_back() is glibc
