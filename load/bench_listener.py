"""What the listener's budgets cost per HTTP request: ``python -m load.bench_listener``.

The connection caps and deadlines (``shared.server``) and the per-client HTTP rate
(``shared.limits``) must not cost the hot path more than 5 %. This feeds keep-alive
``GET /suggest`` requests to uvicorn's HTTP protocol on a fake transport, with a handler that
answers a fixed body (the route's own work is measured by ``load.bench_serving``), and
counts this thread's CPU time per request, so other processes on the machine do not count:

* ``bare``: uvicorn's httptools protocol, no rate limit (before);
* ``budgets``: the guarded protocol and the rate limit, as ``lightcone edge`` serves (after);
* ``protocol`` and ``rate limit``: each alone.

Rounds alternate the variants (and their order) so drift hits them alike; the median and the
minimum over rounds are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from shared.limits import ClientRate, HttpRateLimit, ListenerBudgets, ListenerMetrics
from shared.ratelimit import BucketTable
from shared.server import uvicorn_config

REQUEST = b"GET /suggest?q=syd HTTP/1.1\r\nHost: edge\r\n\r\n"
BODY = b'{"items":[{"term":"Sydney","weight":5638830}],"version":4,"age_ms":5,"mode":"tolerant"}'
VARIANTS = {
    "bare": (False, False),
    "budgets": (True, True),
    "protocol": (True, False),
    "rate limit": (False, True),
}


class _Transport(asyncio.Transport):
    """Counts writes (a response is two: head, body) and says when ``expected`` are done."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.expected = 0
        self.answered = asyncio.Event()
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8080)}.get(
            name, default
        )

    def write(self, data: Any) -> None:
        self.writes += 1
        if self.writes >= self.expected:
            self.answered.set()

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _suggest(request: Request) -> Response:
    return Response(BODY, media_type="application/json")


def _protocol(guarded: bool, limited: bool) -> tuple[type[asyncio.Protocol], uvicorn.Config]:
    metrics = ListenerMetrics.register(CollectorRegistry())
    # Rate and burst far above the load: every request takes the full path and passes.
    rate = ClientRate(BucketTable(1e12, 10**12), metrics)
    middleware = [Middleware(HttpRateLimit, rate=rate, routes=("/suggest",))] if limited else []
    app = Starlette(routes=[Route("/suggest", _suggest)], middleware=middleware)
    if guarded:
        app.state.budgets = ListenerBudgets.create(
            metrics,
            max_connections=100,
            max_client_connections=100,
            read_timeout_s=10.0,
            handshake_timeout_s=10.0,
        )
    config = uvicorn_config(app, ws_max_size=65536, lifespan="off")
    config.load()
    cls: type[asyncio.Protocol] = config.http_protocol_class if guarded else HttpToolsProtocol
    return cls, config


async def _cpu_us_per_request(guarded: bool, limited: bool, requests: int) -> float:
    cls, config = _protocol(guarded, limited)
    protocol: Any = cls(config=config, server_state=ServerState(), app_state={})  # type: ignore[call-arg]
    transport = _Transport()
    protocol.connection_made(transport)
    started = time.thread_time_ns()
    for _ in range(requests):
        transport.expected = transport.writes + 2
        transport.answered.clear()
        protocol.data_received(REQUEST)
        await transport.answered.wait()  # the request's task runs to its answer
    spent = time.thread_time_ns() - started
    protocol.connection_lost(None)
    return spent / requests / 1000


async def run(rounds: int, requests: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for n in range(rounds):
        order = list(VARIANTS.items())
        for name, (guarded, limited) in order if n % 2 == 0 else reversed(order):
            results[name].append(await _cpu_us_per_request(guarded, limited, requests))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--requests", type=int, default=5000, help="per variant and round")
    args = parser.parse_args()
    results = asyncio.run(run(args.rounds, args.requests))
    bare = statistics.median(results["bare"])
    print(f"CPU per request ({args.rounds} rounds x {args.requests} requests, this thread):")
    for name, values in results.items():
        median = statistics.median(values)
        print(
            f"  {name:<11} median {median:6.2f} µs ({median - bare:+.2f}), "
            f"min {min(values):6.2f} µs"
        )


if __name__ == "__main__":
    main()
