"""The hot path before and after a change, in one process: the edge's handlers, call by call.

Run: ``python -m load.bench_handler [--ref REF] [--rounds N]`` (default ``--ref 62c1608``, the
commit before the hostile-input work of issue 9). A benchmark, not a test: it prints figures.

Both versions are loaded side by side: ``git archive REF`` is unpacked into a temporary folder
with its packages renamed (``shared`` → ``ref_shared``, ...), so the old and the current
``edge_node`` live in one interpreter and take turns, round after round, in alternating order
(a shared, noisy machine then slows both alike). For each version it times, on the default
corpus and the serving benchmark's prefixes (:mod:`load.serving.workload`), every answer
already prepared (the steady state):

* ``ws msgpack`` / ``ws json``: ``ClientSocket.handle`` on a tolerant ``suggest`` frame: the
  decode (with the text door, after issue 9), dispatch and the answer's encoding;
* ``http``: one ``GET /suggest`` through the whole ASGI app, middleware included (after issue 9
  the per-client rate limit), with a no-op transport.

It prints ns per call for each side (min and median over rounds) and the ratio current/ref.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import io
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

PACKAGES = ("shared", "edge_node", "core_region", "load")
ROOT = Path(__file__).resolve().parent.parent

Runner = Callable[[], Awaitable[None]]


def unpack_ref(ref: str, into: Path, prefix: str) -> None:
    """``git archive ref`` of the packages into ``into``, each renamed ``prefix + name``."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref, *PACKAGES],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    names = "|".join(PACKAGES)
    imports = re.compile(rf"\b(from|import) ({names})\b")
    for package in PACKAGES:
        for path in (into / package).rglob("*.py"):
            text = imports.sub(lambda m: f"{m.group(1)} {prefix}{m.group(2)}", path.read_text())
            path.write_text(text)
        (into / package).rename(into / f"{prefix}{package}")


def build(prefix: str) -> tuple[dict[str, Runner], int]:
    """The runners of one version (``prefix`` "" for the current tree)."""

    def imp(name: str, *before: str) -> ModuleType:
        """Module ``name`` of that version, or where it was ``before`` a move."""
        for candidate in (name, *before):
            try:
                return importlib.import_module(prefix + candidate)
            except ModuleNotFoundError:
                continue
        raise ModuleNotFoundError(f"no module {name!r} in version {prefix or 'current'!r}")

    corpus, snapshot = (
        imp("core_region.suggest.corpus", "core_region.corpus"),
        imp("shared.snapshot"),
    )
    protocol, workload = imp("shared.protocol"), imp("load.serving.workload")
    loaded = corpus.load(corpus.default_path())
    entries = sorted((snapshot.Entry(k, t, w) for k, t, w in loaded.entries), key=lambda e: e.key)
    hot = snapshot.hot_lists(entries, threshold=64, depth=40)
    blob = snapshot.build(entries, version=1, hot=hot, hot_threshold=64, depth=20)
    settings_cls = imp("edge_node.settings").EdgeSettings
    lifted = {"ws_rate": 1e12, "ws_burst": 10**12, "http_rate": 1e12, "http_burst": 10**12}
    known = {f.name for f in dataclasses.fields(settings_cls)}
    settings = settings_cls(
        core_url="http://127.0.0.1:9",
        region="bench",
        **{k: v for k, v in lifted.items() if k in known},
    )
    app = imp("edge_node.app").create_app(settings)
    parsed = snapshot.parse(blob)
    client_socket = imp("edge_node.ws").ClientSocket
    if hasattr(app.state, "node"):  # the feature seam (issue 10 on)
        node = app.state.node
        suggest_feature = node.features["suggest"]
        suggest_feature.replica.load(parsed, "")  # served, never confirmed: age 0, as before

        def make_socket(socket: Any, json_codec: bool) -> Any:
            return client_socket(socket, node, json_codec=json_codec)
    else:  # before it: the link shell, the service and the cursors, wired by hand
        metrics = app.state.metrics
        upstream = imp("edge_node.upstream").Upstream(settings, "bench-token", metrics)
        upstream.index = imp("edge_node.suggest.index", "edge_node.index").SuggestIndex(parsed)
        service = app.state.service = imp("edge_node.service").Service(settings, upstream)
        cursors = app.state.cursors = imp("edge_node.cursors").Cursors(settings, upstream, metrics)

        def make_socket(socket: Any, json_codec: bool) -> Any:
            return client_socket(socket, service, cursors, json_codec=json_codec)

    suggest, prefixes, limit = protocol.Suggest, workload.PREFIXES, workload.LIMIT
    frames = [protocol.encode(suggest(f"r{i}", p, limit)) for i, p in enumerate(prefixes)]
    texts = [protocol.encode_json(suggest(f"r{i}", p, limit)) for i, p in enumerate(prefixes)]
    # Handlers answer a tolerant suggest by returning its frame: the socket is never written
    # to; it only says where the client is (its address keys its searches' source).
    socket = SimpleNamespace(
        app=app, client=SimpleNamespace(host="127.0.0.1", port=50000), headers={}, scope={}
    )
    msgpack_handle = make_socket(socket, False).handle
    json_handle = make_socket(socket, True).handle
    scopes = [_scope(p, limit) for p in prefixes]

    async def ws_msgpack() -> None:
        for frame in frames:
            msgpack_handle(frame, None)

    async def ws_json() -> None:
        for text in texts:
            json_handle(None, text)

    async def http() -> None:
        for scope in scopes:
            await app(scope, _receive, _send)

    return {"ws msgpack": ws_msgpack, "ws json": ws_json, "http": http}, len(prefixes)


def _scope(prefix: str, limit: int) -> dict[str, Any]:
    query = urllib.parse.urlencode({"q": prefix, "limit": limit}).encode()
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/suggest",
        "raw_path": b"/suggest",
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8080")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: dict[str, Any]) -> None:
    if message["type"] == "http.response.start":
        assert message["status"] == 200, message


async def timed(run: Runner, loops: int) -> int:
    started = time.perf_counter_ns()
    for _ in range(loops):
        await run()
    return time.perf_counter_ns() - started


async def compare(ref_prefix: str, rounds: int, loops: int) -> dict[str, dict[str, float]]:
    sides = {"ref": build(ref_prefix), "current": build("")}
    calls = sides["current"][1]
    for runners, _ in sides.values():  # warm: every answer prepared, every path taken once
        for run in runners.values():
            await run()
    out: dict[str, dict[str, float]] = {}
    for path in sides["current"][0]:
        times: dict[str, list[float]] = {"ref": [], "current": []}
        ratios = []
        for r in range(rounds):
            order = ("ref", "current") if r % 2 == 0 else ("current", "ref")
            got = {}
            for side in order:
                got[side] = await timed(sides[side][0][path], loops) / (loops * calls)
                times[side].append(got[side])
            ratios.append(got["current"] / got["ref"])
        out[path] = {
            "ref_min_ns": min(times["ref"]),
            "current_min_ns": min(times["current"]),
            "ref_median_ns": statistics.median(times["ref"]),
            "current_median_ns": statistics.median(times["current"]),
            "median_ratio": statistics.median(ratios),
        }
        print(f"  {path}: done ({rounds} rounds)", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m load.bench_handler", description=__doc__)
    parser.add_argument("--ref", default="62c1608", help="the version to compare with [62c1608]")
    parser.add_argument("--rounds", type=int, default=400, help="alternating rounds [400]")
    parser.add_argument("--loops", type=int, default=5, help="passes over the prefixes [5]")
    args = parser.parse_args(argv)
    prefix = "ref_"
    with tempfile.TemporaryDirectory(prefix="lightcone-ref-") as tmp:
        unpack_ref(args.ref, Path(tmp), prefix)
        sys.path.insert(0, tmp)
        print(f"comparing {args.ref} (ref) with the working tree (current)", file=sys.stderr)
        out = asyncio.run(compare(prefix, args.rounds, args.loops))
    print(f"\nper call, ns (ref {args.ref} vs current), {args.rounds} alternating rounds")
    print(f"{'path':<12}{'ref min':>10}{'cur min':>10}{'ref med':>10}{'cur med':>10}{'ratio':>8}")
    for path, row in out.items():
        print(
            f"{path:<12}{row['ref_min_ns']:>10.0f}{row['current_min_ns']:>10.0f}"
            f"{row['ref_median_ns']:>10.0f}{row['current_median_ns']:>10.0f}"
            f"{row['median_ratio']:>8.3f}"
        )


if __name__ == "__main__":
    main()
