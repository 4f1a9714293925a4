"""The edge's suggestion index: a snapshot from the core plus the deltas applied since.

Pure and synchronous. The snapshot is immutable (a marisa trie and arrays); deltas land in a
small overlay that shadows it, and replace the top lists of the hot prefixes they touched.
The core compacts the overlay away by publishing a new snapshot now and then.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import math
import operator
from collections.abc import Iterable, Sequence

from sortedcontainers import SortedList

from edge_node.suggest import typos
from edge_node.suggest.aliases import MERGED_FROM, Aliases
from edge_node.suggest.typos import TypoMatch
from shared.protocol import Delta
from shared.snapshot import Entry, SnapshotData, rank

_weight = operator.attrgetter("weight")

_END = "\U0010ffff"

TWO_TYPOS_HEAD = 1
"""Leading characters a two-typo match must have right (as Lucene's fuzzy ``prefix_length``):
a typo in the first character multiplies the prefixes to walk by the alphabet's size."""

TYPO_MAX_NODES = 400
"""Prefixes the typo walks of one query may evaluate in all
(:func:`edge_node.suggest.typos.within`), about 3 µs each: about 1.2 ms of one core, so a
cache miss stays within the 2 ms budget. The one-typo walk goes first (on the default corpus
it evaluates about a hundred); the two-typo walk gets what it left. A full two-typo walk
evaluates 700 prefixes at the median, 1,000 at the 90th percentile (first character kept;
every short prefix is within two edits of the query's start): the walk takes the query's
own characters first, so what a capped walk leaves out are matches with an early typo.
A capped walk still answers with what it found and counts in
``lightcone_typo_walks_capped_total``."""

TYPO_PAD_NODES = 200
""":data:`TYPO_MAX_NODES` for a query that has prefix matches, where typo matches only fill
the rest of the answer: the query was likely typed right, and exact prefixes keep their 1 ms
budget."""


def _starts(keys: Iterable[str], most: int) -> set[str]:
    """The distinct prefixes of 1 to ``most`` characters of ``keys`` (one slice per key)."""
    longest = {k[:most] for k in keys if k}
    return longest.union(p[:n] for p in longest for n in range(1, len(p)))


class GapError(Exception):
    """A delta does not start at the index's version: the edge must resync."""

    def __init__(self, have: int, got: int) -> None:
        super().__init__(f"delta from version {got} does not follow version {have}")
        self.have = have
        self.got = got


class SuggestIndex:
    def __init__(self, snapshot: SnapshotData) -> None:
        self.version = snapshot.version
        self._base = snapshot
        # The top lists deltas replaced (keys); the others are the base's (key ids).
        self._hot: dict[str, list[str]] = {}
        self._overlay: dict[str, Entry | None] = {}
        self._added: SortedList = SortedList()  # overlay keys the base does not have
        # The characters probed after a hot prefix (a cold one has at most ``hot_threshold``
        # keys, read whole instead): those of the hot prefixes and their top keys, which the
        # core sends with the snapshot (reading every key would cost seconds at a million
        # terms). A typo walk adds the query's own characters (:meth:`_typo_matches`).
        self._alphabet = snapshot.alphabet
        self._hot_children: dict[str, str] = {}  # at most one per hot prefix of the base
        self._iterkeys = snapshot.trie.iterkeys
        self._aliases = Aliases(snapshot)
        self._base_starts: dict[int, frozenset[str]] = {}  # short_prefixes() of the base
        self.typo_walks_capped = 0
        """Typo walks cut short by :data:`TYPO_MAX_NODES` since this index was made."""

    def copy(self) -> SuggestIndex:
        """This index as it is now, for reading in another thread while deltas go on landing
        here: the immutable snapshot is shared, and so is the list of its short prefixes
        once made (:meth:`short_prefixes`); the overlay (small by design: the core compacts it
        away, at most ``LIGHTCONE_COMPACT_AFTER`` changes) is copied, in about a millisecond."""
        other = copy.copy(self)
        other._hot = dict(self._hot)
        other._overlay = dict(self._overlay)
        other._added = self._added.copy()
        other._hot_children = {}
        other._aliases = self._aliases.copy()
        return other

    def short_prefixes(self, most: int) -> set[str]:
        """Every prefix of 1 to ``most`` characters of a served key or another name: a
        superset of the short prefixes :meth:`query` has answers for (a key or name taken
        away since the snapshot may leave some with none). The snapshot's part is read once
        per snapshot (every key once: about 0.3 s at a million terms)."""
        base = self._base_starts.get(most)
        if base is None:
            keys: Iterable[str] = self._base.trie.iterkeys()
            if self._base.names is not None:
                keys = itertools.chain(keys, self._base.names.trie.iterkeys())
            base = self._base_starts[most] = frozenset(_starts(keys, most))
        added = itertools.chain(self._added, self._aliases.added_names())
        return set(base).union(_starts(added, most))

    @property
    def base_version(self) -> int:
        """The version of the snapshot this index grew from (its hot prefixes are that
        snapshot's)."""
        return self._base.version

    def __len__(self) -> int:
        """Terms in the base snapshot (the overlay is small by design)."""
        return len(self._base)

    @property
    def depth(self) -> int:
        """How many keys each hot list holds: the largest limit answered exactly."""
        return self._base.depth

    @property
    def overlay_size(self) -> int:
        return len(self._overlay)

    def get(self, key: str) -> Entry | None:
        """The served entry for a folded ``key``."""
        if key in self._overlay:
            return self._overlay[key]
        return self._base.get(key)

    def apply(self, delta: Delta) -> None:
        """Apply the next delta.

        Raises:
            GapError: if ``delta.from_version`` is not :attr:`version`; nothing is applied.
        """
        if delta.from_version != self.version:
            raise GapError(self.version, delta.from_version)
        for change in delta.terms:
            entry = Entry(change.key, change.term, change.weight) if change.term else None
            in_base = change.key in self._base.trie
            if not in_base:
                if entry is None:
                    self._added.discard(change.key)
                elif change.key not in self._added:
                    self._added.add(change.key)
            self._overlay[change.key] = entry
            self._aliases.apply(change.key, change.names, entry is not None)
        self._hot.update(delta.hot)
        self.version = delta.to_version

    def query(self, prefix: str, limit: int) -> list[Entry]:
        """The best ``limit`` entries for the folded ``prefix``, strongest class first.

        Classes: the key equal to ``prefix`` and the terms with another name equal to it
        (:mod:`edge_node.suggest.aliases`), the other keys and other names starting with it
        (by :func:`rank`), then, while ``limit`` is not filled, keys matching with one typo,
        then two (:mod:`edge_node.suggest.typos`: the allowance grows with the length of
        ``prefix``), each class by :func:`rank` (one typo: by weight times the odds of the
        slip, :func:`~edge_node.suggest.typos.odds`). An entry appears once, in its best class.
        Typo matches are :class:`~edge_node.suggest.typos.TypoMatch` (``match == "typo"``),
        matches of another name :class:`~edge_node.suggest.aliases.AliasMatch`
        (``match == "alias"``); the others plain entries (``match == "prefix"``).
        """
        found = self._completions(prefix, limit)
        own = self.get(prefix) if found else None
        if own is not None and found[0].key != prefix:
            rest = [e for e in found if e.key != prefix]
            found = [own, *rest[: limit - 1]]
        if self._aliases:
            found = self._with_aliases(prefix, limit, found)
        allowance = typos.allowed(prefix)
        if len(found) < limit and allowance:
            found += self._typo_matches(prefix, limit - len(found), allowance, found)
        return found

    def _with_aliases(self, prefix: str, limit: int, found: list[Entry]) -> list[Entry]:
        """``found`` (the key's own matches) with the terms another name matches, by class
        (:data:`~edge_node.suggest.aliases.MERGED_FROM`: below it, names' prefix matches follow
        the keys')."""
        merged = len(prefix) >= MERGED_FROM
        # Under MERGED_FROM, names' prefix matches only fill what the keys leave of ``limit``.
        wanted = merged or len(found) < limit
        exact, by_prefix = self._aliases.matches(prefix, limit, self.get, by_prefix=wanted)
        if not exact and not by_prefix:
            return found
        own = found[:1] if found and found[0].key == prefix else []
        rest: Iterable[Entry] = [*found[len(own) :], *by_prefix]
        if merged:
            rest = heapq.merge(found[len(own) :], by_prefix, key=rank)
        return [*own, *exact, *itertools.islice(rest, limit)][:limit]

    def _typo_matches(
        self, prefix: str, wanted: int, allowance: int, found: list[Entry]
    ) -> list[Entry]:
        """Up to ``wanted`` typo matches of ``prefix`` not in ``found``, best class first."""
        seen = {e.key for e in found}
        matches: list[Entry] = []
        extra = "".join(set(prefix).difference(self._alphabet))

        def children(start: str) -> str:
            return self._children(start, extra)

        budget = TYPO_PAD_NODES if found else TYPO_MAX_NODES  # for all of the query's walks
        has_prefix = self._has_prefix if self._added else self._base_has_prefix
        for allowed in range(1, allowance + 1):
            walk = typos.within(
                prefix,
                allowed,
                children,
                has_prefix,
                max_nodes=budget,
                head=TWO_TYPOS_HEAD if allowed == 2 else 0,
            )
            budget -= walk.visited
            if walk.capped:
                self.typo_walks_capped += 1
            # One typo: by weight x the odds of the slip (typos.odds); two: by weight. The
            # candidates are each kept prefix's best ``wanted + len(seen)`` completions by
            # weight (the odds of the keys under one prefix differ only by what follows it).
            starts = walk.prefixes
            if allowed == 1:  # a swap below a kept prefix (typos.swaps)
                starts = {**dict.fromkeys(filter(has_prefix, typos.swaps(prefix)), 1), **starts}
            found_here: dict[str, Entry] = {}
            for start, distance in starts.items():
                if distance == allowed:
                    for e in self._completions(start, wanted + len(seen)):
                        if e.key not in seen:
                            found_here[e.key] = e
            if allowed == 1:
                pool = self._by_odds(prefix, found_here.values(), wanted - len(matches))
            else:
                pool = [(-e.weight, k, e) for k, e in found_here.items()]
            for _, _, e in heapq.nsmallest(wanted - len(matches), pool):
                matches.append(TypoMatch(e.key, e.term, e.weight, allowed))
                seen.add(e.key)
            if len(matches) == wanted:
                break
        return matches

    @staticmethod
    def _by_odds(prefix: str, found: Iterable[Entry], need: int) -> list[tuple[float, str, Entry]]:
        """One-typo matches scored by weight x :func:`typos.odds` (lower is better), heaviest
        first, reading no lighter key once even :func:`typos.most_odds` cannot lift it into
        the best ``need``: the best ``need`` are the same as if all were scored."""
        pool: list[tuple[float, str, Entry]] = []
        most = -math.log(typos.most_odds(prefix))
        known: dict[str, float] = {}  # the odds of each head: keys that share it share them
        kept: list[float] = []  # the ``need`` best scores so far, negated (a max-heap)
        log1p, log, cut = math.log1p, math.log, len(prefix) + 1
        for e in sorted(found, key=_weight, reverse=True):
            heft = -log1p(e.weight)
            if len(kept) == need and most + heft > -kept[0]:
                break
            head = e.key[:cut]  # all that odds read of the key
            odds = known.get(head)
            if odds is None:
                odds = known[head] = typos.odds(prefix, head)
            if not odds:
                continue
            score = heft - log(odds)
            pool.append((score, e.key, e))
            if len(kept) < need:
                heapq.heappush(kept, -score)
            elif score < -kept[0]:
                heapq.heapreplace(kept, -score)
        return pool

    def _base_has_prefix(self, prefix: str) -> bool:
        return next(self._iterkeys(prefix), None) is not None

    def _has_prefix(self, prefix: str) -> bool:
        """Whether some base or overlay key starts with ``prefix``."""
        if next(self._base.trie.iterkeys(prefix), None) is not None:
            return True
        added = self._added
        return bool(added) and next(added.irange(prefix, prefix + _END), None) is not None

    def _children(self, prefix: str, extra: str = "") -> str:
        """The characters that follow ``prefix`` in some served or overlay key (after a hot
        prefix, those of the index's alphabet and of ``extra``), in a fixed order: a capped
        walk then finds the same matches every time."""
        base = self._base
        n = len(prefix)
        if prefix in base.hot:
            kids = self._hot_children.get(prefix)
            if kids is None:
                kids = self._hot_children[prefix] = self._probe(prefix, self._alphabet)
            if extra:
                kids += self._probe(prefix, extra)
        else:
            kids = "".join(sorted({k[n] for k in base.trie.iterkeys(prefix) if len(k) > n}))
        if self._added:
            added = {k[n] for k in self._added.irange(prefix, prefix + _END) if len(k) > n}
            if added - set(kids):
                kids = "".join(sorted(set(kids) | added))
        return kids

    def _probe(self, prefix: str, chars: str) -> str:
        """Those of ``chars`` that follow ``prefix`` in some base key."""
        iterkeys = self._iterkeys
        return "".join(c for c in chars if next(iterkeys(prefix + c), None) is not None)

    def _completions(self, prefix: str, limit: int) -> list[Entry]:
        """The top ``limit`` entries whose key starts with ``prefix``, by :func:`rank`."""
        top = self._hot.get(prefix)
        if top is not None:
            found = []
            for key in top:
                entry = self.get(key)
                if entry is not None:
                    found.append(entry)
                    if len(found) == limit:
                        break
            return found
        base, overlay = self._base, self._overlay
        ids = base.hot.get(prefix)
        if ids is not None:  # a list no delta replaced: the base's, read through the overlay
            return self._base_top(ids, limit)
        if not overlay:
            # The common case between compactions of a quiet corpus: rank plain tuples and
            # build entries for the winners only.
            weights, terms = base.weights, base.terms
            best = heapq.nsmallest(
                limit, ((-weights[i], key, i) for key, i in base.trie.items(prefix))
            )
            return [Entry(key, terms[i], -w) for w, key, i in best]
        candidates = [self.get(k) for k in base.trie.keys(prefix)]
        candidates += (overlay[k] for k in self._added.irange(prefix, prefix + _END))
        return heapq.nsmallest(limit, (e for e in candidates if e is not None), key=rank)

    def _base_top(self, ids: Sequence[int], limit: int) -> list[Entry]:
        """The first ``limit`` served entries of a base hot list (key ids, best first)."""
        base, overlay = self._base, self._overlay
        found = []
        for key_id in ids:
            entry: Entry | None = base.entry(key_id)
            if overlay and entry is not None and entry.key in overlay:
                entry = overlay[entry.key]
            if entry is not None:
                found.append(entry)
                if len(found) == limit:
                    break
        return found
