"""How long a core's first start after a fold upgrade re-keys its store, at a million rows.

Run: ``python -m load.bench_rekey [--engine sqlite|postgres] [--searches N] [--shipped]``.

Makes a store as a build of fold version 1 left it: the million-term corpus of
:mod:`load.million` (the shipped corpus and each city with seven suffixes) keyed by version 1
of the fold (:func:`load.quality.generate.fold_v1`: "new york city airport"), ``N`` logged
searches (default 100,000, from 50 sources, on the heaviest keys) and no ``fold`` row (with
``--shipped``: the shipped corpus alone); then
times :meth:`core_region.store.Store.open`, which re-keys it (docs/operations.md, "Upgrading
the fold"), and prints what it wrote. SQLite in a temporary folder; PostgreSQL in a throwaway
cluster on loopback (:mod:`deploy.local.postgres`). Bounded: one store, one re-key.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from core_region.store import LoggedSearch, Store
from load import machine
from load.million import SUFFIXES
from load.quality.generate import corpus_entries, fold_v1

SEED_BATCH = 50_000
"""Rows per seeding transaction (each well within PostgreSQL's statement timeout)."""
SEARCH_BATCH = 1_000
SOURCES = 50


def old_entries(suffixes: bool = True) -> Iterator[tuple[str, str, int]]:
    """The million-term corpus (or the shipped one alone) keyed as version 1 of the fold
    keyed it."""
    for _key, term, weight in corpus_entries():
        yield fold_v1(term), term, weight
        for n, suffix in enumerate(SUFFIXES if suffixes else ()):
            named = f"{term} {suffix}"
            yield fold_v1(named), named, max(1, weight // (2 + n))


async def make_old_store(location: Path | str, searches: int, suffixes: bool = True) -> int:
    """Fill ``location`` as fold version 1 left it; returns its row count."""
    store = await Store.open(location)
    try:
        seen: dict[str, tuple[str, int]] = {}
        for key, term, weight in old_entries(suffixes):
            seen.setdefault(key, (term, weight))
        rows = [(k, t, w) for k, (t, w) in seen.items()]
        for i in range(0, len(rows), SEED_BATCH):
            await store.seed(rows[i : i + SEED_BATCH], "million")
        heaviest = sorted(rows, key=lambda r: -r[2])[: max(1, searches // 10)]
        for i in range(0, searches, SEARCH_BATCH):
            batch = []
            for n in range(i, min(searches, i + SEARCH_BATCH)):
                key, term, _ = heaviest[n % len(heaviest)]
                batch.append(LoggedSearch(f"s{n}", key, term, term, "syd", f"src{n % SOURCES}"))
            await store.log_searches(batch)
        async with store._engine.writing() as db:  # a build of version 1 never wrote it
            await db.execute("DELETE FROM meta WHERE name = 'fold'")
        return len(rows)
    finally:
        await store.close()


async def measure(location: Path | str, searches: int, suffixes: bool) -> None:
    started = time.perf_counter()
    rows = await make_old_store(location, searches, suffixes)
    print(f"made a fold-1 store: {rows} terms, {searches} searches", end="", file=sys.stderr)
    print(f" in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    started = time.perf_counter()
    store = await Store.open(location)
    took = time.perf_counter() - started
    try:
        counts = await store.counts()
        print(f"re-keyed at open in {took:.1f} s; now {counts}, fold {await store.fold_version()}")
    finally:
        await store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--searches", type=int, default=100_000, help="(default %(default)s)")
    parser.add_argument(
        "--shipped", action="store_true", help="the shipped corpus alone (128,782 terms)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    print(
        f"machine: {machine.cpu_model()}, {os.cpu_count()} CPUs, load {machine.loadavg()}; "
        f"git: {machine.git_state()}; engine: {args.engine}"
    )
    with contextlib.ExitStack() as stack:
        if args.engine == "postgres":
            from deploy.local.postgres import running

            location: Path | str = stack.enter_context(running()).new_database("rekey")
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            location = folder / "lightcone.db"
        asyncio.run(measure(location, args.searches, not args.shipped))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
