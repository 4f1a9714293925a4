"""What every scenario shares: its folder and options, progress lines, the promises it checks,
and the RSS and CPU samples of its nodes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from load.machine import environment, shown_command
from load.reliability.cluster import Cluster, Node

PACKAGES = ("uvicorn", "uvloop", "starlette", "websockets", "msgpack", "aiosqlite", "httpx")
"""Whose versions ``results.json`` records."""


def say(text: str) -> None:
    print(text, flush=True)


@dataclass
class Promise:
    """One promise a scenario checks, whether it held, and the figure that says so."""

    name: str
    held: bool
    detail: str


@dataclass
class Run:
    """One scenario's run: where it writes, what it found."""

    scenario: str
    out: Path
    options: dict[str, Any]
    started: float = field(default_factory=time.monotonic)
    promises: list[Promise] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    """Bugs seen on the way (log errors, odd answers): reported, not judged."""

    def elapsed(self) -> str:
        s = int(time.monotonic() - self.started)
        return f"{s // 60}:{s % 60:02d}"

    def check(self, name: str, held: bool, detail: str) -> None:
        self.promises.append(Promise(name, held, detail))
        say(f"[{self.elapsed()}] {'held  ' if held else 'BROKEN'} {name}: {detail}")

    @property
    def ok(self) -> bool:
        return all(p.held for p in self.promises)

    def finish(self, cluster: Cluster) -> int:
        """Write ``results.json`` and ``summary.md`` to the folder; the exit code."""
        errors = cluster.all_errors()
        for name, lines in errors.items():
            self.findings.append(f"{name} logged {len(lines)} ERROR/traceback line(s): {lines[0]}")
        results = {
            "scenario": self.scenario,
            "command": shown_command(["python -m load.reliability", *sys.argv[1:]], self.out),
            "options": self.options,
            "environment": environment(PACKAGES),
            "wall_s": round(time.monotonic() - self.started, 1),
            "promises": [p.__dict__ for p in self.promises],
            "figures": self.figures,
            "findings": self.findings,
            "node_errors": errors,
        }
        (self.out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        (self.out / "summary.md").write_text(summary_markdown(results))
        verdict = "every promise held" if self.ok else "A PROMISE WAS BROKEN"
        say(f"[{self.elapsed()}] {self.scenario}: {verdict}; results in {self.out}")
        for finding in self.findings:
            say(f"  finding: {finding.strip()}")
        return 0 if self.ok else 1


def summary_markdown(results: dict[str, Any]) -> str:
    """The promises and figures of one run, as ``docs/RELIABILITY.md`` quotes them."""
    env = results["environment"]
    lines = [
        f"### `{results['scenario']}` — {env['date_utc']} UTC, tree {env['git']}",
        "",
        f"Command: `{results['command']}` ({results['wall_s']:.0f} s; {env['cpus']} CPUs, "
        f"{env['cpu']}, load average at start {env['loadavg']})",
        "",
        "| promise | held | figure |",
        "|---|---|---|",
    ]
    for p in results["promises"]:
        lines.append(f"| {p['name']} | {'yes' if p['held'] else '**no**'} | {p['detail']} |")
    lines += ["", "Figures:", "", "```json", json.dumps(results["figures"], indent=2), "```"]
    if results["findings"]:
        lines += ["", "Findings:", ""] + [f"- {f.strip()}" for f in results["findings"]]
    return "\n".join(lines) + "\n"


@contextlib.asynccontextmanager
async def progress(run: Run, line: Callable[[], str], every_s: float) -> AsyncIterator[None]:
    """Print ``line()`` every ``every_s`` seconds while the block runs."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(every_s)
            say(f"[{run.elapsed()}] {line()}")

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass
class Samples:
    """RSS (kB) and CPU seconds of nodes, sampled over time: (seconds since start, value)."""

    started: float = field(default_factory=time.monotonic)
    rss_kb: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    cpu_s: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def take(self, nodes: list[Node]) -> None:
        at = time.monotonic() - self.started
        for node in nodes:
            name = node.child.name
            rss, cpu = node.rss_kb(), node.cpu_s()
            if rss is not None:
                self.rss_kb.setdefault(name, []).append((at, rss))
            if cpu is not None:
                self.cpu_s.setdefault(name, []).append((at, cpu))

    async def every(self, nodes: Callable[[], list[Node]], seconds: float) -> None:
        """Sample ``nodes()`` every ``seconds`` until cancelled."""
        while True:
            self.take(nodes())
            await asyncio.sleep(seconds)
