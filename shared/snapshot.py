"""The serving structure for suggestions: built on the core, loaded by the edges.

A snapshot holds, for every served term: its folded key in a ``marisa_trie.Trie`` (a few MB
for hundreds of thousands of keys), its weight in an ``array('q')`` and its display form in a
list, both indexed by the trie's key id; and, for each *hot* prefix (one with more completions
than ``hot_threshold``), the keys of its top ``depth`` completions, best first. A query on a hot
prefix reads its list; any other prefix has at most ``hot_threshold`` completions to rank.
Ranking is by weight descending, ties broken by folded key ascending.

Wire form: a msgpack map inside :class:`shared.protocol.Snapshot` ``data``.
"""

from __future__ import annotations

import bisect
import heapq
import re
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import marisa_trie

from shared.errors import ProtocolError
from shared.protocol import pack, unpack

FORMAT = 1


@dataclass(frozen=True, slots=True)
class Entry:
    """A served term: folded ``key``, display ``term``, ``weight``.

    ``match``/``typos`` say how a suggestion matched its query: an entry found by its prefix
    (the edge's typo matches are a subclass that sets both).
    """

    key: str
    term: str
    weight: int
    match: ClassVar[str] = "prefix"
    typos: ClassVar[int] = 0


class Terms:
    """The display forms of a snapshot by key id, kept as the one string they came in and
    the offsets of its lines: a million terms cost two objects instead of a million strings
    (about a quarter of the memory), and the edge gives them back in one piece when a new
    snapshot replaces them."""

    __slots__ = ("_starts", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        starts = array("q", [0] if text else [])
        starts.extend(m.end() for m in _NEW_LINE.finditer(text))
        self._starts = starts

    def __len__(self) -> int:
        return len(self._starts)

    def __getitem__(self, key_id: int) -> str:
        start = self._starts[key_id]
        after = key_id + 1
        end = self._starts[after] - 1 if after < len(self._starts) else len(self._text)
        return self._text[start:end]


_NEW_LINE = re.compile("\n")


@dataclass(frozen=True, slots=True)
class SnapshotData:
    version: int
    trie: marisa_trie.Trie
    weights: array[int]
    terms: Terms
    hot: dict[str, list[str]]
    hot_threshold: int
    depth: int

    def __len__(self) -> int:
        return len(self.terms)

    def get(self, key: str) -> Entry | None:
        """The entry for ``key``, or ``None`` if the snapshot does not serve it."""
        key_id = self.trie.get(key)
        if key_id is None:
            return None
        return Entry(key, self.terms[key_id], self.weights[key_id])


def rank(entry: Entry) -> tuple[int, str]:
    """Sort key: heavier first, then folded key ascending (deterministic ties)."""
    return (-entry.weight, entry.key)


def hot_lists(entries: Sequence[Entry], *, threshold: int, depth: int) -> dict[str, list[str]]:
    """Top ``depth`` keys of every prefix with more than ``threshold`` completions.

    A walk of the implicit trie of the sorted keys, with an explicit stack rather than
    recursion: a prefix shared by many keys is one level per character, and keys are only
    bounded by :data:`shared.text.MAX_KEY_CHARS` (rows stored before that bound may be longer).
    Linear in the entries, with the per-key work in C: every key's place in the ranking is
    computed once (one sort), a prefix's children are found by bisection, and lists are
    ranked by that place (about a second at a million terms).

    Args:
        entries: served entries sorted by key.
        threshold: a prefix is hot when it has more completions than this.
        depth: how many keys each hot list keeps.

    Returns:
        prefix -> keys, best first.
    """
    keys: list[str] = []
    weights = array("q")
    for e in entries:
        keys.append(e.key)
        weights.append(e.weight)
    # place[i]: where entry i ranks (heavier first, then the key: the index, keys are sorted).
    place = array("q", bytes(8 * len(keys)))
    for at, i in enumerate(sorted(range(len(keys)), key=weights.__getitem__, reverse=True)):
        place[i] = at
    by_place = place.__getitem__
    found: dict[str, array[int]] = {}  # arrays: no million int objects left about
    result: dict[str, list[str]] = {}

    def ranked(indices: Iterable[int]) -> list[int]:
        return heapq.nsmallest(depth, indices, key=by_place)

    # A frame is a hot prefix being visited: its keys are keys[lo:hi], ``next`` the first key
    # of its next child, ``top`` the best indices found so far (its own key, children's tops).
    stack: list[_Frame] = []

    def enter(prefix: str, lo: int, hi: int) -> list[int] | None:
        """Visit ``prefix``: the top of a cold prefix at once, or ``None`` (frame pushed)."""
        if hi - lo <= threshold:
            return ranked(range(lo, hi))
        own = [lo] if keys[lo] == prefix else []
        stack.append(_Frame(prefix, lo + len(own), hi, own))
        return None

    if keys:
        enter("", 0, len(keys))
    while stack:
        frame = stack[-1]
        if frame.next < frame.hi:
            lo = frame.next
            child = keys[lo][: len(frame.prefix) + 1]
            end = bisect.bisect_left(keys, child + _AFTER_ALL, lo, frame.hi)
            if end < frame.hi and keys[end].startswith(child):  # U+10FFFF follows ``child``
                size = len(child)
                end = bisect.bisect_right(keys, child, lo, frame.hi, key=lambda k: k[:size])
            frame.next = end
            top = enter(child, lo, frame.next)
            if top is not None:
                frame.top += top
            continue
        stack.pop()
        best = ranked(frame.top)
        found[frame.prefix] = array("q", best)
        if stack:
            stack[-1].top += best
    # The lists are made anew once the walk's garbage and the list of every key are gone:
    # their prefixes and keys, packed in one string, are cut out side by side (a few tens
    # of MB at a million terms, where strings scattered over the memory of the walk hold
    # that memory, which the allocator cannot give back, 50 MB more).
    pieces: list[str] = []
    for prefix, indices in found.items():
        pieces.append(prefix)
        pieces.extend(keys[t] for t in indices)
    sizes = array("q", [len(indices) for indices in found.values()])
    lengths = array("q", map(len, pieces))
    packed = "".join(pieces)
    keys.clear()
    found.clear()
    pieces.clear()
    at = n = 0
    for size in sizes:
        cut: list[str] = []
        for length in lengths[n : n + size + 1]:
            cut.append(packed[at : at + length])
            at += length
        n += size + 1
        result[cut[0]] = cut[1:]
    return result


_AFTER_ALL = "\U0010ffff"
"""After every key that starts with a prefix, ``prefix + _AFTER_ALL``, unless U+10FFFF follows
the prefix (folding drops it; stored rows from before may hold it)."""


@dataclass(slots=True)
class _Frame:
    prefix: str
    next: int
    hi: int
    top: list[int]


def build(
    entries: Sequence[Entry],
    *,
    version: int,
    hot: dict[str, list[str]],
    hot_threshold: int,
    depth: int,
) -> bytes:
    """Serialize a snapshot of ``entries`` (any order, unique keys) and their ``hot`` lists."""
    # Label order: iterating the trie gives the keys sorted, so the core reads a base's
    # entries in key order without sorting them (core_region.suggest.catalog.Catalog.columns).
    # The keys are read as the trie takes them: a list of a million would cost 80 MB more.
    trie = marisa_trie.Trie((e.key for e in entries), order=marisa_trie.LABEL_ORDER)
    weights = array("q", bytes(8 * len(entries)))
    terms = [""] * len(entries)
    for e in entries:
        key_id = trie[e.key]
        weights[key_id] = e.weight
        terms[key_id] = e.term
    text = "\n".join(terms)
    del terms  # a million strings, let go before packing (which needs twice the blob)
    return pack(
        {
            "format": FORMAT,
            "version": version,
            "trie": trie.tobytes(),
            "weights": weights.tobytes(),
            "terms": text,
            "hot": {p: ks[:depth] for p, ks in hot.items()},
            "hot_threshold": hot_threshold,
            "depth": depth,
        }
    )


def parse(blob: bytes) -> SnapshotData:
    """Load a snapshot made by :func:`build`.

    Raises:
        ProtocolError: if ``blob`` is not a snapshot of this format.
    """
    try:
        raw = unpack(blob)
        if raw.get("format") != FORMAT:
            raise ProtocolError(f"unsupported snapshot format {raw.get('format')!r}")
        trie = marisa_trie.Trie()
        trie.frombytes(raw["trie"])
        weights = array("q")
        weights.frombytes(raw["weights"])
        terms = Terms(raw["terms"])
        if not len(trie) == len(weights) == len(terms):
            raise ProtocolError("snapshot parts disagree in length")
        return SnapshotData(
            version=int(raw["version"]),
            trie=trie,
            weights=weights,
            terms=terms,
            hot={str(p): list(ks) for p, ks in raw["hot"].items()},
            hot_threshold=int(raw["hot_threshold"]),
            depth=int(raw["depth"]),
        )
    except ProtocolError:
        raise
    except Exception as exc:  # marisa and shape errors mean "not a snapshot" too
        raise ProtocolError(f"invalid snapshot: {exc}") from None
