"""The serving structure for suggestions: built on the core, loaded by the edges.

A snapshot holds, for every served term: its folded key in a ``marisa_trie.Trie`` (a few MB
for hundreds of thousands of keys), its weight and its display form, both by the trie's key
id; and, for each *hot* prefix (one with more completions than ``hot_threshold``), the key ids
of its top ``depth`` completions, best first. A query on a hot prefix reads its list; any other
prefix has at most ``hot_threshold`` completions to rank. Ranking is by weight descending, ties
broken by folded key ascending.

Wire form (format 2): a msgpack map inside :class:`shared.protocol.Snapshot` ``data`` whose
large parts are flat byte strings, so that the edge holds a million terms as a handful of
objects: the trie and every array are used in place, in the very ``bytes`` objects msgpack
decoded, with no copy and no per-term object (docs/protocol.md, ``snapshot``). Integers in the
arrays are little-endian: unsigned 32-bit for key ids and offsets; weights are unsigned
32-bit when every weight fits (4 MB less per million terms), else signed 64-bit.
"""

from __future__ import annotations

import bisect
import codecs
import heapq
import itertools
import operator
import sys
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal, Protocol, runtime_checkable

import marisa_trie

from shared import names as other_names
from shared.errors import ProtocolError
from shared.folding import FOLD_VERSION
from shared.protocol import pack, unpack

FORMAT = 2
"""The snapshot format this build writes and reads (1: hot lists as key strings, display
forms as one string; 2: as below). An edge refuses another one with a ProtocolError."""

ID: Final = "I"
"""Array type of key ids and offsets (unsigned 32-bit: a snapshot is far below 4 GiB, the
edge's ``LIGHTCONE_MAX_SNAPSHOT_BYTES``)."""
WEIGHT: Final = "q"
"""Array type of weights that do not all fit :data:`ID` (signed 64-bit, like every integer
on the wire)."""
if array(ID).itemsize != 4 or array(WEIGHT).itemsize != 8:  # pragma: no cover
    raise ImportError("snapshot arrays need a 4-byte unsigned int and an 8-byte long long")


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


def _ints(data: Any, typecode: Literal["I", "q"], field: str) -> Sequence[int]:
    """The little-endian integers of the byte string ``data``: read in place (a view, no
    copy) on a little-endian machine, copied and swapped on a big-endian one.

    Raises:
        ProtocolError: if ``data`` is not bytes of whole integers.
    """
    if not isinstance(data, bytes):
        raise ProtocolError(f"snapshot {field} must be bytes")
    size = array(typecode).itemsize
    if len(data) % size:
        raise ProtocolError(f"snapshot {field} is not a whole number of {size}-byte integers")
    if sys.byteorder == "little":
        return memoryview(data).cast(typecode)
    swapped = array(typecode, data)  # pragma: no cover - big-endian machines only
    swapped.byteswap()  # pragma: no cover
    return swapped  # pragma: no cover


def _wire(values: array[int]) -> bytes:
    """``values`` as the little-endian bytes :func:`_ints` reads."""
    if sys.byteorder != "little":  # pragma: no cover - big-endian machines only
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def _narrow(weights: array[int]) -> array[int]:
    """``weights`` as :data:`ID` if every one fits (half the bytes), else as they are."""
    if weights and (min(weights) < 0 or max(weights) > 0xFFFFFFFF):
        return weights
    return array(ID, weights)


class Terms:
    """The display forms of a snapshot by key id: their UTF-8 joined by newlines (no display
    form has a newline: :mod:`shared.text`) and the offset where each one ends. A million terms
    are two objects, not a million strings; one non-Latin-1 character costs its own bytes, not
    a wider encoding for the whole text; and a form is decoded only when an answer shows it."""

    __slots__ = ("_ends", "_text")

    def __init__(self, text: bytes, ends: Sequence[int]) -> None:
        """``ends[i]``: the offset of the newline after form ``i`` (the last: ``len(text)``).
        Trusted: :func:`parse` checks what comes from the wire (:meth:`check`)."""
        self._text = text
        self._ends = ends

    @classmethod
    def of(cls, forms: Iterable[str]) -> Terms:
        """The display forms ``forms``, by position, read :data:`_FORMS_AT_ONCE` at a time:
        a million forms given one by one are never a million strings at once."""
        texts: list[bytes] = []
        ends = array(ID)
        given = iter(forms)
        # C-level iterators only: a million forms take a fraction of a second on the core.
        while chunk := list(itertools.islice(given, _FORMS_AT_ONCE)):
            lengths = map(len, map(str.encode, chunk))
            start = ends[-1] + 1 if ends else 0  # this chunk's first form, after a newline
            ends.extend(map(operator.add, itertools.accumulate(lengths), itertools.count(start)))
            texts.append("\n".join(chunk).encode())
        return cls(b"\n".join(texts), ends)

    @property
    def text(self) -> bytes:
        """The forms' UTF-8, joined by newlines."""
        return self._text

    @property
    def ends(self) -> Sequence[int]:
        """Where each form ends in :attr:`text`."""
        return self._ends

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, key_id: int) -> str:
        start = self._ends[key_id - 1] + 1 if key_id else 0
        return self._text[start : self._ends[key_id]].decode()

    def __iter__(self) -> Iterator[str]:
        """Every form in key id order, decoded in one piece (faster than one by one)."""
        return iter(self._text.decode().split("\n") if self._ends else ())

    def check(self) -> None:
        """Refuse offsets that do not cut the text at its newlines, in order, a newline
        inside a form, or a text that is not UTF-8: every form then decodes (about 0.1 s for a
        million terms).

        Raises:
            ProtocolError: naming what is wrong.
        """
        text, ends = self._text, self._ends
        if (ends[-1] if ends else 0) != len(text):
            raise ProtocolError("snapshot term_ends do not end with the terms")
        last = -1
        for end in itertools.islice(ends, max(0, len(ends) - 1)):
            if end <= last or text[end] != 0x0A:
                raise ProtocolError("snapshot term_ends do not fall on the newlines in order")
            last = end
        if ends and text.count(b"\n") != len(ends) - 1:
            raise ProtocolError("snapshot terms have a newline inside a display form")
        decoder = codecs.getincrementaldecoder("utf-8")()
        view, step = memoryview(text), 1 << 20
        try:
            for at in range(0, len(text), step):
                decoder.decode(view[at : at + step])
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"snapshot terms are not UTF-8: {exc.reason}") from None


_FORMS_AT_ONCE = 4096
"""Display forms :meth:`Terms.of` holds at a time (a text of about 100 KB)."""


@runtime_checkable
class Columns(Protocol):
    """Entries sorted by key kept as three columns (the core's
    :class:`core_region.suggest.catalog.Entries`): :func:`hot_lists` and :func:`build` read
    them a column at a time, with no object per entry, and the display forms only by index."""

    @property
    def keys(self) -> Sequence[str]: ...

    @property
    def terms(self) -> Sequence[str]: ...

    @property
    def weights(self) -> Sequence[int]: ...


class HotLists(Mapping[str, Sequence[int]]):
    """Hot prefix -> the key ids of its top completions, best first: one flat array of ids
    and where each prefix's list ends, instead of a Python list of strings per prefix."""

    __slots__ = ("_ends", "_ids", "_at")

    def __init__(self, prefixes: Sequence[str], ends: Sequence[int], ids: Sequence[int]) -> None:
        """Trusted: :func:`parse` checks what comes from the wire."""
        self._at = {p: n for n, p in enumerate(prefixes)}
        self._ends = ends
        self._ids = ids

    def __getitem__(self, prefix: str) -> Sequence[int]:
        n = self._at[prefix]
        return self._ids[self._ends[n - 1] if n else 0 : self._ends[n]]

    def __contains__(self, prefix: object) -> bool:
        return prefix in self._at

    def __iter__(self) -> Iterator[str]:
        return iter(self._at)

    def __len__(self) -> int:
        return len(self._at)


class _MappedTrie(marisa_trie.Trie):  # type: ignore[misc]  # marisa has no types
    """A trie read in place from the bytes it came in, which it keeps alive (``map`` does
    not: the trie would read freed memory once they go)."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self.map(data)
        self._data = data


@dataclass(frozen=True, slots=True)
class SnapshotData:
    version: int
    trie: marisa_trie.Trie
    weights: Sequence[int]
    """By key id."""
    terms: Terms
    hot: Mapping[str, Sequence[int]]
    """Hot prefix -> the key ids of its top ``depth`` completions, best first."""
    alphabet: str
    """The characters of the hot prefixes and of their top keys, sorted."""
    hot_threshold: int
    depth: int
    names: other_names.Names | None = None
    """The terms' other names (:mod:`shared.names`), if any has some."""

    def __len__(self) -> int:
        return len(self.terms)

    def get(self, key: str) -> Entry | None:
        """The entry for ``key``, or ``None`` if the snapshot does not serve it."""
        key_id = self.trie.get(key)
        if key_id is None:
            return None
        return Entry(key, self.terms[key_id], self.weights[key_id])

    def entry(self, key_id: int) -> Entry:
        """The entry of a key id (of a hot list)."""
        return Entry(self.trie.restore_key(key_id), self.terms[key_id], self.weights[key_id])

    def hot_keys(self) -> dict[str, list[str]]:
        """The hot lists as keys (for tests and tools: the edge reads ids)."""
        restore = self.trie.restore_key
        return {p: [restore(i) for i in ids] for p, ids in self.hot.items()}


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
    # place[i]: where entry i ranks (heavier first, then the key: the index, keys are sorted).
    # Ranked before the keys are read: the sort's million ints and the keys' million strings
    # are not held at once (70 MB less at a million terms).
    columns = entries if isinstance(entries, Columns) else None
    weights = array("q", columns.weights if columns else (e.weight for e in entries))
    place = array("q", bytes(8 * len(weights)))
    for at, i in enumerate(sorted(range(len(weights)), key=weights.__getitem__, reverse=True)):
        place[i] = at
    del weights
    keys = list(columns.keys) if columns else [e.key for e in entries]
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
    names: Mapping[str, Sequence[str]] | None = None,
) -> bytes:
    """Serialize a snapshot of ``entries`` (any order, unique keys) and their ``hot`` lists
    (cut to ``depth``; a key ``entries`` do not have is left out), and the other ``names`` of
    its terms (by key; :mod:`shared.names`)."""
    if isinstance(entries, Columns):
        keys, weights_in, forms = entries.keys, entries.weights, entries.terms
    else:
        keys, weights_in, forms = (
            [e.key for e in entries],
            [e.weight for e in entries],
            [e.term for e in entries],
        )
    # Label order: iterating the trie gives the keys sorted, so the core reads a base's
    # entries in key order without sorting them (core_region.suggest.catalog.Catalog.columns).
    # The keys are read as the trie takes them: a list of a million would cost 80 MB more.
    trie = marisa_trie.Trie(iter(keys), order=marisa_trie.LABEL_ORDER)
    weights = array(WEIGHT, bytes(8 * len(keys)))
    position = array(ID, bytes(4 * len(keys)))  # key id -> index in ``entries``
    for at, (key, weight) in enumerate(zip(keys, weights_in, strict=True)):
        key_id = trie[key]
        weights[key_id] = weight
        position[key_id] = at
    named = names and other_names.build(
        trie, weights, names, hot_threshold=hot_threshold, depth=depth
    )
    # The forms by key id, read as they are encoded: a million strings are not held at once.
    terms = Terms.of(map(forms.__getitem__, position))
    del position
    return pack(
        {
            "format": FORMAT,
            "fold": FOLD_VERSION,
            "version": version,
            "trie": trie.tobytes(),
            "weights": _wire(_narrow(weights)),
            **_terms_parts(terms),
            **_hot_parts(hot, trie, depth),
            "hot_threshold": hot_threshold,
            "depth": depth,
            **({"names": named} if named else {}),
        }
    )


def _terms_parts(terms: Terms) -> dict[str, Any]:
    """The wire fields of display forms."""
    return {"terms": terms.text, "term_ends": _wire(array(ID, terms.ends))}


def _hot_parts(hot: Mapping[str, Sequence[str]], trie: Any, depth: int) -> dict[str, Any]:
    """The wire fields of hot lists given as keys, cut to ``depth``, without the keys
    ``trie`` does not have."""
    ids, ends = array(ID), array(ID)
    for keys in hot.values():
        ids.extend(i for i in map(trie.get, keys[:depth]) if i is not None)
        ends.append(len(ids))
    alphabet = set(itertools.chain.from_iterable(hot))
    alphabet.update(itertools.chain.from_iterable(k for ks in hot.values() for k in ks[:depth]))
    return {
        "hot_prefixes": list(hot),
        "hot_ends": _wire(ends),
        "hot_ids": _wire(ids),
        "alphabet": "".join(sorted(alphabet)),
    }


def _check_fold(made_with: object) -> None:
    """Refuse keys made by another fold (:data:`shared.folding.FOLD_VERSION`; a snapshot
    without ``fold`` was made by version 1): this side's queries would not match them."""
    if made_with != FOLD_VERSION:
        older = "core" if isinstance(made_with, int) and made_with < FOLD_VERSION else "edge"
        raise ProtocolError(
            f"the snapshot's keys were made by fold version {made_with!r}, this edge folds "
            f"with version {FOLD_VERSION}: upgrade the {older}"
        )


def parse(blob: bytes) -> SnapshotData:
    """Load a snapshot made by :func:`build`, checking that its parts agree: a blob that
    parses serves every key without error. The large parts are used in place (module doc).
    A snapshot of format 1 (a core of the build before) was made with fold version 1 and is
    refused as such.

    Raises:
        ProtocolError: if ``blob`` is not a snapshot of this format, or its keys were made
            by another fold version.
    """

    try:
        raw = unpack(blob)
        if not isinstance(raw, dict):
            raise ProtocolError("a snapshot is a map")
        _check_fold(raw.get("fold", 1))
        if raw.get("format") != FORMAT:
            raise ProtocolError(f"unsupported snapshot format {raw.get('format')!r}")
        trie_bytes = raw["trie"]
        if not isinstance(trie_bytes, bytes):
            raise ProtocolError("snapshot trie must be bytes")
        trie = _MappedTrie(trie_bytes)
        count = len(trie)
        weights_data = raw["weights"]
        wide = isinstance(weights_data, bytes) and len(weights_data) == 8 * count > 0
        weights = _ints(weights_data, WEIGHT if wide else ID, "weights")
        terms_text = raw["terms"]
        if not isinstance(terms_text, bytes):
            raise ProtocolError("snapshot terms must be bytes")
        terms = Terms(terms_text, _ints(raw["term_ends"], ID, "term_ends"))
        if not count == len(weights) == len(terms):
            raise ProtocolError("snapshot parts disagree in length")
        terms.check()
        hot = _hot(raw["hot_prefixes"], raw["hot_ends"], raw["hot_ids"], count)
        alphabet = raw["alphabet"]
        if not isinstance(alphabet, str):
            raise ProtocolError("snapshot alphabet must be text")
        return SnapshotData(
            version=int(raw["version"]),
            trie=trie,
            weights=weights,
            terms=terms,
            hot=hot,
            alphabet=alphabet,
            hot_threshold=int(raw["hot_threshold"]),
            depth=int(raw["depth"]),
            names=other_names.parse(raw.get("names"), len(trie)),
        )
    except ProtocolError:
        raise
    except Exception as exc:  # marisa and shape errors mean "not a snapshot" too
        raise ProtocolError(f"invalid snapshot: {exc!r}") from None


def _hot(prefixes: Any, ends_data: Any, ids_data: Any, count: int) -> HotLists:
    """The hot lists of a snapshot of ``count`` keys, checked.

    Raises:
        ProtocolError: if the parts do not make lists of that snapshot's key ids.
    """
    if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
        raise ProtocolError("snapshot hot_prefixes must be a list of text")
    if len(set(prefixes)) != len(prefixes):
        raise ProtocolError("snapshot hot_prefixes repeat a prefix")
    ends, ids = _ints(ends_data, ID, "hot_ends"), _ints(ids_data, ID, "hot_ids")
    if len(ends) != len(prefixes) or (ends[-1] if ends else 0) != len(ids):
        raise ProtocolError("snapshot hot_ends do not match hot_prefixes and hot_ids")
    if any(b < a for a, b in itertools.pairwise(ends)):
        raise ProtocolError("snapshot hot_ends go back")
    if ids and max(ids) >= count:
        raise ProtocolError("snapshot hot_ids name a key the trie does not have")
    return HotLists(prefixes, ends, ids)
