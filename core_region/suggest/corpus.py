"""Reading a corpus: UTF-8 lines of ``term<TAB>weight``, optionally gzip-compressed; a line
may go on with the term's other names, ``term<TAB>weight<TAB>name<TAB>name...``
(:mod:`shared.names`: at most :data:`~shared.names.MAX_NAMES`, each through the same door as
the term; one that folds like the term or an earlier name is left out).

Policy: the load is **refused** if any line is bad, and the error lists the first bad lines
with their numbers and reasons; nothing is skipped or mangled silently. A term passes the same
door as every term from outside (:func:`shared.text.term`: text, display and key limits).
Blank lines and lines starting with ``#`` are ignored. Terms that fold to the same key are one
term: the heaviest display form wins (the first one on equal weights), with its line's names.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from itertools import chain
from operator import itemgetter
from pathlib import Path

from core_region.memory import release_memory, tune_malloc
from core_region.suggest.catalog import JOINED, Entries, Lines
from shared.errors import BadRequest
from shared.folding import fold
from shared.names import term_names
from shared.text import MAX_KEY_CHARS, MAX_TERM_CHARS, term as text_term

MAX_WEIGHT = 2**53
_SHOWN = 10


class CorpusError(Exception):
    """The corpus has bad lines; ``problems`` lists ``(line number, reason)``."""

    def __init__(self, source: str, problems: list[tuple[int, str]]) -> None:
        self.source = source
        self.problems = problems
        shown = "; ".join(f"line {n}: {why}" for n, why in problems[:_SHOWN])
        more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
        super().__init__(f"{source}: {len(problems)} bad line(s), load refused: {shown}{more}")


@dataclass(frozen=True, slots=True)
class Corpus:
    """Parsed terms as ``(key, term, weight)`` and a content id (sha256 of the file); the
    other names of the terms that have some, by key."""

    entries: list[tuple[str, str, int]]
    corpus_id: str
    names: dict[str, tuple[str, ...]] = field(default_factory=dict)


def default_path() -> Path:
    """The shipped corpus: world cities from GeoNames (see core_region/data/NOTICE.md)."""
    return Path(str(resources.files("core_region") / "data" / "cities.tsv.gz"))


def check(path: Path) -> None:
    """Read and check the corpus at ``path``, and keep it, as :func:`columns`, for the next
    :func:`columns` of the unchanged file in this process: the command line checks a corpus
    before serving, the core then seeds from it, and a million lines are parsed once. Kept
    as columns (60 MB, not 250): what the server allocates while it starts would otherwise
    settle among the parsed rows and keep their memory mapped once they are freed.

    Raises:
        CorpusError: if any line is bad.
        OSError: if the file cannot be read.
    """
    global _checked
    _checked = None
    loaded = load(path)
    tune_malloc(len(loaded.entries))  # this process is a core about to serve it
    _checked = (_identity(path), _columns(loaded.entries, loaded.names), loaded.corpus_id)


_checked: tuple[tuple[str, int, int], Entries, str] | None = None
"""The corpus :func:`check` read, by file identity, until :func:`columns` takes it."""


def _identity(path: Path) -> tuple[str, int, int]:
    found = path.resolve().stat()
    return (str(path.resolve()), found.st_size, found.st_mtime_ns)


def columns(path: Path) -> tuple[Entries, str]:
    """The corpus at ``path`` as columns sorted by key, and its id (the one :func:`check`
    kept, or read now).

    Raises:
        CorpusError: if any line is bad.
        OSError: if the file cannot be read.
        ValueError: if a term holds a new line (the door refuses them).
    """
    global _checked
    kept, _checked = _checked, None
    if kept is not None and kept[0] == _identity(path):
        return kept[1], kept[2]
    del kept
    loaded = load(path)
    return _columns(loaded.entries, loaded.names), loaded.corpus_id


def load(path: Path) -> Corpus:
    """Read and check the corpus at ``path``.

    Raises:
        CorpusError: if any line is bad.
        OSError: if the file cannot be read.
    """
    raw = path.read_bytes()
    stream = gzip.GzipFile(fileobj=io.BytesIO(raw)) if raw[:2] == b"\x1f\x8b" else io.BytesIO(raw)
    with stream:
        entries, names = parse_with_names(_lines(stream), str(path))
    return Corpus(entries, hashlib.sha256(raw).hexdigest(), names)


READ_BYTES = 1 << 20
"""Bytes of a corpus decompressed and split into lines at a time: a million terms as one
text and a list of its lines would cost 100 MB more, a line at a time costs a call each."""


def _lines(stream: gzip.GzipFile | io.BytesIO) -> Iterator[bytes]:
    """The lines of ``stream``, without their ``\\n``, :data:`READ_BYTES` at a time."""
    rest = b""
    while block := stream.read(READ_BYTES):
        lines = (rest + block).split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


def parse(lines: Iterable[bytes], source: str = "<corpus>") -> list[tuple[str, str, int]]:
    """Parse corpus lines, with or without their line ends (see the module docstring for
    the rules); other names are read (and checked) but not returned.

    Raises:
        CorpusError: if any line is bad.
    """
    return parse_with_names(lines, source)[0]


def parse_with_names(
    lines: Iterable[bytes], source: str = "<corpus>"
) -> tuple[list[tuple[str, str, int]], dict[str, tuple[str, ...]]]:
    """:func:`parse`, and the other names of the terms that have some, by key. The result
    holds each line's parsed entry itself, no copy: a million terms cost their strings,
    tuples and weights (about 250 MB), and a dict by key while parsing.

    Raises:
        CorpusError: if any line is bad.
    """
    best: dict[str, tuple[str, str, int]] = {}
    named: dict[str, tuple[str, ...]] = {}
    problems: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        try:
            parsed = _line(line)
        except ValueError as exc:
            problems.append((number, str(exc)))
            continue
        if parsed is None:
            continue
        entry, names = parsed
        key = entry[0]
        known = best.get(key)
        if known is None or entry[2] > known[2]:
            best[key] = entry
            if names:
                named[key] = names
            elif known is not None:
                named.pop(key, None)
    if problems:
        raise CorpusError(source, problems)
    return list(best.values()), named


def _line(line: bytes) -> tuple[tuple[str, str, int], tuple[str, ...]] | None:
    """The entry ``(key, term, weight)`` of one line and its other names; ``None`` for a
    blank line or a comment.

    Raises:
        ValueError: the line is bad (the message says why).
    """
    if line.isascii():  # most lines: the door's work for plain ASCII, without its calls
        fields = line.decode("ascii").rstrip("\r\n").split("\t")
        if len(fields) == 2:
            term, weight_text = fields
            # Printable ASCII is text (shared.text.is_text); its tidy form is its words
            # joined by single spaces (NFC changes no ASCII). Anything else, a comment, an
            # empty or long term or key and a bad weight take the whole way below.
            if term.isprintable() and weight_text.isdigit() and term[:1] != "#":
                display = " ".join(term.split())
                key = fold(display)
                weight = int(weight_text)
                if (
                    key
                    and len(display) <= MAX_TERM_CHARS
                    and len(key) <= MAX_KEY_CHARS
                    and 0 < weight <= MAX_WEIGHT
                ):
                    return (key, display, weight), ()
    return _door_line(line)


def _door_line(line: bytes) -> tuple[tuple[str, str, int], tuple[str, ...]] | None:
    """:func:`_line` the whole way: every field through the text door.

    Raises:
        ValueError: the line is bad (the message says why).
    """
    try:
        text = line.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise ValueError("not valid UTF-8") from None
    if not text.strip() or text.startswith("#"):
        return None
    parts = text.split("\t")
    if len(parts) < 2:
        raise ValueError(f"expected 'term<TAB>weight[<TAB>name...]', got {len(parts)} field(s)")
    try:
        term, key = text_term(parts[0], field="term", code="bad_term")
        names = term_names(key, parts[2:]) if len(parts) > 2 else ()
    except BadRequest as exc:
        raise ValueError(exc.message) from None
    weight_text = parts[1].strip()
    if not key:
        raise ValueError("empty term")
    if not weight_text.isascii() or not weight_text.isdigit():
        raise ValueError(f"weight {weight_text!r} is not a whole number")
    weight = int(weight_text)
    if not 0 < weight <= MAX_WEIGHT:
        raise ValueError(f"weight {weight} is out of range 1..{MAX_WEIGHT}")
    return (key, term, weight), names


def _columns(rows: list[tuple[str, str, int]], names: dict[str, tuple[str, ...]]) -> Entries:
    """A parsed corpus (unique keys) and its other names (by key) as columns sorted by key.

    ``rows`` is sorted in place by key (its keys compared as they are, no copy), then
    emptied from its end as its columns are made, :data:`~core_region.suggest.catalog.JOINED`
    rows at a time: the memory of a million rows' tuples and strings is given back while
    their columns grow (about a quarter of it, :class:`~core_region.suggest.catalog.Lines`).

    Raises:
        ValueError: if a term holds a new line (the corpus door refuses them).
    """
    rows.sort(key=itemgetter(0))
    keys: list[Lines] = []
    terms: list[Lines] = []
    weights: list[array[int]] = []
    for start in reversed(range(0, len(rows), JOINED)):
        part = rows[start:]
        del rows[start:]
        keys.append(Lines.of_list([row[0] for row in part]))
        terms.append(Lines.of_list([row[1] for row in part]))
        weights.append(array("q", [row[2] for row in part]))
        del part
    columns = Entries(
        Lines.concat(reversed(keys)),
        Lines.concat(reversed(terms)),
        array("q", chain.from_iterable(reversed(weights))),
        names,
    )
    release_memory(len(columns))
    return columns
