"""Re-keying a store whose keys an older fold made (:data:`shared.folding.FOLD_VERSION`).

The store records the fold version its keys were made with (the ``meta`` row ``fold``; a
store from before that row was made by version 1). :meth:`core_region.store.Store.open`
compares it with this build's: a fresh store records it; an older one is re-keyed here, once,
in one transaction under the version row's lock (the lock every writer of the database queues
on, whatever process it is in: core nodes starting together re-key once, the others find it
done); a newer one is refused (:class:`~shared.config.ConfigError`: this node must be
upgraded, its keys would match nothing).

What holds folded keys, and what the re-key does with each:

- ``terms`` (keyed by ``key``): every row gets the key its old key folds to now
  (:func:`plan`; folding an old key gives the new fold of the text it came from, as
  tests/shared/test_folding.py checks). Rows whose keys collide merge by :func:`merge`.
  A row whose key folds to ``""`` (only punctuation: the old fold kept it) is deleted.
- ``searches`` (``key`` per logged search): moved to the new key, deleted with their row.
- ``term_sources`` (``key, source``): moved; a merged row keeps the union of its rows'
  sources, at most the store's ``MAX_SOURCES_COUNTED``.
- the published stream, ``term_log``, ``marks`` and ``snapshots``: all made with the old
  keys, so dropped; the re-key's own version logs every row it wrote (the changed keys),
  and the first node to serve builds a new base at the head (its stream key names the fold
  version, :func:`core_region.suggest.feature.stream_key`).

The re-key is a version of its own (dense, like every write) and rotates the epoch, so every
edge loads a snapshot instead of applying deltas to keys of the old fold.

Cost: one read of ``terms`` and ``term_sources``, then deletes and inserts of the rows that
change, in statements of at most :data:`BATCH` rows (each within the store's statement
timeout). docs/operations.md ("Upgrading the fold") has the time at a million rows.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from core_region.db import Connection
from core_region.suggest.catalog import TermRow
from shared.config import ConfigError
from shared.folding import FOLD_VERSION, fold
from shared.names import from_stored, stored
from shared.text import MAX_NAMES

logger = logging.getLogger(__name__)

FOLD_META = "fold"
"""The ``meta`` row holding the fold version of the stored keys."""

WAIT_S = 600.0
"""Longest a core node waits at open for another node's re-key (each try waits up to the
store's statement timeout for the version row's lock, then tries again a second later)."""

BATCH = 5_000
"""Rows per statement: keys per ``DELETE ... IN`` and rows per ``executemany``. Keeps each
statement far below PostgreSQL's statement timeout at a million rows."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What re-keying changes: the ``rows`` to write at their new keys (merged), the old keys
    to delete (``gone``: every key that moves, and every key a row is written at), each moved
    key's new key (``moved``; ``""``: the row is dropped), the ``(key, source)`` rows of the
    rows written, and how many rows merged into another (``merged``)."""

    rows: list[TermRow]
    gone: list[str]
    moved: dict[str, str]
    sources: list[tuple[str, str]] = field(default_factory=list)
    merged: int = 0

    @property
    def dropped(self) -> int:
        """Rows deleted: their keys fold to ``""``."""
        return sum(1 for new in self.moved.values() if not new)


def merge(key: str, group: Sequence[TermRow], sources: int, max_sources: int) -> TermRow:
    """The one row ``group`` (rows whose keys now fold to ``key``) becomes.

    The rule: the display form and base weight of the row with the heaviest base weight
    (then the most searched, then the smallest old key); searches added; blocked if any was;
    sources the most any row counted or ``sources`` (their union), at most ``max_sources``
    (the store's ``MAX_SOURCES_COUNTED``); other names those of every row, the kept row's
    first, without one that folds like ``key`` or like an earlier one, at most
    :data:`~shared.text.MAX_NAMES`.
    """
    first = min(group, key=lambda r: (-r.base_weight, -r.searches, r.key))
    seen = {key}
    names: list[str] = []
    for name in itertools.chain(first.names, *(r.names for r in group if r is not first)):
        if (folded := fold(name)) not in seen:
            seen.add(folded)
            names.append(name)
    return TermRow(
        key,
        first.term,
        first.base_weight,
        sum(r.searches for r in group),
        any(r.blocked for r in group),
        min(max_sources, max([sources, *(r.sources for r in group)])),
        tuple(names[:MAX_NAMES]),
    )


def plan(
    rows: Iterable[TermRow],
    sources: Iterable[tuple[str, str]],
    *,
    max_sources: int,
    refold: Callable[[str], str] = fold,
) -> Plan:
    """What re-keying ``rows`` (and their ``(key, source)`` rows) with ``refold`` changes;
    a merged row keeps at most ``max_sources`` sources. Pure: the store runs it inside its
    transaction."""
    groups: dict[str, list[TermRow]] = {}
    moved: dict[str, str] = {}
    for row in rows:
        new = refold(row.key)
        if new != row.key:
            moved[row.key] = new
        if new:
            groups.setdefault(new, []).append(row)
    changed = {k: g for k, g in groups.items() if len(g) > 1 or g[0].key != k}
    of_key: dict[str, list[str]] = {}
    for key, source in sources:
        new = moved.get(key, key)
        if new in changed:
            of_key.setdefault(new, []).append(source)
    kept = {k: sorted(set(s))[:max_sources] for k, s in of_key.items()}
    written = [  # in the order of ``rows`` (no sort: a million keys take seconds)
        merge(k, g, len(kept.get(k, ())), max_sources) if len(g) > 1 else replace(g[0], key=k)
        for k, g in changed.items()
    ]
    return Plan(
        written,
        list(moved.keys() | changed.keys()),
        moved,
        [(k, s) for k, sources in kept.items() for s in sources],
        merged=sum(len(g) for g in changed.values()) - len(changed),
    )


async def check(db: Connection, head: int) -> int | None:
    """The fold version recorded in the store (under the version row's lock, taken by the
    caller, who read ``head``), recorded now if the store is fresh; ``None`` when it is this
    build's.

    Raises:
        ConfigError: the store's keys were made by a newer fold.
    """
    rows = await db.fetch("SELECT value FROM meta WHERE name = ?", (FOLD_META,))
    if rows:
        recorded = int(str(rows[0][0]))
    elif head == 0:  # nothing written yet: a fresh store, made by this build
        await _set(db, FOLD_META, str(FOLD_VERSION))
        return None
    else:
        recorded = 1  # the store predates the row: version 1 made its keys
    if recorded > FOLD_VERSION:
        raise ConfigError(
            f"the store's keys were made by fold version {recorded}, this node folds with "
            f"version {FOLD_VERSION}: upgrade this node (its queries would match nothing)"
        )
    return None if recorded == FOLD_VERSION else recorded


async def rekey(db: Connection, *, max_sources: int) -> tuple[int, Plan]:
    """Re-key every table that holds folded keys (see the module docstring), as one new
    version; returns it and the plan. Runs inside the caller's write transaction, which
    holds the version row's lock."""
    rows = [
        TermRow(str(k), str(t), int(w), int(s), bool(b), int(n), from_stored(names))
        for k, t, w, s, b, n, names in await db.fetch(
            "SELECT key, term, base_weight, searches, blocked, sources, names FROM terms"
        )
    ]
    pairs = [(str(k), str(s)) for k, s in await db.fetch("SELECT key, source FROM term_sources")]
    done = plan(rows, pairs, max_sources=max_sources)
    version_rows = await db.fetch(
        "UPDATE meta SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT)"
        " WHERE name = 'version' RETURNING value"
    )
    version = int(str(version_rows[0][0]))
    for chunk, marks in _chunks(done.gone):
        await db.execute(f"DELETE FROM terms WHERE key IN ({marks})", chunk)
        await db.execute(f"DELETE FROM term_sources WHERE key IN ({marks})", chunk)
    # Before the rows they count: the trigger that counts a new source finds no row to bump,
    # and each row is written with its merged count.
    await _insert(db, "INSERT INTO term_sources (key, source) VALUES (?, ?)", done.sources)
    await _insert(
        db,
        "INSERT INTO terms (key, term, base_weight, searches, blocked, sources, names, version)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(*_values(r), version) for r in done.rows],
    )
    searched = {str(k) for (k,) in await db.fetch("SELECT DISTINCT key FROM searches")}
    moves = [(done.moved[k], k) for k in sorted(searched & done.moved.keys())]
    await _insert(db, "DELETE FROM searches WHERE key = ?", [(k,) for new, k in moves if not new])
    await _insert(db, "UPDATE searches SET key = ? WHERE key = ?", [m for m in moves if m[0]])
    for table in ("term_log", "marks", "snapshots"):
        await db.execute(f"DELETE FROM {table}")
    await _insert(
        db,
        "INSERT INTO term_log"
        " (version, key, term, base_weight, searches, blocked, sources, names)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(version, *_values(r)) for r in done.rows],
    )
    await _set(db, FOLD_META, str(FOLD_VERSION))
    await _set(db, "epoch", uuid.uuid4().hex)
    return version, done


def _values(r: TermRow) -> tuple[str, str, int, int, int, int, str | None]:
    return (r.key, r.term, r.base_weight, r.searches, int(r.blocked), r.sources, stored(r.names))


async def _insert(db: Connection, sql: str, rows: Sequence[Sequence[object]]) -> None:
    for i in range(0, len(rows), BATCH):
        await db.executemany(sql, rows[i : i + BATCH])


def _chunks(keys: list[str]) -> Iterable[tuple[list[str], str]]:
    for i in range(0, len(keys), BATCH):
        chunk = keys[i : i + BATCH]
        yield chunk, ",".join("?" * len(chunk))


async def _set(db: Connection, name: str, value: str) -> None:
    await db.execute(
        "INSERT INTO meta (name, value) VALUES (?, ?)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (name, value),
    )
