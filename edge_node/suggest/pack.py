"""The device pack: every answer to a query of one or two folded characters, for the page.

Pure and synchronous. A page that holds the pack answers those keystrokes itself, in well
under a millisecond, while the feature is ``tolerant`` (docs/protocol.md, ``GET
/suggest/pack``). The pack is made by asking the index (:meth:`SuggestIndex.query`) for each
prefix of one or two characters of a served key or another name, so each of its answers is
byte for byte the edge's answer to that prefix at the pack's version; a prefix with no answer
is left out (absent means no suggestion).

It also carries what the page needs to fold a query exactly as the edge does, or to know it
cannot: ``chars``, the folding of each character it may fold (:func:`shared.folding.spaced_text`
of that character; folding goes character by character), ``abbreviations`` (rule 5), and the
folding rules' version ``fold``. A character outside ``chars`` sends the keystroke to the edge.

On the default corpus (128,782 terms with their other names) the pack holds 3,553 prefixes:
506 KB of JSON, 101 KB gzipped (the target is 300 KB, so nothing is left out), made in about
0.1 s; at a million terms the same prefixes in about 0.2 s, plus 0.3 s the first time for a
snapshot (every key is read once). docs/BENCHMARKS.md has the figures and the command.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from edge_node.suggest.index import SuggestIndex
from edge_node.suggest.prepared import item
from shared.folding import ABBREVIATIONS, FOLD_VERSION, spaced_text
from shared.protocol import to_plain
from shared.text import is_text

PACK_CHARS = 2
"""Folded characters of the longest prefix the pack answers: 1 and 2 answer the first two
keystrokes (the ones a round trip makes feel slow) for 3,600 prefixes; 3 would need about
30,000 and several times the bytes."""

PACK_LIMIT = 6
"""Items per prefix: the demo page's ``limit`` (the page answers locally only for that
limit, and never a longer list than the edge would give)."""

GZIP_LEVEL = 6
"""zlib's default: 9 saves 1 % of the bytes for twice the time."""


@dataclass(frozen=True, slots=True)
class Contents:
    """A pack's answers at one version of one index, before the flag's level is known."""

    version: int
    epoch: str
    limit: int
    prefixes: str
    """The ``prefixes`` object as JSON: folded prefix -> items, as ``/suggest`` gives them."""
    chars: str
    """The ``chars`` object as JSON."""
    count: int
    """Prefixes in the pack."""


@dataclass(frozen=True, slots=True)
class Pack:
    """A pack ready to send: its JSON and that JSON gzipped, and its ``ETag``."""

    etag: str
    body: bytes
    gzipped: bytes
    level: str
    contents: Contents


REBUILD_S = 10.0
"""Least time between two builds: a pack asked for after the data moved on is made again at
most this often; meanwhile the last pack is served, its own ``version`` saying which data. A
build costs about 0.1 s of one core on the default corpus, 0.2 s at a million terms, and any
write anywhere moves the data on: so whatever anonymous clients ask, under any write rate,
packs cost an edge at most 1-2 % of a core (and the event loop a few ms every 10 s). The page
checks its pack every 30 s, so this adds at most a third to how old its answers can be."""


class Packs:
    """Which pack an edge serves and when it builds the next (the shell does the building, off
    the event loop, and passes ``now``)."""

    def __init__(self, rebuild_s: float = REBUILD_S) -> None:
        self.rebuild_s = rebuild_s
        self.made: Contents | None = None
        self.ready: Pack | None = None
        self._made_for: object = None  # the index ``made`` came from
        self._made_at = float("-inf")

    def due(self, index: SuggestIndex, now: float) -> bool:
        """Whether to build the pack of ``index`` now: there is none, the index was replaced
        (a new snapshot), or its data moved on and the last build is :attr:`rebuild_s` old."""
        made = self.made
        if made is None or self._made_for is not index:
            return True
        return made.version != index.version and now - self._made_at >= self.rebuild_s

    def building(self, index: SuggestIndex, now: float) -> None:
        """A build of ``index`` starts (a failed one waits :attr:`rebuild_s` like any)."""
        self._made_for, self._made_at = index, now

    def built(self, made: Contents) -> None:
        self.made = made

    def stale(self, level: str) -> bool:
        """Whether the pack to send must be rendered again (new contents, another level)."""
        ready = self.ready
        return ready is None or ready.contents is not self.made or ready.level != level


def contents(index: SuggestIndex, epoch: str, limit: int = PACK_LIMIT) -> Contents:
    """The answers of ``index`` to every folded prefix of 1 to :data:`PACK_CHARS` characters
    that has some, and the folding of the characters the page may meet (:func:`chars`).

    ``index`` must not change meanwhile: the shell builds from :meth:`SuggestIndex.copy`.
    """
    answers: dict[str, list[Any]] = {}
    for prefix in sorted(index.short_prefixes(PACK_CHARS)):
        found = index.query(prefix, limit)
        if found:
            answers[prefix] = to_plain([item(e) for e in found])
    return Contents(
        index.version,
        epoch,
        limit,
        _json_object(answers),
        _json_object(chars(answers)),
        len(answers),
    )


def chars(answers: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    """The characters the page may fold by itself and their folding (``spaced_text``):
    printable ASCII, and the other characters of the prefixes and of the answers' display
    forms (a term, the other name that matched), with their upper and lower cases. Only
    characters the edge takes in a query (:func:`shared.text.is_text`)."""
    seen = {chr(c) for c in range(0x20, 0x7F)}
    for prefix, items in answers.items():
        seen.update(prefix)
        for one in items:
            seen.update(one["term"])
            seen.update(one.get("alias", ""))
    cased = set(seen)
    for c in seen:
        cased.update(v for v in (c.upper(), c.lower()) if len(v) == 1)
    return {c: spaced_text(c) for c in sorted(cased) if is_text(c)}


def render(made: Contents, level: str, max_query_chars: int) -> Pack:
    """The pack of ``made`` under the flag's ``level``: its JSON, gzipped, and its ETag."""
    head = {
        "version": made.version,
        "epoch": made.epoch,
        "level": level,
        "fold": FOLD_VERSION,
        "limit": made.limit,
        "max_query_chars": max_query_chars,
        "abbreviations": ABBREVIATIONS,
    }
    text = _json(head)[:-1] + f',"chars":{made.chars},"prefixes":{made.prefixes}}}'
    body = text.encode()
    tag = etag(made.epoch, made.version, level, made.limit, max_query_chars)
    return Pack(tag, body, gzip.compress(body, GZIP_LEVEL, mtime=0), level, made)


def etag(epoch: str, version: int, level: str, limit: int, max_query_chars: int) -> str:
    """A weak ETag of what a pack depends on (the same for its gzipped form): the data's
    epoch and version, the level, the folding rules, the limit and the query bound."""
    what = f"{epoch}/{version}/{level}/{FOLD_VERSION}/{limit}/{max_query_chars}"
    return f'W/"pack-{version}-{hashlib.sha256(what.encode()).hexdigest()[:16]}"'


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` header takes gzip (named, or ``*``, with a q above 0)."""
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.partition(";")
        if coding.strip() not in ("gzip", "*"):
            continue
        q = params.strip()
        if not q.startswith("q="):
            return True
        try:
            return float(q[2:]) > 0
        except ValueError:
            return False
    return False


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _json_object(value: dict[str, Any]) -> str:
    """``_json(value)``, a member at a time: one call over the whole pack would hold the
    interpreter (and the edge's event loop, in the thread that builds it) for milliseconds."""
    return "{" + ",".join(f"{_json(k)}:{_json(v)}" for k, v in value.items()) + "}"
