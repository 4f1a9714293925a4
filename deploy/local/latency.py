"""A TCP proxy that adds distance: a one-way delay per direction, and partitions on command.

Nodes talk through it exactly as over a network, so node code never knows it is simulated
(there is no kernel traffic shaping on our machines). Each direction of each connection is a
queue of chunks stamped with their arrival time; a chunk is written ``delay_s`` after it
arrived, so byte order is kept and throughput is not capped.

The TCP handshake itself is not delayed (the proxy accepts locally, then connects on): a
fresh connection's first request pays one simulated round trip, not two. Websockets and
keep-alive HTTP, which the demo and the benchmarks use, pay the delay on every exchange.

A cut is a black hole, as a real partition is: bytes already sent and new connections are
held, not refused, and flow again after :meth:`LatencyProxy.heal` (TCP would retransmit).
Peers notice a long cut the way they would for real: through their own heartbeat timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Coroutine
from typing import Any

logger = logging.getLogger(__name__)

CHUNK_BYTES = 65536


class LatencyProxy:
    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        up_delay_s: float = 0.0,
        down_delay_s: float = 0.0,
        jitter_s: float = 0.0,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        name: str = "proxy",
        rand: Callable[[], float] = random.random,
    ) -> None:
        """Forward ``listen_host:listen_port`` to ``target_host:target_port``.

        Args:
            up_delay_s: one-way delay client → target.
            down_delay_s: one-way delay target → client.
            jitter_s: extra delay drawn uniformly from [0, jitter_s) per chunk; order is kept
                (a chunk never overtakes the one before it).
        """
        self.target = (target_host, target_port)
        self.listen = (listen_host, listen_port)
        self.up_delay_s = up_delay_s
        self.down_delay_s = down_delay_s
        self.jitter_s = jitter_s
        self.name = name
        self._rand = rand
        self._open = asyncio.Event()
        self._open.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("LatencyProxy is not started. Call 'start' first.")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def is_cut(self) -> bool:
        return not self._open.is_set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, *self.listen)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    def cut(self) -> None:
        """Hold every byte in both directions, and new connections, until :meth:`heal`."""
        logger.info("%s: cut", self.name)
        self._open.clear()

    def heal(self) -> None:
        logger.info("%s: healed", self.name)
        self._open.set()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(
        self, down_reader: asyncio.StreamReader, down_writer: asyncio.StreamWriter
    ) -> None:
        await self._open.wait()
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError as exc:
            logger.warning("%s: cannot reach %s:%d: %s", self.name, *self.target, exc)
            down_writer.close()
            return
        self._spawn(self._pump(down_reader, up_writer, self.up_delay_s))
        self._spawn(self._pump(up_reader, down_writer, self.down_delay_s))

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float
    ) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        deliver = asyncio.create_task(self._deliver(queue, writer))
        try:
            last_due = 0.0
            while True:
                data = await reader.read(CHUNK_BYTES)
                due = max(last_due, loop.time() + delay_s + self.jitter_s * self._rand())
                last_due = due
                queue.put_nowait((due, data))
                if not data:
                    break
            await deliver
        except ConnectionError:
            deliver.cancel()
            writer.close()
        except asyncio.CancelledError:
            deliver.cancel()
            writer.close()
            raise

    async def _deliver(
        self, queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter
    ) -> None:
        try:
            while True:
                due, data = await queue.get()
                await _until(due)
                await self._open.wait()
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


async def _until(due: float) -> None:
    """Sleep until the loop's clock reaches ``due``.

    Due times are on the loop's own clock, the one its timers use: uvloop's counts whole
    milliseconds, so a leg is exact to about a millisecond. Sleep again if a timer fires
    before ``due`` (bounded: it is at most a clock tick early).
    """
    loop = asyncio.get_running_loop()
    for _ in range(4):
        left = due - loop.time()
        if left <= 0:
            return
        await asyncio.sleep(left)
