"""Other names at the edge: which terms a folded query reaches through another of their names
(Bombay → Mumbai, москва → Moscow).

Pure and synchronous. The snapshot's names (:mod:`shared.names`) plus an overlay for the terms
that deltas changed since: every change of a term carries all its names
(:class:`~shared.protocol.TermChange` ``names``), so a changed term's snapshot names are
replaced by the overlay's. Rules (docs/protocol.md, "How a suggestion matched"):

* a term matches through a name when the name's folded form equals the query (the *exact*
  class) or starts with it (the *prefix* class); it is ranked with the term's current weight;
  on a query shorter than :data:`MERGED_FROM` folded characters, names' prefix matches come
  after the keys' own prefix matches instead of among them;
* a term the query reaches by its own key is not an alias match (its canonical match wins),
  nor is a term no longer served;
* each term appears once, through its best name: an exact one, else the shortest;
* on a hot prefix of the names (more than the snapshot's ``hot_threshold``), the candidates
  are its hot list (the best ``depth`` names at the snapshot, one per term) and the exact name.
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import ClassVar

from sortedcontainers import SortedList

from shared.folding import fold
from shared.names import MAX_NAMES
from shared.snapshot import Entry, SnapshotData, rank

_END = "\U0010ffff"

MERGED_FROM = 5
"""Folded characters from which a prefix of another name ranks among the keys' prefix matches
by weight. A shorter query is the start of thousands of names, and big cities' names would
push the smaller cities whose own name the user is typing out of the first five (``ba``:
Bengaluru by Bangalore before Bamako; ``kash``: Varanasi by Kashi): on the quality set's
tuning split, from 4 characters exact-prefix recall@5 fell from 0.989 to 0.983, from 5 it
does not move."""


@dataclass(frozen=True, slots=True)
class AliasMatch(Entry):
    """An entry that matched through another of its names, ``alias`` (its display form)."""

    match: ClassVar[str] = "alias"
    alias: str = ""


class Aliases:
    """The other names an index serves: its snapshot's and the overlay's."""

    def __init__(self, snapshot: SnapshotData) -> None:
        self._base = snapshot.names
        self._restore = snapshot.trie.restore_key
        self._key_id = snapshot.trie.get
        self._changed: dict[str, list[tuple[str, str]]] = {}  # key -> (folded, display)
        self._added: SortedList = SortedList()  # (folded name, term key, display)

    def __bool__(self) -> bool:
        return self._base is not None or bool(self._added)

    def copy(self) -> Aliases:
        """These names as they are now (the snapshot's shared, the overlay copied)."""
        other = copy.copy(self)
        other._changed = dict(self._changed)  # its lists are replaced, never changed
        other._added = self._added.copy()
        return other

    def added_names(self) -> Iterator[str]:
        """The folded names deltas added since the snapshot."""
        return (folded for folded, _, _ in self._added)

    def apply(self, key: str, names: list[str] | None, served: bool) -> None:
        """A delta changed term ``key``: ``names`` are now all its names (none if not
        ``served``)."""
        for folded, display in self._changed.pop(key, ()):
            self._added.remove((folded, key, display))
        mine: list[tuple[str, str]] = []
        seen = {key}
        for display in (names or [])[:MAX_NAMES] if served else ():
            folded = fold(display)
            if folded and folded not in seen:
                seen.add(folded)
                mine.append((folded, display))
                self._added.add((folded, key, display))
        if mine or self._has_base_names(key):
            self._changed[key] = mine

    def _has_base_names(self, key: str) -> bool:
        base = self._base
        key_id = self._key_id(key)
        if base is None or key_id is None:
            return False
        at = bisect.bisect_left(base.terms, key_id)
        return at < len(base.terms) and base.terms[at] == key_id

    def matches(
        self,
        prefix: str,
        limit: int,
        get: Callable[[str], Entry | None],
        *,
        by_prefix: bool = True,
    ) -> tuple[list[AliasMatch], list[AliasMatch]]:
        """The terms ``prefix`` reaches through another name, as ``(exact, prefix)`` classes,
        each ranked by weight (then key); ``get`` gives a term's current entry. Without
        ``by_prefix``, only the exact class (a few lookups, where the prefix class would read
        up to ``hot_threshold`` names)."""
        best: dict[str, tuple[bool, str, str]] = {}  # key -> (not exact, folded, display)

        def offer(folded: str, key: str, display: str) -> None:
            if key.startswith(prefix):
                return  # its own key matches: a canonical match
            candidate = (folded != prefix, folded, display)
            current = best.get(key)
            if current is None or (candidate[0], len(folded), folded) < (
                current[0],
                len(current[1]),
                current[1],
            ):
                best[key] = candidate

        base, changed = self._base, self._changed
        if base is not None:
            ids = base.ids(prefix) if by_prefix else []
            exact = base.trie.get(prefix)
            if exact is not None and exact not in ids:
                ids.append(exact)
            for name_id in ids:
                key_id, display = base.name(name_id)
                key = self._restore(key_id)
                if key not in changed:
                    offer(base.trie.restore_key(name_id), key, display)
        if self._added:
            upto = (prefix + _END,) if by_prefix else (prefix, _END)
            for folded, key, display in self._added.irange((prefix,), upto):
                offer(folded, key, display)
        exact_class: list[AliasMatch] = []
        prefix_class: list[AliasMatch] = []
        for key, (inexact, _, display) in best.items():
            entry = get(key)
            if entry is not None:
                match = AliasMatch(entry.key, entry.term, entry.weight, display)
                (prefix_class if inexact else exact_class).append(match)
        exact_class.sort(key=rank)
        prefix_class.sort(key=rank)
        return exact_class, prefix_class[:limit]
