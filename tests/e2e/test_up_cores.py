"""``lightcone up --cores 2 --store postgres``: two core nodes on a throwaway PostgreSQL and
a throwaway Redis, edges that fail over between them, and a core node stopped, crashed and
started again through the control API and ``lightcone core-node`` without stopping the demo.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.local.cores import core_of
from tests.e2e.test_up import start_up, stop_up, until_ready
from tests.e2e.test_up_postgres import exists, running
from tests.helpers.postgres import require_postgres
from tests.helpers.redis import require_redis
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.e2e

MOVE_TIMEOUT_S = 15
"""Longest wait for an edge to be on another core node: a stopped node closes its links at
once, a killed one's sockets are closed by the kernel, and the edge redials within its
backoff (at most LIGHTCONE_RECONNECT_MAX_S, 5 s)."""


async def cli(status_file: Path, *args: str) -> tuple[int, str]:
    """``lightcone <args> --status-file ...``: its exit code and what it printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shared.cli", *args, "--status-file", str(status_file),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await process.communicate()
    return await process.wait(), out.decode()


async def on(client: httpx.AsyncClient, edge: dict[str, Any]) -> str | None:
    """The core node ``edge`` is linked to now (by label), ``None`` while it is not linked."""
    status = (await client.get(f"{edge['url']}/status")).json()
    return core_of(edge, status["core"]) if status["link"] == "up" else None


async def moved(client: httpx.AsyncClient, edge: dict[str, Any], to: str) -> None:
    async def check() -> bool:
        return await on(client, edge) == to

    await eventually(check, MOVE_TIMEOUT_S, f"edge {edge['region']} on {to}")


async def states(client: httpx.AsyncClient, control: str) -> dict[str, str]:
    nodes = (await client.get(f"{control}/core-nodes")).json()["core_nodes"]
    return {n["name"]: n["state"] for n in nodes}


async def test_two_core_nodes_and_edges_that_fail_over_between_them(tmp_path: Path) -> None:
    require_postgres()
    require_redis()
    started = time.monotonic()
    status_file = tmp_path / "status.json"
    process = await start_up(
        tmp_path, "--cores", "2", "--store", "postgres", "--edges", "lhr", "--users", "lhr"
    )
    assert process.stdout is not None
    try:
        lines = await until_ready(process.stdout)
        text = "".join(lines)
        assert "[broker] redis  ready in" in text and "[store] postgres  ready in" in text
        progress = [line.split("  ready")[0] for line in lines if line.startswith("[")]
        assert progress[2:] == [
            "[1/4] core-1  iad",
            "[2/4] core-2  iad",
            "[3/4] edge    iad",
            "[4/4] edge    lhr",
        ]
        topology: dict[str, Any] = json.loads(status_file.read_text())
        control = topology["control_url"]
        cores = {n["name"]: n for n in topology["nodes"] if n["kind"] == "core"}
        edges = {n["region"]: n for n in topology["nodes"] if n["kind"] == "edge"}
        assert set(cores) == {"core-1", "core-2"}
        assert all(c["state"] == "running" and c["region"] == "iad" for c in cores.values())
        broker = topology["broker"]
        assert broker["throwaway"] is True and running(broker["pid"])
        # Every edge has both nodes, first the one its order rotates to: they spread.
        assert [list(edges[r]["core_links"]) for r in ("iad", "lhr")] == [
            ["core-1", "core-2"],
            ["core-2", "core-1"],
        ]

        async with httpx.AsyncClient(timeout=10) as client:
            for edge in edges.values():
                await moved(client, edge, next(iter(edge["core_links"])))
            lhr = edges["lhr"]

            # Stopped on purpose (SIGTERM): the demo goes on, the edge moves to the other.
            cut = time.monotonic()
            answer = await client.post(f"{control}/core-nodes/core-2/stop")
            assert answer.json()["state"] == "stopped" and answer.json()["pid"] is None
            await moved(client, lhr, "core-1")
            print(f"edge lhr on core-1 {time.monotonic() - cut:.2f} s after core-2's stop")
            assert await states(client, control) == {"core-1": "running", "core-2": "stopped"}
            written = json.loads(status_file.read_text())
            assert [n["state"] for n in written["nodes"] if n["kind"] == "core"] == [
                "running",
                "stopped",
            ]
            # Writes go on through the remaining node.
            entry = topology["entries"][0]["url"]
            body = {"id": "cores-1", "q": "Twonode Harbour"}
            ack = (await client.post(f"{entry}/search", json=body)).json()
            assert ack["status"] == "committed", ack

            # Started again from the CLI: same port, running, answering.
            code, out = await cli(status_file, "core-node", "start", "core-2")
            assert code == 0 and "core-2 running" in out, out
            assert await states(client, control) == {"core-1": "running", "core-2": "running"}
            assert (await client.get(f"{cores['core-2']['url']}/readyz")).status_code == 200

            # Crashed on purpose (kill -9) from the CLI: every edge ends up on core-2.
            cut = time.monotonic()
            code, out = await cli(status_file, "core-node", "stop", "core-1", "--kill")
            assert code == 0 and "core-1 crashed" in out, out
            for edge in edges.values():
                await moved(client, edge, "core-2")
            took = time.monotonic() - cut
            print(f"every edge on core-2 {took:.2f} s after core-1's kill -9 (CLI included)")
            code, out = await cli(status_file, "core-node", "list")
            assert code == 0
            listed = {line.split()[0]: line for line in out.splitlines()}
            assert "crashed" in listed["core-1"] and "edges: -" in listed["core-1"]
            assert "running" in listed["core-2"] and "edges: iad lhr" in listed["core-2"]
            now = (await client.get(f"{control}/core-nodes")).json()["core_nodes"]
            pids = {n["pid"] for n in [*topology["nodes"], *now]} - {None}
    finally:
        code, rest = await stop_up(process)
    assert code == 0, rest
    assert "[core-1] killed (SIGKILL) from the control API" in rest
    assert not running(broker["pid"]) and not exists(broker["folder"])
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    print(f"two core nodes test took {time.monotonic() - started:.1f} s")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ("--cores", "2"),
            "lightcone up: --cores 2 needs a store the nodes share: --store postgres",
        ),
        (("--cores", "5", "--store", "postgres"), "lightcone up: --cores must be 1 to 4"),
        (
            ("--cores", "2", "--store", "postgres", "--broker", "http://x"),
            "lightcone up: --broker must be a redis://, rediss:// or unix:// URL",
        ),
    ],
)
async def test_up_refuses_core_nodes_it_cannot_run(
    tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    process = await start_up(tmp_path, *args)
    assert process.stdout is not None
    async with asyncio.timeout(30):
        rest = (await process.stdout.read()).decode()
        assert await process.wait() == 2
    assert says in rest


async def test_up_says_what_to_install_for_the_broker(tmp_path: Path) -> None:
    """Without redis-server (not on the PATH), ``--cores 2`` says what to install and exits
    with 3, having started nothing."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shared.cli", "up", "--cores", "2", "--store", "postgres",
        "--data-dir", str(tmp_path / "demo"),
        env={**os.environ, "PATH": str(tmp_path / "empty")},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    async with asyncio.timeout(30):
        out = (await process.communicate())[0].decode()
    assert process.returncode == 3, out
    assert (
        "lightcone up: --cores 2 needs a broker (or --broker URL): redis-server is not "
        "installed: apt-get install redis-server"
    ) in out
    assert "ready in" not in out
