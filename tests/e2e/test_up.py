"""``lightcone up`` starts a core and edges, serves, and stops everything on Ctrl-C."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e


async def test_up_serves_then_stops_everything_on_sigint(tmp_path: Path) -> None:
    """Every node reports ready, an edge answers, and SIGINT leaves no server behind."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shared.cli",
        "up",
        "--edges",
        "lhr,syd",
        "--data-dir",
        str(tmp_path / "demo"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(60):
            while not lines or "Ctrl-C stops everything" not in lines[-1]:
                lines.append((await process.stdout.readline()).decode())
                assert lines[-1], f"lightcone up ended early: {lines}"
        urls = dict(re.findall(r"\] (?:core|edge) +(\w+) .* (http://\S+)", "".join(lines)))
        progress = [line for line in lines if line.startswith("[")]
        assert [p.split("]")[0] for p in progress] == ["[1/3", "[2/3", "[3/3"]
        async with httpx.AsyncClient() as client:
            answer = (await client.get(f"{urls['syd']}/suggest", params={"q": "sao pa"})).json()
        assert answer["region"] == "syd" and answer["items"][0]["term"] == "São Paulo"
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            rest = await process.stdout.read()
            code = await process.wait()
    assert code == 0, rest.decode()
    assert b"lightcone up: stopped" in rest
    async with httpx.AsyncClient() as client:
        for url in urls.values():
            with pytest.raises(httpx.ConnectError):
                await client.get(f"{url}/healthz")
