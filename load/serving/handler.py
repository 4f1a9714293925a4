"""The edge's suggestion handler timed in this process, on the snapshot the edge loads."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Coroutine
from typing import Any

from websockets.asyncio.client import connect

from load.serving.result import percentile
from load.serving.workload import LIMIT, PREFIXES
from shared.protocol import Hello, Snapshot, decode, encode


async def fetch_snapshot(core_url: str, token: str, timeout_s: float = 20.0) -> bytes:
    """The snapshot bytes the core sends a new edge (as the edge gets them on its link)."""
    link = core_url.replace("http://", "ws://", 1) + "/link"
    async with asyncio.timeout(timeout_s):
        async with connect(
            link,
            additional_headers={"Authorization": f"Bearer {token}"},
            max_size=256 << 20,
            compression=None,
            ping_interval=None,
        ) as ws:
            await ws.send(encode(Hello("bench-probe", "bench-probe", -1)))
            while True:
                message = decode(await ws.recv(decode=False), strict=False)
                if isinstance(message, Snapshot):
                    return message.data


def _timed(calls: int, fn: Callable[[int], object]) -> dict[str, float]:
    times: list[float] = []
    clock = time.perf_counter_ns
    for i in range(calls):
        t0 = clock()
        fn(i)
        times.append((clock() - t0) / 1e9)
    times.sort()
    return _stats(times)


async def _timed_async(
    calls: int, fn: Callable[[int], Coroutine[Any, Any, object]]
) -> dict[str, float]:
    times: list[float] = []
    clock = time.perf_counter_ns
    for i in range(calls):
        t0 = clock()
        await fn(i)
        times.append((clock() - t0) / 1e9)
    times.sort()
    return _stats(times)


def _stats(sorted_s: list[float]) -> dict[str, float]:
    return {
        "calls": len(sorted_s),
        "mean_s": statistics.fmean(sorted_s),
        "p50_s": percentile(sorted_s, 0.5) or 0.0,
        "p99_s": percentile(sorted_s, 0.99) or 0.0,
        "max_s": sorted_s[-1],
    }


async def handler_timings(core_url: str, token: str, calls: int) -> dict[str, dict[str, float]]:
    """Per-call time of the edge's suggestion work on the real snapshot, without the server.

    ``index``: ``SuggestIndex.query(fold(q), 10)``; ``http_handler``: the suggestion feature's
    ``suggest`` plus the JSON body the ``/suggest`` route renders; ``ws_handler``: the same plus
    the msgpack frame ``/ws`` sends. Prefixes as in the load, cycled; timed warm (steady state).
    """

    from edge_node.app import FEATURES
    from edge_node.metrics import EdgeMetrics
    from edge_node.node import EdgeNode
    from edge_node.settings import EdgeSettings
    from edge_node.suggest.feature import SuggestFeature
    from shared.folding import fold

    settings = EdgeSettings(core_url=core_url, region="bench")
    node = EdgeNode(settings, token, EdgeMetrics("bench"), FEATURES)
    await node.link.receive(encode(Snapshot(0, await fetch_snapshot(core_url, token))))
    service = node.features["suggest"]
    assert isinstance(service, SuggestFeature) and service.index is not None
    index = service.index
    n = len(PREFIXES)

    async def http_handler(i: int) -> object:
        return (await service.suggest(PREFIXES[i % n], LIMIT)).http_body()

    async def ws_handler(i: int) -> object:
        return (await service.suggest(PREFIXES[i % n], LIMIT)).frame(i, json_codec=False)

    # Warm, as the load phases are: the index, and the service's prepared answers (one miss
    # per prefix, which costs an index query plus the items' encoding, as in the "index" row).
    _timed(n, lambda i: index.query(fold(PREFIXES[i % n]), LIMIT))
    await _timed_async(n, http_handler)
    return {
        "index": _timed(calls, lambda i: index.query(fold(PREFIXES[i % n]), LIMIT)),
        "http_handler": await _timed_async(calls, http_handler),
        "ws_handler": await _timed_async(calls, ws_handler),
    }
