"""A lean closed-loop HTTP/1.1 load generator on asyncio protocols (the fallback for ``wrk``)."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Sequence
from typing import cast

from load.machine import self_cpu_s
from load.serving.result import LoadResult, percentile


class _HttpRun:
    """Shared state of one closed-loop HTTP phase."""

    def __init__(self, requests: Sequence[bytes], deadline_in_s: float) -> None:
        self.requests = requests
        self.deadline_in_s = deadline_in_s
        self.deadline = float("inf")
        self.latencies: list[float] = []
        self.errors = 0
        self.open = 0
        self.all_closed = asyncio.get_running_loop().create_future()

    def closed(self) -> None:
        self.open -= 1
        if self.open == 0 and not self.all_closed.done():
            self.all_closed.set_result(None)


class _HttpConnection(asyncio.Protocol):
    """One keep-alive connection: send a GET, read the answer (Content-Length), repeat."""

    def __init__(self, run: _HttpRun, offset: int) -> None:
        self.run = run
        self.next = offset
        self.buffer = bytearray()
        self.need = -1
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.run.open += 1

    def send(self) -> None:
        assert self.transport is not None
        now = time.perf_counter()
        if now >= self.run.deadline:
            self.transport.close()
            return
        requests = self.run.requests
        self.next = (self.next + 1) % len(requests)
        self.sent_at = now
        self.transport.write(requests[self.next])

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        if self.need < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                self.run.errors += 1
                assert self.transport is not None
                self.transport.close()
                return
            at += 17
            stop = head.find(b"\r", at)
            length = int(head[at:] if stop < 0 else head[at:stop])
            if not head.startswith(b"http/1.1 200"):
                self.run.errors += 1
            self.need = end + 4 + length
        if len(buf) < self.need:
            return
        self.run.latencies.append(time.perf_counter() - self.sent_at)
        del buf[: self.need]
        self.need = -1
        self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        self.run.closed()


async def http_load_python(
    host: str, port: int, paths: Sequence[str], connections: int, seconds: float
) -> LoadResult:
    """Closed-loop HTTP/1.1 keep-alive load from this process (uvloop when available)."""
    requests = [f"GET {p} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode() for p in paths]
    return await http_load_requests(host, port, requests, connections, seconds)


async def http_load_requests(
    host: str, port: int, requests: Sequence[bytes], connections: int, seconds: float
) -> LoadResult:
    """Closed-loop load of whole HTTP/1.1 requests: each connection sends ``requests[i]``,
    ``requests[i + 1]``, ... (from its own offset, wrapping), one at a time, for ``seconds``.

    An answer other than 200 is counted in ``errors`` (and its latency kept, as any answer's).
    """
    loop = asyncio.get_running_loop()
    run = _HttpRun(requests, seconds)
    made: list[_HttpConnection] = []
    for i in range(connections):
        offset = i * len(requests) // connections
        _, proto = await loop.create_connection(
            functools.partial(_HttpConnection, run, offset), host, port
        )
        made.append(proto)
    cpu0 = self_cpu_s()
    started = time.perf_counter()
    run.deadline = started + seconds
    for proto in made:
        proto.send()
    try:
        async with asyncio.timeout(seconds + 10):
            await run.all_closed
    except TimeoutError:
        for proto in made:
            if proto.transport is not None:
                proto.transport.abort()
        run.errors += 1
    elapsed = time.perf_counter() - started
    lat = sorted(run.latencies)
    return LoadResult(
        requests=len(lat),
        errors=run.errors,
        seconds=elapsed,
        p50_s=percentile(lat, 0.5),
        p99_s=percentile(lat, 0.99),
        client_cpu_s=self_cpu_s() - cpu0,
        note="python",
    )
