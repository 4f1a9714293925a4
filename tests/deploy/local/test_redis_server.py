"""The throwaway Redis the demo and the tests start (:mod:`deploy.local.redis`)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from deploy.local.redis import running
from tests.helpers.redis import Server, require_redis


def _ping(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16)


def test_the_server_answers_and_comes_back_on_its_port(own_redis: Server) -> None:
    assert _ping(own_redis.port) == b"+PONG\r\n"
    port = own_redis.port
    own_redis.stop()
    try:
        _ping(port)
    except OSError:
        pass
    else:
        raise AssertionError("a stopped server still answers")
    own_redis.start()
    assert own_redis.port == port
    assert _ping(port) == b"+PONG\r\n"


def test_a_relative_parent_folder_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``lightcone up`` gives its data dir as it was typed (``lightcone-data/demo``)."""
    require_redis()
    monkeypatch.chdir(tmp_path)
    with running(Path("lightcone-data") / "demo") as server:
        assert _ping(server.port) == b"+PONG\r\n"
        assert server.folder.is_absolute() and server.log.exists()
