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
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from shared.errors import BadRequest
from shared.names import term_names
from shared.text import term as text_term

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


def load(path: Path) -> Corpus:
    """Read and check the corpus at ``path``.

    Raises:
        CorpusError: if any line is bad.
        OSError: if the file cannot be read.
    """
    raw = path.read_bytes()
    data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    entries, names = parse_with_names(data.split(b"\n"), str(path))
    return Corpus(entries, hashlib.sha256(raw).hexdigest(), names)


def parse(lines: Iterable[bytes], source: str = "<corpus>") -> list[tuple[str, str, int]]:
    """Parse corpus lines (see the module docstring for the rules); other names are read
    (and checked) but not returned.

    Raises:
        CorpusError: if any line is bad.
    """
    return parse_with_names(lines, source)[0]


def parse_with_names(
    lines: Iterable[bytes], source: str = "<corpus>"
) -> tuple[list[tuple[str, str, int]], dict[str, tuple[str, ...]]]:
    """:func:`parse`, and the other names of the terms that have some, by key.

    Raises:
        CorpusError: if any line is bad.
    """
    best: dict[str, tuple[str, int, tuple[str, ...]]] = {}
    problems: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        try:
            parsed = _line(line)
        except ValueError as exc:
            problems.append((number, str(exc)))
            continue
        if parsed is None:
            continue
        key, term, weight, names = parsed
        if key not in best or weight > best[key][1]:
            best[key] = (term, weight, names)
    if problems:
        raise CorpusError(source, problems)
    entries = [(key, term, weight) for key, (term, weight, _) in best.items()]
    return entries, {key: names for key, (_, _, names) in best.items() if names}


def _line(line: bytes) -> tuple[str, str, int, tuple[str, ...]] | None:
    try:
        text = line.decode("utf-8").rstrip("\r")
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
    return key, term, weight, names
