"""Closed-loop websocket load: ``websockets`` asyncio clients, one frame in flight each."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Sequence

import websockets
from websockets.asyncio.client import connect

from load.machine import self_cpu_s
from load.serving import BenchError
from load.serving.result import LoadResult, percentile
from shared.protocol import unpack


async def ws_load(
    url: str, frames: Sequence[bytes], expect: str, connections: int, seconds: float
) -> LoadResult:
    """Closed-loop websocket load: each connection sends a frame and awaits its answer."""
    socks = [
        await connect(url, compression=None, ping_interval=None, open_timeout=5, close_timeout=1)
        for _ in range(connections)
    ]
    latencies: list[list[float]] = [[] for _ in socks]
    errors = [0] * len(socks)
    cpu0 = self_cpu_s()
    started = time.perf_counter()
    deadline = started + seconds

    async def drive(k: int) -> None:
        ws, lat = socks[k], latencies[k]
        clock = time.perf_counter
        for i in itertools.count(k * len(frames) // connections):
            sent = clock()
            if sent >= deadline:
                return
            await ws.send(frames[i % len(frames)])
            reply = await ws.recv(decode=False)
            lat.append(clock() - sent)
            answer = unpack(reply)
            if not isinstance(answer, dict) or answer.get("type") != expect:
                errors[k] += 1

    try:
        async with asyncio.timeout(seconds + 10):
            await asyncio.gather(*(drive(k) for k in range(len(socks))))
    except (TimeoutError, websockets.ConnectionClosed) as exc:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # interrupted (Ctrl-C): not a failure of the server
        raise BenchError(f"websocket load on {url} failed: {exc!r}") from None
    finally:
        elapsed = time.perf_counter() - started
        cpu = self_cpu_s() - cpu0
        for ws in socks:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await ws.close()
    lat_all = sorted(itertools.chain.from_iterable(latencies))
    return LoadResult(
        requests=len(lat_all),
        errors=sum(errors),
        seconds=elapsed,
        p50_s=percentile(lat_all, 0.5),
        p99_s=percentile(lat_all, 0.99),
        client_cpu_s=cpu,
        note="websockets",
    )
