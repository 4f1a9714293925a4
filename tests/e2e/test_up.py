"""``lightcone up``: topology with simulated geography, status file, partitions, clean stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.local import geography
from tests.helpers.clients import prefix_terms
from tests.helpers.waiting import until_equal

pytestmark = pytest.mark.e2e


async def timed_suggest(client: httpx.AsyncClient, url: str) -> float:
    started = time.perf_counter()
    response = await client.get(f"{url}/suggest", params={"q": "sao pa"})
    assert response.json()["items"][0]["term"] == "São Paulo"
    return (time.perf_counter() - started) * 1000


async def start_up(tmp_path: Path, *args: str) -> asyncio.subprocess.Process:
    """``lightcone up`` with its data and status file (``status.json``) under ``tmp_path``."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shared.cli", "up", *args,
        "--data-dir", str(tmp_path / "demo"), "--status-file", str(tmp_path / "status.json"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def until_ready(stdout: asyncio.StreamReader) -> list[str]:
    """The lines ``lightcone up`` prints until every node is ready (60 s at most)."""
    lines: list[str] = []
    async with asyncio.timeout(60):
        while not lines or "Ctrl-C stops everything" not in lines[-1]:
            lines.append((await stdout.readline()).decode())
            assert lines[-1], f"lightcone up ended early: {lines}"
    return lines


async def stop_up(process: asyncio.subprocess.Process) -> tuple[int, str]:
    """Stop ``lightcone up`` as Ctrl-C does (if it is still running): its exit code and the
    rest of what it printed (30 s at most)."""
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
    assert process.stdout is not None
    async with asyncio.timeout(30):
        rest = await process.stdout.read()
        return await process.wait(), rest.decode()


async def kill_one(
    process: asyncio.subprocess.Process, status_file: Path, kind: str, region: str
) -> tuple[dict[str, Any], int, str]:
    """Once ``lightcone up`` is ready, ``kill -9`` its node of ``kind`` in ``region``; the
    topology it had, then its exit code and what it printed after (30 s at most)."""
    assert process.stdout is not None
    try:
        await until_ready(process.stdout)
        topology: dict[str, Any] = json.loads(await asyncio.to_thread(status_file.read_text))
        victim = next(n for n in topology["nodes"] if n["kind"] == kind and n["region"] == region)
        os.kill(victim["pid"], signal.SIGKILL)
        async with asyncio.timeout(30):
            rest = (await process.stdout.read()).decode()
            code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return topology, code, rest


async def test_up_serves_with_geography_then_stops_everything(tmp_path: Path) -> None:
    """Every node gets ready, the status file describes the topology, the central entry is
    slower than the nearest edge by the simulated RTT difference, partitions switch, and
    SIGINT stops every process and removes the status file."""
    status_file = tmp_path / "status.json"
    process = await start_up(tmp_path, "--edges", "lhr,syd", "--users", "syd,lhr")
    assert process.stdout is not None
    try:
        lines = await until_ready(process.stdout)
        progress = [line.split("]")[0] for line in lines if line.startswith("[")]
        assert progress == ["[1/4", "[2/4", "[3/4", "[4/4"]
        topology: dict[str, Any] = json.loads(status_file.read_text())
        nodes = {(n["kind"], n["region"]) for n in topology["nodes"]}
        assert nodes == {("core", "iad"), ("edge", "iad"), ("edge", "lhr"), ("edge", "syd")}
        entries = {(e["user_region"], e["kind"]): e for e in topology["entries"]}
        assert set(entries) == {
            ("syd", "edge"),
            ("syd", "central"),
            ("lhr", "edge"),
            ("lhr", "central"),
        }
        near, far = entries[("syd", "edge")], entries[("syd", "central")]
        assert (near["target_region"], far["target_region"]) == ("syd", "iad")
        assert near["rtt_ms"] == 5.0 and far["rtt_ms"] == 206.5
        assert far["fiber_floor_ms"] == pytest.approx(156.8, abs=0.5)

        async with httpx.AsyncClient() as client:
            await timed_suggest(client, near["url"])  # open keep-alive connections first
            await timed_suggest(client, far["url"])
            near_ms = statistics.median(
                [await timed_suggest(client, near["url"]) for _ in range(5)]
            )
            far_ms = statistics.median([await timed_suggest(client, far["url"]) for _ in range(5)])
            assert near_ms == pytest.approx(near["rtt_ms"], abs=15)
            assert far_ms - near_ms == pytest.approx(far["rtt_ms"] - near["rtt_ms"], abs=20)

            # The demo's core counts one source enough (every user is 127.0.0.1): a logged
            # search is a suggestion on every edge.
            body = {"id": "demo-1", "q": "Demo Harbour"}
            ack = (await client.post(f"{near['url']}/search", json=body, timeout=10)).json()
            assert ack["status"] == "committed"
            answer = await client.get(
                f"{far['url']}/suggest", params={"q": "demo h", "min_version": ack["version"]}
            )
            assert prefix_terms(answer.json()["items"]) == ["Demo Harbour"]

            cut = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "shared.cli",
                "partition",
                "syd",
                "--status-file",
                str(status_file),
                stdout=asyncio.subprocess.DEVNULL,
            )
            assert await cut.wait() == 0
            state = (await client.get(f"{topology['control_url']}/topology")).json()
            assert state["partitions"] == {"iad": False, "lhr": False, "syd": True}
            await client.post(f"{topology['control_url']}/heal/syd")

            # The edge mesh: a leg per pair, with the pair's measured RTT; every link comes up.
            legs = {(leg["a"], leg["b"]): leg["rtt_ms"] for leg in topology["mesh"]}
            assert set(legs) == {("iad", "lhr"), ("iad", "syd"), ("lhr", "syd")}
            assert legs[("lhr", "syd")] == geography.link("lhr", "syd").p50_ms
            syd = next(n["url"] for n in topology["nodes"] if n["region"] == "syd")

            async def mesh_of_syd() -> dict[str, Any]:
                peers: dict[str, Any] = (await client.get(f"{syd}/status")).json()["mesh"]["peers"]
                return {region: peer["state"] for region, peer in peers.items()}

            await until_equal(mesh_of_syd, {"iad": "up", "lhr": "up"}, 20)
            await client.post(f"{topology['control_url']}/mesh-partition/syd")
            state = (await client.get(f"{topology['control_url']}/topology")).json()
            assert state["mesh_partitions"] == {"iad": False, "lhr": False, "syd": True}
            await client.post(f"{topology['control_url']}/mesh-heal/syd")
    finally:
        code, rest = await stop_up(process)
    assert code == 0, rest
    assert "lightcone up: stopped" in rest
    assert not status_file.exists()
    for node in topology["nodes"]:
        with pytest.raises(ProcessLookupError):
            os.kill(node["pid"], 0)


async def test_up_reports_a_crashed_node_and_stops_the_rest(tmp_path: Path) -> None:
    """When a node dies, lightcone up says which, stops the others and exits with 1."""
    process = await start_up(tmp_path, "--edges", "lhr")
    topology, code, rest = await kill_one(process, tmp_path / "status.json", "edge", "lhr")
    assert code == 1
    assert "edge-lhr exited with -9; stopping the others" in rest
    for node in topology["nodes"]:
        with pytest.raises(ProcessLookupError):
            os.kill(node["pid"], 0)
