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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from sortedcontainers import SortedList

from shared.protocol import Delta, TermChange
from shared.snapshot import Entry, hot_lists, rank
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


class Catalog:
    """Served entries at ``version``, with hot lists and the pending delta."""

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
        self._entries: dict[str, Entry] = {}
        self._names: dict[str, tuple[str, ...]] = {}  # served keys with other names only
        refused = 0
        for row in rows:
            entry = rules.serve(row)
            if entry is not None:
                self._entries[entry.key] = entry
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
        self._keys: SortedList = SortedList(self._entries)
        self._hot: dict[str, list[str]] = {}
        self._sent: dict[str, list[str]] = {}
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
        catalog._entries = {e.key: e for e in entries}
        catalog._keys = SortedList(catalog._entries)
        catalog._names = {k: ns for k, ns in (names or {}).items() if ns and k in catalog._entries}
        return catalog

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Entry | None:
        return self._entries.get(key)

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
        old = self._entries.get(key)
        names = names if entry is not None else ()
        if names != self._names.get(key, ()):
            if names:
                self._names[key] = names
            else:
                del self._names[key]
            self._pending[key] = entry  # its names travel with it (TermChange.names)
        if old == entry:
            return
        if entry is None:
            del self._entries[key]
            self._keys.remove(key)
        else:
            if old is None:
                self._keys.add(key)
            self._entries[key] = entry
        self._pending[key] = entry
        self._rehot(key, entry)

    def _rehot(self, key: str, entry: Entry | None) -> None:
        for prefix in _prefixes_in(key, self._hot):
            top = self._hot[prefix]
            if key in top:
                top.remove(key)
            if entry is not None and top and rank(entry) < rank(self._entries[top[-1]]):
                bisect.insort(top, key, key=lambda k: rank(self._entries[k]))
                del top[2 * self.depth :]
            if len(top) < self.depth:
                self._hot[prefix] = self._scan(prefix)
            self._dirty.add(prefix)

    def _scan(self, prefix: str) -> list[str]:
        entries = (self._entries[k] for k in self._keys.irange(prefix, prefix + _END))
        return [e.key for e in heapq.nsmallest(2 * self.depth, entries, key=rank)]

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
            top = self._hot[prefix][: self.depth]
            if self._sent.get(prefix) != top:
                hot[prefix] = self._sent[prefix] = top
        delta = Delta(self.published, self.version, terms, hot)
        self.published = self.version
        self._pending.clear()
        self._dirty.clear()
        return delta

    # --- rebasing ------------------------------------------------------------------------

    def entries(self) -> list[Entry]:
        """Every served entry, sorted by key (the input of a new snapshot)."""
        return [self._entries[k] for k in self._keys]

    def compute_hot(self, entries: list[Entry]) -> dict[str, list[str]]:
        """Deep hot lists for ``entries``; pure, so it may run in a worker thread."""
        return hot_lists(entries, threshold=self.hot_threshold, depth=2 * self.depth)

    def install_hot(self, hot: dict[str, list[str]], version: int) -> None:
        """Adopt hot lists computed from the entries at ``version``.

        Keys changed after ``version`` are replayed so the lists are exact for the head.
        """
        old = self._hot
        later = [(v, k) for v, k in self._history if v > version]
        self._history = later
        self._hot = hot
        self._sent = {p: top[: self.depth] for p, top in hot.items()}
        # The lists were ranked at ``version``; every prefix a later change touched is rebuilt
        # from the head and resent. That includes prefixes hot only before the rebase: edges
        # may hold lists for them from deltas published meanwhile, so they stay maintained.
        # Both sets of lists are prefix-closed, so is their union: each changed key walks only
        # its prefixes that have a list (see the module docstring).
        touched = {p for key in {k for _, k in later} for p in _prefixes_in(key, old, hot)}
        for prefix in touched:
            self._hot[prefix] = self._scan(prefix)
            self._sent.pop(prefix, None)
            self._dirty.add(prefix)
        self._dirty &= set(self._hot)

    @property
    def changes_since_rebase(self) -> int:
        """Term changes applied since the hot lists were last installed (drives compaction)."""
        return len(self._history)


def _prefixes_in(key: str, *lists: dict[str, list[str]]) -> Iterator[str]:
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
