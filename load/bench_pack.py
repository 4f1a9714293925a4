"""The device pack's size and build time, and what its build costs the edge's event loop.

``python -m load.bench_pack [--million FILE]`` builds an edge's index as the core builds it
(``LIGHTCONE_HOT_THRESHOLD`` and ``LIGHTCONE_MAX_LIMIT`` at their defaults, with the other
names) from the default corpus, and from FILE (``python -m load.million make FILE`` writes the
million-term corpus) if given, then for each:

1. builds and renders the pack in a thread, as the edge does (:func:`edge_node.suggest.pack.
   contents` on :meth:`SuggestIndex.copy`, then JSON and gzip), while the event loop runs a
   1 ms timer: the time, and the loop's largest delay (the GIL is shared: the build slows the
   loop, never stops it). This first build reads every key of the snapshot once (the short
   prefixes are kept per snapshot);
2. builds it again: what a new version of the data costs;
3. renders it again (JSON and gzip, as ``GET /suggest/pack`` sends it): bytes, gzipped bytes.

Progress on stderr, a table on stdout (figures for docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core_region.settings import CoreSettings
from core_region.suggest import corpus
from edge_node.suggest import pack
from edge_node.suggest.index import SuggestIndex
from load.machine import cpu_model, loadavg
from shared import snapshot
from shared.settings import NodeSettings


def default(cls: type, name: str) -> int:
    """The default of a settings class's field."""
    value = {f.name: f.default for f in dataclasses.fields(cls)}[name]
    assert isinstance(value, int)
    return value


TICK_S = 0.001
"""The probe timer's period while the pack builds in a thread."""


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def edge_index(path: Path) -> SuggestIndex:
    """The edge's index of the corpus at ``path``, built as the core builds its snapshot."""
    depth, threshold = default(NodeSettings, "max_limit"), default(CoreSettings, "hot_threshold")
    columns, _ = corpus.columns(path)
    hot = snapshot.hot_lists(columns, threshold=threshold, depth=2 * depth)
    blob = snapshot.build(
        columns,
        version=1,
        hot=hot,
        hot_threshold=threshold,
        depth=depth,
        names=columns.names,
    )
    return SuggestIndex(snapshot.parse(blob))


async def loop_delay_while_building(index: SuggestIndex) -> tuple[float, float]:
    """Build and render the pack in a thread, as the edge does; the seconds it took and the
    loop's largest delay meanwhile (ms)."""
    loop = asyncio.get_running_loop()
    worst = 0.0
    started = time.perf_counter()

    def made() -> pack.Pack:
        return pack.render(pack.contents(copy, "bench"), "tolerant", 100)

    copy = index.copy()
    build = asyncio.ensure_future(asyncio.to_thread(made))
    while not build.done():
        before = loop.time()
        await asyncio.sleep(TICK_S)
        worst = max(worst, loop.time() - before - TICK_S)
    await build
    return time.perf_counter() - started, worst * 1000


def measure(name: str, path: Path) -> dict[str, Any]:
    log(f"{name}: building the edge's index of {path}")
    started = time.perf_counter()
    index = edge_index(path)
    log(f"{name}: {len(index):,} terms in {time.perf_counter() - started:.1f} s")
    threaded, delay_ms = asyncio.run(loop_delay_while_building(index))
    log(f"{name}: in a thread {threaded:.2f} s, the event loop delayed {delay_ms:.1f} ms at most")
    started = time.perf_counter()
    made = pack.contents(index.copy(), "bench")
    again = time.perf_counter() - started
    started = time.perf_counter()
    built = pack.render(made, "tolerant", 100)
    rendered = time.perf_counter() - started
    log(f"{name}: pack of {made.count:,} prefixes again in {again:.2f} s")
    return {
        "corpus": name,
        "terms": len(index),
        "prefixes": made.count,
        "json_kb": len(built.body) / 1000,
        "gzip_kb": len(built.gzipped) / 1000,
        "first_s": threaded,
        "again_s": again,
        "render_s": rendered,
        "loop_delay_ms": delay_ms,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m load.bench_pack", description=__doc__)
    parser.add_argument("--million", type=Path, help="a corpus from `load.million make`")
    args = parser.parse_args(argv)
    log(f"machine: {cpu_model()}, load average {loadavg()}")
    rows = [measure("default", corpus.default_path())]
    if args.million is not None:
        rows.append(measure("million", args.million))
    print(
        "| corpus | terms | prefixes | JSON | gzip | first build, in a thread "
        "| loop's largest delay meanwhile | next build | JSON + gzip |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['corpus']} | {r['terms']:,} | {r['prefixes']:,} | {r['json_kb']:.0f} KB "
            f"| {r['gzip_kb']:.0f} KB | {r['first_s']:.2f} s | {r['loop_delay_ms']:.1f} ms "
            f"| {r['again_s']:.2f} s | {r['render_s'] * 1000:.0f} ms |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
