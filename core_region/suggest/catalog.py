"""The core's view of what edges serve: terms, weights, hot-prefix lists, and what changed.

A pure, synchronous class. The store commits writes and hands the catalog the rows they
touched (:meth:`Catalog.apply`); the catalog folds them into served entries, keeps each hot
prefix's top list exact, and accumulates a :class:`~shared.protocol.Delta` until the
publisher takes it (:meth:`Catalog.take_delta`).

Hot lists are kept ``2 × depth`` deep so that most removals need no rescan: a list is the
exact top-N of its prefix for some N; a change removes the key and re-inserts it only where
it beats the last kept key; a list that falls under ``depth`` is rebuilt from the sorted keys.

Work per change is bounded by the key: the prefixes with hot lists are closed under taking
prefixes (a prefix has at least the completions of any longer one), so a change walks its
key's prefixes from the shortest and stops at the first without a list: at most
:data:`~shared.text.MAX_KEY_CHARS` + 1 lists, each looked up by one slice of the key.
"""

from __future__ import annotations

import bisect
import heapq
import logging
from array import array
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Protocol, TypeAlias, overload

import marisa_trie
from sortedcontainers import SortedList

from shared.protocol import Delta, TermChange
from shared.snapshot import Entry, SnapshotData, hot_lists, rank
from shared.text import MAX_KEY_CHARS, is_text

logger = logging.getLogger(__name__)

_END = "\U0010ffff"


@dataclass(frozen=True, slots=True)
class TermRow:
    """A term as the store holds it (``sources``: distinct sources counted, see Rules;
    ``names``: its other names, :mod:`shared.names`)."""

    key: str
    term: str
    base_weight: int
    searches: int
    blocked: bool
    sources: int = 0
    names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rules:
    """How stored rows become served entries.

    Attributes:
        search_boost: weight one logged search adds.
        min_searches: searches a term with no base weight needs before it is served.
        min_sources: distinct sources (hashed client addresses) those searches must come
            from (the core's ``LIGHTCONE_MIN_SOURCES``, default 3; 0 here: no threshold).
    """

    search_boost: int = 1000
    min_searches: int = 1
    min_sources: int = 0

    def serve(self, row: TermRow) -> Entry | None:
        if row.blocked or (row.base_weight <= 0 and not self._searched_enough(row)):
            return None
        if not admissible(row):
            return None
        return Entry(row.key, row.term, row.base_weight + row.searches * self.search_boost)

    def _searched_enough(self, row: TermRow) -> bool:
        return row.searches >= self.min_searches and row.sources >= self.min_sources

    def fingerprint(self) -> str:
        """What decides the served set (these rules and the door's limits), for
        :meth:`core_region.store.Store.note_rules`."""
        return (
            f"boost={self.search_boost} searches={self.min_searches} "
            f"sources={self.min_sources} key={MAX_KEY_CHARS}"
        )

    def disposable(self, row: TermRow) -> bool:
        """A term stored only because it was searched, and never served: pruning may delete
        it once none of its searches is left (its searches could yet have made it served)."""
        return row.base_weight <= 0 and not row.blocked and not self._searched_enough(row)


def admissible(row: TermRow) -> bool:
    """Whether ``row`` passes today's door (:mod:`shared.text`): its key within
    :data:`~shared.text.MAX_KEY_CHARS`, key and display form text. Rows stored before the door
    existed may not; they stay stored but are never served (the core logs them at start)."""
    return len(row.key) <= MAX_KEY_CHARS and is_text(row.key) and is_text(row.term)


class Lines(Sequence[str]):
    """Strings with no new line, kept as a few long texts (:data:`JOINED` strings joined by
    new lines in each) and the offset of each string in its text: a few hundred objects for
    a million strings instead of a million (a quarter of their memory, and nothing left
    behind in the allocator's pools when they go); each string is made when read.
    Like the display forms of :class:`shared.snapshot.Terms`."""

    __slots__ = ("_starts", "_texts")

    def __init__(self, texts: list[str], starts: array[int]) -> None:
        self._texts = texts
        self._starts = starts
        """Where string ``i`` starts in ``texts[i // JOINED]`` (``array('i')``: a text is
        :data:`JOINED` strings of at most :data:`~shared.text.MAX_TERM_CHARS` characters,
        far from 2**31)."""

    @classmethod
    def of(cls, strings: Iterable[str]) -> Lines:
        """``strings`` as lines.

        Raises:
            ValueError: if one holds a new line.
        """
        writer = LinesWriter()
        for string in strings:
            writer.add(string)
        return writer.done()

    @classmethod
    def of_list(cls, strings: list[str]) -> Lines:
        """``strings`` as lines, a text at a time (faster than :meth:`of`).

        Raises:
            ValueError: if one holds a new line.
        """
        texts: list[str] = []
        starts = array("i")
        for at in range(0, len(strings), JOINED):
            part = strings[at : at + JOINED]
            text = "\n".join(part)
            if text.count("\n") != len(part) - 1:
                raise ValueError("a line holds a new line")
            texts.append(text)
            starts.extend(accumulate((len(s) + 1 for s in part[:-1]), initial=0))
        return cls(texts, starts)

    @classmethod
    def concat(cls, parts: Iterable[Lines]) -> Lines:
        """``parts`` one after the other; each but the last must hold a whole number of
        :data:`JOINED` strings (as :meth:`of_list` of a slice at such a bound makes them).

        Raises:
            ValueError: if one does not.
        """
        texts: list[str] = []
        starts = array("i")
        for part in parts:
            if len(starts) % JOINED:
                raise ValueError("a part before the last is not a whole number of texts")
            texts += part._texts
            starts += part._starts
        return cls(texts, starts)

    def __len__(self) -> int:
        return len(self._starts)

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> Lines: ...

    def __getitem__(self, i: int | slice) -> str | Lines:
        if isinstance(i, slice):
            return Lines.of(self[j] for j in range(*i.indices(len(self))))
        starts = self._starts
        if i < 0:
            i += len(starts)
        if not 0 <= i < len(starts):
            raise IndexError("line index out of range")
        text = self._texts[i // JOINED]
        after = i + 1
        end = starts[after] - 1 if after % JOINED and after < len(starts) else len(text)
        return text[starts[i] : end]

    def __iter__(self) -> Iterator[str]:
        for text in self._texts:
            yield from text.split("\n")

    def texts(self) -> list[str]:
        """The texts the strings are kept in (to check them without a copy)."""
        return self._texts


class LinesWriter:
    """Builds :class:`Lines` one string at a time (no list of all of them is held)."""

    def __init__(self) -> None:
        self._texts: list[str] = []
        self._strings: list[str] = []
        self._starts = array("i")
        self._at = 0

    def add(self, string: str) -> None:
        self._strings.append(string)
        self._starts.append(self._at)
        self._at += len(string) + 1
        if len(self._strings) == JOINED:
            self._join()

    def _join(self) -> None:
        text = "\n".join(self._strings)
        if text.count("\n") != len(self._strings) - 1:
            raise ValueError("a line holds a new line")
        self._texts.append(text)
        self._strings = []
        self._at = 0

    def done(self) -> Lines:
        if self._strings:
            self._join()
        return Lines(self._texts, self._starts)


JOINED = 4096
"""Strings per text of :class:`Lines` (texts of about 100 KB)."""


class Entries(Sequence[Entry]):
    """Served entries sorted by key, as three columns, and the other names of those that
    have some (by key): what a snapshot is built from (:func:`shared.snapshot.build`,
    :meth:`Catalog.compute_hot`) at a million terms without a million
    :class:`~shared.snapshot.Entry` objects, nor a million key and display strings: keys and
    display forms are :class:`Lines` (about 60 MB at a million terms, where entries as objects
    cost 300 MB); each entry is made when read.
    """

    __slots__ = ("keys", "names", "terms", "weights")

    def __init__(
        self,
        keys: Lines,
        terms: Lines,
        weights: array[int],
        names: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        if not len(keys) == len(terms) == len(weights):
            raise ValueError("columns of different lengths")
        self.keys = keys
        self.terms = terms
        self.weights = weights
        self.names: Mapping[str, tuple[str, ...]] = names or {}
        """Other names by key (of these entries' keys, or more: a snapshot takes those of
        its keys only, :func:`shared.snapshot.build`)."""

    @classmethod
    def of(
        cls, entries: Iterable[Entry], names: Mapping[str, tuple[str, ...]] | None = None
    ) -> Entries:
        """``entries`` (sorted by key) and their other ``names`` (by key) as columns.

        Raises:
            ValueError: if a key or display form holds a new line.
        """
        keys, terms, weights = LinesWriter(), LinesWriter(), array("q")
        for e in entries:
            keys.add(e.key)
            terms.add(e.term)
            weights.append(e.weight)
        return cls(keys.done(), terms.done(), weights, names)

    def __len__(self) -> int:
        return len(self.weights)

    @overload
    def __getitem__(self, i: int) -> Entry: ...

    @overload
    def __getitem__(self, i: slice) -> Entries: ...

    def __getitem__(self, i: int | slice) -> Entry | Entries:
        if isinstance(i, slice):
            return Entries(self.keys[i], self.terms[i], self.weights[i], self.names)
        return Entry(self.keys[i], self.terms[i], self.weights[i])

    def __iter__(self) -> Iterator[Entry]:
        return map(Entry, self.keys, self.terms, self.weights)

    def sorted(self) -> Entries:
        """The same entries in key order (their keys and display forms are strings while
        it runs: 150 MB more at a million terms)."""
        keys = list(self.keys)
        order = sorted(range(len(keys)), key=keys.__getitem__)
        new_keys = Lines.of_list([keys[i] for i in order])
        del keys
        terms = list(self.terms)
        new_terms = Lines.of_list([terms[i] for i in order])
        del terms
        weights = self.weights
        return Entries(new_keys, new_terms, array("q", [weights[i] for i in order]), self.names)


class _ByKeyId(Protocol):
    def __getitem__(self, key_id: int, /) -> str: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True, slots=True)
class _Base:
    """The served entries of a base snapshot, as the snapshot holds them (a trie, a weight
    array and the display forms by key id: a few tens of MB at a million terms)."""

    trie: marisa_trie.Trie
    weights: Sequence[int]
    terms: _ByKeyId

    def get(self, key: str) -> Entry | None:
        key_id = self.trie.get(key)
        return None if key_id is None else Entry(key, self.terms[key_id], self.weights[key_id])

    def items(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        """``(key, key id)`` of the keys starting with ``prefix``."""
        return iter(self.trie.iteritems(prefix))


_Top: TypeAlias = (
    "list[str] | array[int]"  # a hot list: keys, best first, or the base key ids of those keys
)


class Catalog:
    """Served entries at ``version``, with hot lists and the pending delta.

    The entries are a *base* (the newest snapshot's trie, weights and display forms, adopted
    by :meth:`adopt`) and an *overlay* of what changed since (a dict, bounded by the changes
    between compactions, ``LIGHTCONE_COMPACT_AFTER``): a million terms cost the core about
    what they cost an edge. A catalog made from rows or entries (:class:`Catalog`,
    :meth:`of_entries`) holds them all in its overlay until it adopts a base. The hot lists
    installed with a base are kept as arrays of base key ids; a list a change touches becomes
    a list of keys. The other names of the served terms that have some are a dict by key
    (:mod:`shared.names`: a few thousand at a million terms in the shipped corpus).
    """

    def __init__(
        self,
        rows: Iterable[TermRow],
        *,
        version: int,
        rules: Rules,
        hot_threshold: int = 64,
        depth: int = 20,
    ) -> None:
        self.rules = rules
        self.hot_threshold = hot_threshold
        self.depth = depth
        self.version = version
        self.published = version
        self._base: _Base | None = None
        self._over: dict[str, Entry | None] = {}
        """Entries changed since the base: ``None`` for a key no longer served."""
        self._names: dict[str, tuple[str, ...]] = {}
        """The other names of the served keys that have some."""
        refused = 0
        for row in rows:
            entry = rules.serve(row)
            if entry is not None:
                self._over[entry.key] = entry
                if row.names:
                    self._names[entry.key] = row.names
            elif not admissible(row):
                refused += 1
        if refused:
            logger.warning(
                "%d stored terms are not served: their key is over %d characters or not text "
                "(written before that was refused)",
                refused,
                MAX_KEY_CHARS,
            )
        self._over_keys: SortedList = SortedList(self._over)
        """The keys the overlay serves, sorted (for prefix scans)."""
        self._count = len(self._over)
        self._installed: dict[str, _Top] = {}
        """The hot lists as installed (what the base snapshot carries, ``2 × depth`` deep)."""
        self._hot: dict[str, list[str]] = {}
        """The hot lists changed since they were installed."""
        self._sent: dict[str, list[str] | None] = {}
        """What edges were last sent for a prefix, where it is not the installed list's top
        (``None``: unknown, resend)."""
        self._pending: dict[str, Entry | None] = {}
        self._dirty: set[str] = set()
        self._history: list[tuple[int, str]] = []

    @classmethod
    def of_entries(
        cls,
        entries: Iterable[Entry],
        *,
        version: int,
        rules: Rules,
        hot_threshold: int = 64,
        depth: int = 20,
        names: Mapping[str, tuple[str, ...]] | None = None,
    ) -> Catalog:
        """A catalog serving ``entries`` (those of a snapshot) and their other ``names``
        (by key) at ``version``."""
        catalog = cls((), version=version, rules=rules, hot_threshold=hot_threshold, depth=depth)
        catalog._over = {e.key: e for e in entries}
        catalog._over_keys = SortedList(catalog._over)
        catalog._count = len(catalog._over)
        catalog._names = {k: ns for k, ns in (names or {}).items() if ns and k in catalog._over}
        return catalog

    @classmethod
    def of_snapshot(
        cls, data: SnapshotData, *, rules: Rules, hot: Mapping[str, list[str]] | None = None
    ) -> Catalog:
        """A catalog serving the snapshot ``data`` at its version, with its hot threshold and
        depth. ``hot``: the deep hot lists it was built with (:meth:`compute_hot`), computed
        from its entries if not given (the snapshot carries only ``depth`` of each). The
        terms' other names are the snapshot's (its ``names`` field keeps them as stored)."""
        catalog = cls(
            (),
            version=data.version,
            rules=rules,
            hot_threshold=data.hot_threshold,
            depth=data.depth,
        )
        if data.names is not None:
            restore = data.trie.restore_key
            catalog._names = {restore(i): ns for i, ns in data.names.by_term().items() if ns}
        catalog.adopt(data, hot)
        return catalog

    def __len__(self) -> int:
        return self._count

    def get(self, key: str) -> Entry | None:
        if key in self._over:
            return self._over[key]
        return None if self._base is None else self._base.get(key)

    def _served(self, key: str) -> Entry:
        entry = self.get(key)
        assert entry is not None, key  # hot lists hold served keys only
        return entry

    def names_of(self, key: str) -> tuple[str, ...]:
        """The other names of the served term ``key`` (none if it is not served)."""
        return self._names.get(key, ())

    def names(self) -> dict[str, tuple[str, ...]]:
        """The other names of every served term that has some (a copy: the input of a new
        snapshot, with :meth:`entries`)."""
        return dict(self._names)

    # --- writes ---------------------------------------------------------------------------

    def apply(self, rows: Iterable[TermRow], version: int) -> None:
        """Fold rows committed at ``version`` into the served state.

        Raises:
            ValueError: if ``version`` is not newer than the catalog's.
        """
        if version <= self.version:
            raise ValueError(f"version {version} is not newer than {self.version}")
        self.version = version
        for row in rows:
            self._set(row.key, self.rules.serve(row), row.names)
            self._history.append((version, row.key))

    def _set(self, key: str, entry: Entry | None, names: tuple[str, ...] = ()) -> None:
        names = names if entry is not None else ()
        if names != self._names.get(key, ()):
            if names:
                self._names[key] = names
            else:
                del self._names[key]
            self._pending[key] = entry  # its names travel with it (TermChange.names)
        old = self.get(key)
        if old == entry:
            return
        in_base = self._base is not None and key in self._base.trie
        if old is not None and key in self._over:
            self._over_keys.remove(key)
        if entry is None:
            self._count -= 1
            if in_base:
                self._over[key] = None
            else:
                del self._over[key]
        else:
            self._count += old is None
            self._over[key] = entry
            self._over_keys.add(key)
        self._pending[key] = entry
        self._rehot(key, entry)

    def _rehot(self, key: str, entry: Entry | None) -> None:
        for prefix in _prefixes_in(key, self._installed, self._hot):
            top = self._changing(prefix)
            if key in top:
                top.remove(key)
            if entry is not None and top and rank(entry) < rank(self._served(top[-1])):
                bisect.insort(top, key, key=lambda k: rank(self._served(k)))
                del top[2 * self.depth :]
            if len(top) < self.depth:
                self._hot[prefix] = self._scan(prefix)
            self._dirty.add(prefix)

    def _top(self, prefix: str) -> list[str]:
        """The hot list of ``prefix`` (which has one)."""
        top = self._hot.get(prefix)
        return self._installed_top(prefix) if top is None else top

    def _installed_top(self, prefix: str) -> list[str]:
        top = self._installed[prefix]
        if isinstance(top, list):
            return top
        assert self._base is not None  # ids are only kept with a base
        return [self._base.trie.restore_key(key_id) for key_id in top]

    def _changing(self, prefix: str) -> list[str]:
        """The hot list of ``prefix``, to change in place (the installed one stays)."""
        top = self._hot.get(prefix)
        if top is None:
            top = self._hot[prefix] = list(self._installed_top(prefix))
        return top

    def _scan(self, prefix: str) -> list[str]:
        return [e.key for e in heapq.nsmallest(2 * self.depth, self._completions(prefix), key=rank)]

    def _completions(self, prefix: str) -> Iterator[Entry]:
        """The served entries whose key starts with ``prefix``, in no particular order."""
        over = self._over
        for key in self._over_keys.irange(prefix, prefix + _END):
            entry = over[key]
            assert entry is not None
            yield entry
        base = self._base
        if base is not None:
            terms, weights = base.terms, base.weights
            for key, key_id in base.items(prefix):
                if key not in over:
                    yield Entry(key, terms[key_id], weights[key_id])

    # --- publishing ----------------------------------------------------------------------

    @property
    def has_pending(self) -> bool:
        return self.version > self.published or bool(self._dirty)

    def take_delta(self) -> Delta | None:
        """The changes since the last delta, or ``None`` if nothing was committed since."""
        if not self.has_pending:
            return None
        terms = [
            TermChange(key, e.term, e.weight, list(self._names.get(key, ())) or None)
            if e
            else TermChange(key, None, 0)
            for key, e in sorted(self._pending.items())
        ]
        hot: dict[str, list[str]] = {}
        for prefix in sorted(self._dirty):
            top = self._top(prefix)[: self.depth]
            if self._sent_top(prefix) != top:
                hot[prefix] = self._sent[prefix] = top
        delta = Delta(self.published, self.version, terms, hot)
        self.published = self.version
        self._pending.clear()
        self._dirty.clear()
        return delta

    def _sent_top(self, prefix: str) -> list[str] | None:
        """What edges hold for ``prefix``: the last list sent, ``None`` if unknown."""
        if prefix in self._sent:
            return self._sent[prefix]
        if prefix in self._installed:
            return self._installed_top(prefix)[: self.depth]
        return None

    # --- rebasing ------------------------------------------------------------------------

    def entries(self) -> list[Entry]:
        """Every served entry, sorted by key (see :meth:`columns` for a million)."""
        return list(self.columns())

    def changed(self) -> list[Entry]:
        """The served entries not from the base (changed since, or every one without a
        base), sorted by key: the only ones a new snapshot must check (the base's went into
        a snapshot before)."""
        return [e for k in self._over_keys if (e := self._over[k]) is not None]

    def columns(self, without: Collection[str] = ()) -> Entries:
        """Every served entry but those of the keys ``without`` (changed entries a snapshot
        cannot carry), sorted by key, as columns with the terms' other names: the input of a
        new snapshot.

        Linear: the base is read in key order (a snapshot's trie built in label order, see
        :func:`shared.snapshot.build`, iterates so; a base that does not is sorted after)
        and the overlay's few keys are merged in.
        """
        keys, terms, weights = LinesWriter(), LinesWriter(), array("q")
        over = self._over
        changed = iter([e for e in self.changed() if e.key not in without])
        nxt = next(changed, None)
        in_order = True
        base = self._base
        if base is not None:
            base_terms, base_weights = base.terms, base.weights
            last = ""
            for key, key_id in base.items():
                if key < last:
                    in_order = False
                last = key
                if key in over:
                    continue
                while nxt is not None and nxt.key < key:
                    keys.add(nxt.key)
                    terms.add(nxt.term)
                    weights.append(nxt.weight)
                    nxt = next(changed, None)
                keys.add(key)
                terms.add(base_terms[key_id])
                weights.append(base_weights[key_id])
        while nxt is not None:
            keys.add(nxt.key)
            terms.add(nxt.term)
            weights.append(nxt.weight)
            nxt = next(changed, None)
        result = Entries(keys.done(), terms.done(), weights, self.names())
        return result if in_order else result.sorted()

    def compute_hot(self, entries: Sequence[Entry]) -> dict[str, list[str]]:
        """Deep hot lists for ``entries``; pure, so it may run in a worker thread."""
        return hot_lists(entries, threshold=self.hot_threshold, depth=2 * self.depth)

    def adopt(self, data: SnapshotData, hot: Mapping[str, list[str]] | None = None) -> None:
        """Make the snapshot ``data`` the base: a snapshot of this catalog's entries at
        ``data.version`` (:meth:`columns`, less any entry the snapshot could not carry). The
        overlay keeps only the keys changed after it; ``hot`` (the deep lists computed with
        it, or computed now if ``None``) is installed as by :meth:`install_hot`.

        Raises:
            ValueError: if ``data`` is newer than the catalog.
        """
        version = data.version
        if version > self.version:
            raise ValueError(f"snapshot v{version} is newer than the catalog (v{self.version})")
        later = {k for v, k in self._history if v > version}
        base = self._base = _Base(data.trie, data.weights, data.terms)
        # A key changed after the snapshot keeps its state; one no longer served is marked so
        # (the new base may hold it, from before that change).
        self._over = {k: self._over.get(k) for k in sorted(later)}
        self._over_keys = SortedList(k for k, e in self._over.items() if e is not None)
        self._count = len(data) + sum(
            (e is not None) - (k in base.trie) for k, e in self._over.items()
        )
        # Names of a key the snapshot could not carry go with it.
        self._names = {k: ns for k, ns in self._names.items() if self.get(k) is not None}
        if hot is None:
            hot = self.compute_hot(self.columns())
        installed: dict[str, _Top] = {}
        for prefix, top in hot.items():
            ids = [base.trie.get(k) for k in top]
            installed[prefix] = list(top) if None in ids else array("i", ids)
        self._install(installed, version)

    def install_hot(self, hot: Mapping[str, list[str]], version: int) -> None:
        """Adopt hot lists computed from the entries at ``version``.

        Keys changed after ``version`` are replayed so the lists are exact for the head.
        """
        self._install({p: list(top) for p, top in hot.items()}, version)

    def _install(self, installed: dict[str, _Top], version: int) -> None:
        old = (self._installed, self._hot)
        later = [(v, k) for v, k in self._history if v > version]
        self._history = later
        self._installed = installed
        self._hot = {}
        self._sent = {}
        # The lists were ranked at ``version``; every prefix a later change touched is rebuilt
        # from the head and resent. That includes prefixes hot only before the rebase: edges
        # may hold lists for them from deltas published meanwhile, so they stay maintained.
        # Both sets of lists are prefix-closed, so is their union: each changed key walks only
        # its prefixes that have a list (see the module docstring).
        touched = {p for key in {k for _, k in later} for p in _prefixes_in(key, *old, installed)}
        for prefix in touched:
            self._hot[prefix] = self._scan(prefix)
            self._sent[prefix] = None
            self._dirty.add(prefix)
        self._dirty = {p for p in self._dirty if p in self._hot or p in installed}

    @property
    def changes_since_rebase(self) -> int:
        """Term changes applied since the hot lists were last installed (drives compaction)."""
        return len(self._history)


def _prefixes_in(key: str, *lists: Mapping[str, object]) -> Iterator[str]:
    """The prefixes of ``key`` that have a list in any of ``lists`` (each prefix-closed),
    shortest first. The walk stops at the first prefix without one, so it costs the hot depth
    of ``key``, bounded by :data:`~shared.text.MAX_KEY_CHARS`."""
    for n in range(len(key) + 1):
        prefix = key[:n]
        for hot in lists:
            if prefix in hot:
                break
        else:
            return
        yield prefix
