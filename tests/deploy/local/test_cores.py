"""The demo's core nodes (:mod:`deploy.local.cores`) on a real ``lightcone core`` process:
stopped on purpose is no crash, started again on the same port, and a start that fails is a
503 that leaves the demo running."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from deploy.local.cores import READY, CoreNodes
from deploy.local.supervisor import Supervisor
from shared.errors import Unavailable
from tests.helpers.nodes import ADMIN_TOKEN, LINK_TOKEN, SMALL_CORPUS

pytestmark = pytest.mark.e2e


async def test_a_core_node_stops_and_starts_again_and_a_failed_start_is_no_crash(
    tmp_path: Path,
) -> None:
    with Supervisor(tmp_path / "logs") as supervisor:
        args = ["core", "--port", "0", "--data-dir", str(tmp_path / "core")]
        args += ["--corpus", str(SMALL_CORPUS)]
        env = {"LIGHTCONE_ADMIN_TOKEN": ADMIN_TOKEN, "LIGHTCONE_LINK_TOKEN": LINK_TOKEN}
        child = supervisor.start("core-1", args, env, READY, 60)
        changes: list[str] = []
        cores = CoreNodes(supervisor, lambda: changes.append(cores.nodes["core-1"].state))
        cores.add("core-1", "iad", child.url, child)

        node = await cores.stop("core-1")
        assert node.state == "stopped" and node.view()["pid"] is None
        assert supervisor.crashed() is None  # on purpose: lightcone up goes on
        assert changes == ["stopping", "stopped"]
        assert (await cores.stop("core-1")).state == "stopped"  # a no-op

        node = await cores.start("core-1")
        assert node.state == "running" and node.url == child.url and node.child is not child
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{node.url}/readyz")).status_code == 200
        assert supervisor.children == [node.child]
        assert (await cores.start("core-1")).child is node.child  # a no-op

        # Its port taken while it is down: the start fails, named, and is no crash either.
        assert (await cores.stop("core-1", kill=True)).state == "crashed"
        host, port = node.url.removeprefix("http://").rsplit(":", 1)
        with socket.create_server((host, int(port))):
            with pytest.raises(Unavailable) as failed:
                await cores.start("core-1")
        assert failed.value.code == "core_node_unavailable"
        assert "core node core-1 did not start again" in failed.value.message, failed.value
        assert cores.nodes["core-1"].state == "crashed"
        assert supervisor.crashed() is None
