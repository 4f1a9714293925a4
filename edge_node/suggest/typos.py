"""Typo matching on prefixes: which prefixes of the index's keys are within a few edits of a
folded query.

Pure and synchronous. The rules (docs/protocol.md, "How a suggestion matched"):

* a query of :data:`ONE_TYPO_FROM` folded characters or more allows one typo, of
  :data:`TWO_TYPOS_FROM` or more two;
* a typo is an insertion, a deletion, a substitution, or a transposition of two adjacent
  characters (optimal string alignment distance: each character is edited at most once);
* a key matches with ``k`` typos when some prefix of it is within ``k`` of the query, the
  smallest such ``k`` counting;
* one-typo matches rank by weight times the odds of the slip that makes the query of the key
  (:func:`odds`: a noisy channel, no keyboard model).

``marisa-trie`` cannot be walked node by node from Python, so :func:`within` walks the
*implicit* trie of the keys through a ``children`` callback (the characters that follow a
prefix in some key), carrying one row of the edit-distance table per prefix and cutting every
branch whose row has no cell within the allowance. The walk visits at most ``max_nodes``
prefixes: a two-typo walk over a large alphabet can visit thousands, and the cap keeps the
answer within the serving budget (what it leaves out is reported, never waited for).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from shared.snapshot import Entry

ONE_TYPO_FROM = 4
"""Folded characters a query needs before one typo is allowed."""
TWO_TYPOS_FROM = 8
"""Folded characters a query needs before two typos are allowed."""
MAX_TYPOS = 2


LETTERS = 25
"""The keys a wrong or extra key may be, each as likely: any other letter (no keyboard is
assumed, so no neighbour is likelier than another)."""


def odds(query: str, key: str) -> float:
    """How likely someone who meant ``key`` typed ``query`` with one slip: the channel
    probability of the noisy-channel reading (Kernighan, Church and Gale 1990; Brill and
    Moore 2000), up to a factor every key shares. One-typo matches rank by weight x odds.

    The model: at every keystroke, five slips are each as likely: a wrong key, an extra key,
    a left-out key, a key pressed twice, two neighbours swapped. A wrong or extra key may be
    any of :data:`LETTERS` letters (no keyboard is assumed), so each reading that guesses a
    letter counts 25 times less than one that guesses none (a left-out key, a doubled key, a
    swap). The typed part of ``key`` may be one character shorter than ``query``, as long, or
    one longer; every reading of every length that makes ``query`` adds up (``syddney`` is a
    ``d`` pressed twice, or an extra ``d`` after the ``y``). A key that starts with ``query``
    is a prefix match: 0.
    """
    n, size = len(query), len(key)
    i, most = 0, min(n, size)
    while i < most and query[i] == key[i]:
        i += 1
    if i == n:
        return 0.0  # the key starts with the query: a prefix match, not a typo
    # From here on the query and the key first differ at i (or the key ends there).
    total = 0.0
    if size >= n:  # the typed part as long as the query: a wrong key, or neighbours swapped
        if query[i + 1 :] == key[i + 1 : n]:
            total += 1 / LETTERS
        elif i + 1 < n and query[i] == key[i + 1] and query[i + 1] == key[i]:
            total += query[i + 2 :] == key[i + 2 : n]
    if size > n and key[i + 1 : n + 1] == query[i:]:  # one longer: key[k] left out, k in a run
        total += _run(key, i)
    if n > 1:  # one shorter: query[k] typed extra, for each k of the run that ends at j
        j = min(i, n - 1)
        if query[j + 1 :] == key[j : n - 1]:
            # The run's first key is an extra one (a guess); each other repeats the one before.
            total += 1 / LETTERS + _run(query, j) - 1
    return total


def _run(text: str, end: int) -> int:
    """How many equal characters ``text`` has in a row, ending at ``end``."""
    run = 1
    while run <= end and text[end - run] == text[end]:
        run += 1
    return run


def most_odds(query: str) -> float:
    """An upper bound of :func:`odds` over every key, for ``query``: a swap or a wrong key (1),
    the keys of a run left out (at most the longest run of equal keys in ``query`` plus one),
    the keys of a run typed extra (at most that run). A ranking stops reading lighter keys
    once even these odds cannot lift them."""
    longest = max((_run(query, k) for k in range(len(query))), default=1)
    return 2.0 * longest + 2.0


def swaps(query: str) -> list[str]:
    """``query`` with two adjacent, different characters swapped, each way there is.

    Each is one typo from ``query``, but :func:`within` keeps only the shortest prefix at a
    distance: ``badn`` reaches Bandung through ``ban`` (an extra ``d``), never through
    ``band``. A caller ranking one-typo matches by :func:`odds` checks these few strings as
    prefixes too, so the keys a swap reaches are among those it ranks.
    """
    return [
        query[:i] + query[i + 1] + query[i] + query[i + 2 :]
        for i in range(len(query) - 1)
        if query[i] != query[i + 1]
    ]


def allowed(query: str) -> int:
    """How many typos the folded ``query`` allows (0, 1 or 2)."""
    n = len(query)
    return 2 if n >= TWO_TYPOS_FROM else 1 if n >= ONE_TYPO_FROM else 0


@dataclass(frozen=True, slots=True)
class TypoMatch(Entry):
    """An entry that matched with ``typos`` typos (1 or 2); reads like any :class:`Entry`."""

    match: ClassVar[str] = "typo"
    # Entry's class-wide 0 becomes a field here: plain entries pay no memory for it.
    typos: int = 1  # type: ignore[misc]


@dataclass(slots=True)
class Walk:
    """What :func:`within` found: the shortest matching prefixes and their typos, whether the
    walk stopped at its node cap before it had seen every candidate, and the prefixes it
    evaluated (its cost)."""

    prefixes: dict[str, int]
    capped: bool
    visited: int


def within(
    query: str,
    typos: int,
    children: Callable[[str], str],
    has_prefix: Callable[[str], bool],
    *,
    max_nodes: int,
    head: int = 0,
) -> Walk:
    """The prefixes within ``typos`` edits of ``query`` that no shorter such prefix covers as
    well.

    A prefix ``p`` is kept when its distance ``d`` to ``query`` is at most ``typos`` and below
    that of every shorter kept prefix on its path: every key starting with ``p`` then matches
    with ``d`` typos (or fewer, through a longer prefix also kept).

    The walk reads the children of a prefix only while an edit is still to spare; once a
    branch has spent its allowance, the only ways on are the rest of the query read as it is
    (or one pending transposition), so those few strings are checked with ``has_prefix``
    instead of walked. Rows are computed on the band of cells within the allowance.

    Args:
        query: the folded query.
        typos: the allowance, 1 or 2.
        children: the characters that follow a prefix in some key (any order, no repeats).
        has_prefix: whether some key starts with a string.
        max_nodes: the most children the walk evaluates (its cost is about linear in them).
        head: how many leading characters of the query must be read as they are.

    Returns:
        The kept prefixes with their distance, and whether the cap cut the walk short.
    """
    n = len(query)
    big = typos + 1
    found: dict[str, int] = {}

    root = [j if j <= typos else big for j in range(n + 1)]
    # A frame: a prefix with an edit to spare, its row of distances to the query's prefixes,
    # its parent's row (for transpositions), and the distance a kept prefix must beat.
    stack: list[tuple[str, list[int], list[int] | None, int]] = [("", root, None, big)]
    visited = 0
    while stack:
        prefix, row, parent, best = stack.pop()
        i = len(prefix)
        last = prefix[-1:]
        cap = best - 1
        lo, hi = max(1, i + 1 - cap), min(n, i + 1 + cap)
        deeper: list[tuple[int, str, tuple[str, list[int], list[int] | None, int]]] = []
        can_swap = parent is not None and last in query  # a transposition can end here
        for c in query[i] if i < head else _likeliest_first(children(prefix), query[i : i + 2]):
            if visited >= max_nodes:
                return Walk(found, True, visited)
            visited += 1
            new = [big] * (n + 1)
            low = big
            if i + 1 <= cap:
                new[0] = low = i + 1
            left = new[lo - 1]
            for j in range(lo, hi + 1):
                q = query[j - 1]
                cell = row[j - 1] + (q != c)
                up = row[j] + 1
                if up < cell:
                    cell = up
                if left + 1 < cell:
                    cell = left + 1
                if can_swap and last == q and j > 1 and c == query[j - 2]:
                    t = parent[j - 2] + 1  # type: ignore[index]
                    if t < cell:
                        cell = t
                new[j] = left = cell
                if cell < low:
                    low = cell
            if low > cap:
                continue
            child = prefix + c
            here = new[n]
            child_best = best
            if here <= cap:
                found[child] = here
                child_best = here
            spare = child_best - 1
            if low < spare:
                deeper.append((low, c, (child, new, row, child_best)))
            elif low == spare:  # no edit to spare: read the rest of the query as it is
                for j in range(max(0, lo - 1), min(n, hi + 1) + 1):  # the band: others exceed cap
                    if new[j] == spare and j < n:
                        rest = child + query[j:]
                        if found.get(rest, big) > spare and has_prefix(rest):
                            found[rest] = spare
                    if j > 1 and c == query[j - 1] and row[j - 2] + 1 <= spare:
                        rest = child + query[j - 2] + query[j:]
                        if found.get(rest, big) > spare and has_prefix(rest):
                            found[rest] = spare
        # Closest children on top: a walk cut short by the cap has seen the likeliest first.
        deeper.sort(key=lambda d: (-d[0], d[1]))
        stack.extend(frame for _, _, frame in deeper)
    return Walk(found, False, visited)


def _likeliest_first(kids: str, ahead: str) -> str:
    """``kids`` with the query's next characters first (read as typed, or one skipped): the
    children a walk cut short by its cap should have seen."""
    for c in reversed(ahead):
        if c in kids:
            kids = c + kids.replace(c, "")
    return kids
