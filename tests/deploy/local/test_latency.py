"""The latency proxy: delay per direction, byte order, partitions that hold traffic until heal."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import AsyncIterator

import pytest

from deploy.local.latency import LatencyProxy

UP_S, DOWN_S = 0.050, 0.030


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    """A TCP echo server on an ephemeral port; it stamps the time each chunk arrives."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.fixture
async def proxy(echo_port: int) -> AsyncIterator[LatencyProxy]:
    proxy = LatencyProxy("127.0.0.1", echo_port, up_delay_s=UP_S, down_delay_s=DOWN_S)
    await proxy.start()
    yield proxy
    await proxy.close()


async def round_trip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> float:
    started = time.perf_counter()
    writer.write(b"ping")
    await writer.drain()
    assert await reader.readexactly(4) == b"ping"
    return time.perf_counter() - started


async def test_round_trip_is_the_sum_of_both_delays(proxy: LatencyProxy) -> None:
    """Through an echo, a round trip takes up + down delay, within a few ms."""
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    samples = [await round_trip(reader, writer) for _ in range(10)]
    writer.close()
    assert statistics.median(samples) == pytest.approx(UP_S + DOWN_S, abs=0.005)
    assert min(samples) >= UP_S + DOWN_S - 0.001


async def test_each_direction_has_its_own_delay(echo_port: int) -> None:
    """Only the upstream direction delayed: the round trip shows just that delay."""
    one_way = LatencyProxy("127.0.0.1", echo_port, up_delay_s=UP_S, down_delay_s=0.0)
    await one_way.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", one_way.port)
        samples = [await round_trip(reader, writer) for _ in range(5)]
        writer.close()
    finally:
        await one_way.close()
    assert statistics.median(samples) == pytest.approx(UP_S, abs=0.005)


async def test_byte_order_is_kept_with_jitter(echo_port: int) -> None:
    """A megabyte in many writes comes back byte for byte, even with jitter per chunk."""
    jittery = LatencyProxy("127.0.0.1", echo_port, up_delay_s=0.005, jitter_s=0.010)
    await jittery.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", jittery.port)
        payload = os.urandom(1 << 20)
        for i in range(0, len(payload), 4096):
            writer.write(payload[i : i + 4096])
        await writer.drain()
        async with asyncio.timeout(10):
            assert await reader.readexactly(len(payload)) == payload
        writer.close()
    finally:
        await jittery.close()


async def test_a_cut_holds_traffic_until_heal(proxy: LatencyProxy) -> None:
    """While cut nothing gets through, on open or new connections; after heal all of it does."""
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    await round_trip(reader, writer)
    proxy.cut()
    writer.write(b"held")
    await writer.drain()
    late_reader, late_writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    late_writer.write(b"late")
    await late_writer.drain()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await reader.readexactly(4)
    healed_at = time.perf_counter()
    proxy.heal()
    async with asyncio.timeout(2):
        assert await reader.readexactly(4) == b"held"
        assert await late_reader.readexactly(4) == b"late"
    assert time.perf_counter() - healed_at >= DOWN_S - 0.001
    writer.close()
    late_writer.close()
