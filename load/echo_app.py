"""A bare echo server on lightcone's own server stack: the baseline of the serving benchmark.

``GET /echo`` answers the query string back as a JSON object; ``/ws`` sends every binary frame
back as it came (``receive_bytes`` → ``send_bytes``). No metrics, no validation, no index: what
is left is the cost of uvicorn, Starlette routing and JSON / websocket framing, served by
:func:`shared.server.serve` exactly as ``lightcone core`` and ``lightcone edge`` are (same
uvicorn settings, one worker, uvloop, httptools, websockets-sansio).

``/ws-codec`` is the second websocket baseline: a *protocol* echo. It decodes every binary frame
with :func:`shared.protocol.decode` (msgpack, then the full field checks) and sends back
:func:`shared.protocol.encode` of the message it got: the codec work the edge must do for each
message, and nothing else (no rate limit, no metrics, no writer queue, no index). A frame that
does not decode ends the connection (the edge would answer an ``error``; the benchmark never
sends one).

Run: ``python -m load.echo_app --port 0`` (logs ``lightcone echo listening on http://...``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from shared.protocol import decode, encode
from shared.server import serve, setup_logging

MAX_FRAME_BYTES = 65536
"""Same as the edge's default ``LIGHTCONE_MAX_FRAME_BYTES``."""


async def echo(request: Request) -> Response:
    return JSONResponse(dict(request.query_params))


async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_bytes(await websocket.receive_bytes())
    except WebSocketDisconnect:
        return


async def ws_codec_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            await websocket.send_bytes(encode(decode(await websocket.receive_bytes())))
    except WebSocketDisconnect:
        return


def create_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/echo", echo),
            WebSocketRoute("/ws", ws_echo),
            WebSocketRoute("/ws-codec", ws_codec_echo),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m load.echo_app", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8090, help="port, 0 for any free one")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    serve(create_app(), name="echo", host=args.host, port=args.port, ws_max_size=MAX_FRAME_BYTES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
