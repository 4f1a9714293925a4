"""Run an ASGI app under uvicorn the way every lightcone process does."""

from __future__ import annotations

import logging
import socket

import uvicorn
from starlette.applications import Starlette

logger = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT)
    logging.getLogger("uvicorn.error").addFilter(_client_fault_is_not_an_error)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _client_fault_is_not_an_error(record: logging.LogRecord) -> bool:
    """uvicorn logs a client's invalid UTF-8 text frame with a traceback at ERROR, after
    closing the connection with 1007 as it should. It is the client's fault, not the
    server's: keep it as a one-line warning so error alerts stay meaningful."""
    if record.getMessage().startswith("Invalid UTF-8 sequence received from client"):
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = None
    return True


def bind(host: str, port: int, *, sndbuf: int = 0) -> list[socket.socket]:
    """Listening sockets for ``host``: ``""`` or ``"::"`` means every IPv4 and IPv6 address.

    ``sndbuf`` > 0 fixes the kernel send buffer of every accepted connection (they inherit
    it), which bounds what a client that stops reading can pin in the kernel; 0 keeps the
    operating system's autotuning.
    """
    if host in ("", "::"):
        sock = socket.create_server(
            ("::", port), family=socket.AF_INET6, dualstack_ipv6=True, reuse_port=False
        )
    else:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family)
    if sndbuf > 0:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    sock.set_inheritable(True)
    return [sock]


def serve(
    app: Starlette, *, name: str, host: str, port: int, ws_max_size: int, sndbuf: int = 0
) -> None:
    """Serve ``app`` until SIGINT/SIGTERM; logs the bound address (useful with port 0)."""
    sockets = bind(host, port, sndbuf=sndbuf)
    bound = sockets[0].getsockname()
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    logger.info("lightcone %s listening on http://%s:%d", name, shown, bound[1])
    config = uvicorn.Config(
        app,
        ws="websockets-sansio",
        ws_max_size=ws_max_size,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run(sockets=sockets)
