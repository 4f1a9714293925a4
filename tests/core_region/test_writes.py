"""Writes you can trust, on the store (a real SQLite file and a real PostgreSQL, each test
on both) and the core node in process:
a reused search id with another query is a conflict, new terms need distinct sources,
old searches and the junk terms they leave are pruned, and a rollback rotates the epoch."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core_region.app import FEATURES
from core_region.metrics import CoreMetrics
from core_region.node import CoreNode
from core_region.settings import CoreSettings
from core_region.store import MAX_SOURCES_COUNTED, MIGRATIONS, CoreNodeLease, LoggedSearch, Store
from core_region.suggest.catalog import Rules, TermRow
from shared.config import ConfigError, from_environ
from shared.folding import fold
from shared.protocol import (
    ACK_ID_CONFLICT,
    Delta,
    Hello,
    Level,
    Searches,
    SearchItem,
    Snapshot,
    decode,
)
from shared.snapshot import Entry
from tests.helpers.core import suggest_of

RULES = Rules(search_boost=10, min_searches=1, min_sources=3)
DAY = 24 * 3600.0
T0 = 1_800_000_000.0


def search(search_id: str, q: str, source: str = "s1") -> LoggedSearch:
    return LoggedSearch(search_id, fold(q), q, q, "syd", source)


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A seeded store on each engine: a SQLite file, a fresh PostgreSQL database."""
    if request.param == "postgres":
        store = await Store.open(request.getfixturevalue("postgres_url"))
    else:
        store = await Store.open(tmp_path / "lightcone.db")
    await store.seed([("paris", "Paris", 500)], "corpus-1")
    try:
        yield store
    finally:
        await store.close()


async def row(store: Store, key: str) -> TermRow | None:
    return next((r for r in await store.terms() if r.key == key), None)


# --- one id, one query ------------------------------------------------------------------------


async def test_a_repeated_id_with_the_same_query_is_acknowledged_with_its_first_version(
    store: Store,
) -> None:
    first = await store.log_searches([search("a", "Lyon")])
    again = await store.log_searches([search("a", "Lyon", source="elsewhere")])
    assert first.acks == again.acks == [first.version]
    assert again.version is None and again.fresh == 0
    assert (await row(store, "lyon")) == TermRow("lyon", "Lyon", 0, 1, False, 1)


async def test_a_repeated_id_with_another_query_is_a_conflict_and_writes_nothing(
    store: Store,
) -> None:
    """The attack of issue 9 (finding 7): the second query was acknowledged and dropped."""
    first = await store.log_searches([search("a", "Lyon")])
    head = await store.version()
    again = await store.log_searches([search("a", "Nice")])
    assert again.acks == [None] and again.version is None
    assert await store.version() == head
    assert await row(store, "nice") is None
    assert first.acks == [head]


async def test_a_conflict_inside_one_batch_refuses_only_the_later_query(store: Store) -> None:
    result = await store.log_searches(
        [search("a", "Lyon"), search("a", "Lyon"), search("a", "Nice"), search("b", "Nice")]
    )
    v = result.version
    assert result.acks == [v, v, None, v] and result.fresh == 2
    lyon = await row(store, "lyon")
    assert lyon is not None and lyon.searches == 1


async def test_the_core_acknowledges_a_conflict_with_its_code(store: Store) -> None:
    async with running(store) as node:
        peer = await node.connect(Hello("syd", "syd-1", -1))
        suggest = suggest_of(node)
        await suggest.log_searches(peer, Searches([SearchItem("a", "Lyon", "s1")]))
        acks = await suggest.log_searches(
            peer, Searches([SearchItem("a", "Nice", "s1"), SearchItem("b", " ", "s1")])
        )
    assert [(a.id, a.version, a.error) for a in acks.acks] == [
        ("b", None, "invalid_search"),
        ("a", None, ACK_ID_CONFLICT),
    ]


# --- distinct sources ------------------------------------------------------------------------


async def test_a_new_term_is_served_only_after_min_sources_distinct_sources(store: Store) -> None:
    """Many searches from one source never make a suggestion; the third source does."""
    for n in range(10):
        await store.log_searches([search(f"same-{n}", "Junk Town", source="one")])
    junk = await row(store, "junktown")
    assert junk is not None and (junk.searches, junk.sources) == (10, 1)
    assert RULES.serve(junk) is None
    await store.log_searches([search("x2", "Junk Town", source="two")])
    assert RULES.serve(await row(store, "junktown")) is None  # type: ignore[arg-type]
    await store.log_searches([search("x3", "Junk Town", source="three")])
    served = await row(store, "junktown")
    assert served is not None and served.sources == 3
    assert RULES.serve(served) == Entry("junktown", "Junk Town", 120)


async def test_sources_are_capped_per_term_and_empty_ones_count_for_none(store: Store) -> None:
    many = [search(f"id-{n}", "Busy", source=f"src-{n}") for n in range(MAX_SOURCES_COUNTED + 5)]
    await store.log_searches([*many, search("anon", "Quiet", source="")])
    assert (await row(store, "busy")).sources == MAX_SOURCES_COUNTED  # type: ignore[union-attr]
    assert (await row(store, "quiet")).sources == 0  # type: ignore[union-attr]
    assert (await store.counts())["term_sources"] == MAX_SOURCES_COUNTED


async def test_sources_are_not_kept_for_terms_with_a_base_weight(store: Store) -> None:
    await store.log_searches([search(f"p{n}", "Paris", source=f"s{n}") for n in range(3)])
    paris = await row(store, "paris")
    assert paris is not None and (paris.searches, paris.sources) == (3, 0)
    assert RULES.serve(paris) == Entry("paris", "Paris", 530)


def test_rules_need_both_thresholds_for_a_term_with_no_base_weight() -> None:
    assert RULES.serve(TermRow("x", "X", 0, 5, False, 2)) is None
    assert RULES.serve(TermRow("x", "X", 0, 3, False, 3)) == Entry("x", "X", 30)
    assert RULES.serve(TermRow("x", "X", 7, 0, False, 0)) == Entry("x", "X", 7)
    assert Rules(min_sources=0).serve(TermRow("x", "X", 0, 1, False, 0)) == Entry("x", "X", 1000)
    assert RULES.disposable(TermRow("x", "X", 0, 5, False, 2))
    assert not RULES.disposable(TermRow("x", "X", 0, 3, False, 3))  # served
    assert not RULES.disposable(TermRow("x", "X", 0, 1, True, 0))  # taken down
    assert not RULES.disposable(TermRow("x", "X", 9, 0, False, 0))  # corpus


# --- pruning ---------------------------------------------------------------------------------


async def test_pruning_deletes_old_searches_and_the_junk_they_leave_only(store: Store) -> None:
    """Old searches go; a never-served term with none left goes; served, taken-down and
    recently searched terms stay; no version is produced (served data is unchanged)."""
    old, recent = T0, T0 + 8 * DAY
    await store.log_searches([search("j1", "Junk Old")], now=old)
    await store.log_searches(
        [search(f"s{n}", "Popular", source=f"src{n}") for n in range(3)], now=old
    )
    await store.log_searches([search("p1", "Paris")], now=old)
    await store.log_searches([search("k1", "Kept Junk")], now=old)
    await store.log_searches([search("k2", "Kept Junk", source="s2")], now=recent)
    await store.log_searches([search("b1", "Banned")], now=old)
    await store.block_term("banned", "Banned")
    head = await store.version()
    served_before = {r.key for r in await store.terms() if RULES.serve(r)}

    done = await store.prune(recent - 7 * DAY, 1000, RULES.disposable)

    assert (done.searches, done.terms) == (7, 1)
    keys = {r.key for r in await store.terms()}
    assert "junkold" not in keys
    assert {"popular", "paris", "keptjunk", "banned"} <= keys
    assert {r.key for r in await store.terms() if RULES.serve(r)} == served_before
    assert await store.version() == head
    assert (await store.counts())["searches"] == 1


async def test_pruned_ids_are_new_again_after_the_retention(store: Store) -> None:
    """The documented limit of idempotency: an id is recognised for the retention only."""
    first = await store.log_searches([search("a", "Lyon")], now=T0)
    await store.prune(T0 + 1, 1000, RULES.disposable)
    again = await store.log_searches([search("a", "Nice")], now=T0 + 2)
    assert again.version is not None and again.version > first.version  # type: ignore[operator]


async def test_pruning_runs_in_bounded_passes_until_done(store: Store) -> None:
    await store.log_searches([search(f"id{n}", f"Junk {n}") for n in range(25)], now=T0)
    async with running(store) as node:
        done = await suggest_of(node).prune(retention_s=DAY, batch=10, now=T0 + 2 * DAY)
    assert (done.searches, done.terms) == (25, 25)
    assert (await store.counts())["searches"] == 0
    assert (await store.counts())["term_sources"] == 0
    assert (await store.counts())["terms"] == 1  # Paris


async def test_migration_adds_sources_to_an_existing_database(tmp_path: Path) -> None:
    """A database made by migration 1 keeps its rows. A term its searches alone made served
    stays served: its sources are unknown, not zero, and count as the most there can be."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.executescript(MIGRATIONS[0].sqlite + "PRAGMA user_version = 1;")
        db.execute("INSERT INTO terms VALUES ('lyon', 'Lyon', 0, 4, 0, 1)")
        db.execute("INSERT INTO terms VALUES ('paris', 'Paris', 100, 0, 0, 1)")
        db.execute("INSERT INTO searches VALUES ('a', 'lyon', 'Lyon', 'syd', 1, 0)")
    store = await Store.open(path)
    try:
        lyon = TermRow("lyon", "Lyon", 0, 4, False, MAX_SOURCES_COUNTED)
        rows = sorted(await store.terms(), key=lambda row: row.key)
        assert rows == [lyon, TermRow("paris", "Paris", 100, 0, False, 0)]
        assert RULES.serve(lyon) is not None and not RULES.disposable(lyon)
        assert (await store.log_searches([search("a", "Lyon")])).acks == [1]
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    path.with_name("old.db-wal").unlink(missing_ok=True)


# --- epochs ----------------------------------------------------------------------------------


async def test_new_serving_rules_rotate_the_epoch_once(store: Store) -> None:
    """Rules that change what is served (a new source threshold, say) change it without a
    new version: a new epoch makes every edge load a snapshot instead of keeping its data."""
    first = await store.note_rules(RULES.fingerprint())
    assert first is not None and await store.epoch() == first
    assert await store.note_rules(RULES.fingerprint()) is None  # a restart: nothing to do
    stricter = Rules(search_boost=10, min_searches=1, min_sources=5)
    second = await store.note_rules(stricter.fingerprint())
    assert second not in (None, first) and await store.epoch() == second


async def test_a_restore_name_rotates_the_epoch_once(store: Store) -> None:
    epoch = await store.epoch()
    assert await store.note_restore("") is None
    rotated = await store.note_restore("snap-1")
    assert rotated is not None and rotated != epoch and await store.epoch() == rotated
    assert await store.note_restore("snap-1") is None  # a later restart: nothing to do
    assert await store.epoch() == rotated
    again = await store.note_restore("snap-2")
    assert again not in (None, rotated)


async def test_an_edge_ahead_of_the_head_rotates_the_epoch_for_every_edge(store: Store) -> None:
    """The safety net: hello with this epoch and a version above the database's head."""
    async with running(store) as node:
        head = suggest_of(node).catalog.version
        old = node.epoch
        behind = await node.connect(Hello("syd", "syd-1", head, old))
        assert behind.queue.qsize() == 2  # flags, heartbeat: it holds the head
        ahead = await node.connect(Hello("lhr", "lhr-1", head + 50, old))
        assert node.epoch != old
        for peer in (behind, ahead):
            first = decode(peer.queue.get_nowait() or b"")
            while not isinstance(first, Snapshot):
                first = decode(peer.queue.get_nowait() or b"")
            assert first.epoch == node.epoch and first.version == head
        await asyncio.gather(*node._storing)
        assert await store.epoch() == node.epoch
        assert rotations(node) == 1
        # An edge of the new epoch at the head is in step: no rotation, nothing to catch up.
        await node.connect(Hello("sin", "sin-1", head, node.epoch))
        assert rotations(node) == 1


# --- what another node (or a lost answer) committed ---------------------------------------------


async def test_a_version_committed_past_the_node_goes_out_with_the_next_delta(
    store: Store,
) -> None:
    """A write this node did not make (another core node's, or one whose answer was lost
    with the store's connection) is in the term log: the next mark the node follows sends
    it with the node's own."""
    async with running(store) as node:
        peer = await node.connect(Hello("syd", "syd-1", -1))
        other, _ = await store.upsert_term("ghost town", "Ghost Town", 40)
        suggest = suggest_of(node)
        version = await suggest.upsert_term("lyon", "Lyon", 50)
        assert version == other + 1
        assert await node.publish() == version
        assert suggest.catalog.get("ghost town") == Entry("ghost town", "Ghost Town", 40)
        frames = []
        while not peer.queue.empty():
            frames.append(decode(peer.queue.get_nowait() or b""))
    (delta,) = [f for f in frames if isinstance(f, Delta)]
    assert delta.to_version == version
    assert {t.key for t in delta.terms} == {"ghost town", "lyon"}


def rotations(node: CoreNode) -> float | None:
    return node.metrics.registry.get_sample_value("lightcone_epoch_rotations_total")


@contextlib.asynccontextmanager
async def running(store: Store) -> AsyncIterator[CoreNode]:
    """A core node on ``store`` (seeded already), serving by :data:`RULES`."""
    settings = CoreSettings(
        publish_delay_ms=0,
        compact_after=10_000,
        search_boost=RULES.search_boost,
        min_searches=RULES.min_searches,
        min_sources=RULES.min_sources,
    )
    node = CoreNode(settings, CoreMetrics(), FEATURES)
    await node.start(store)
    try:
        yield node
    finally:
        await node.stop()


def test_a_retention_shorter_than_the_resend_window_is_refused() -> None:
    """Ids must stay idempotent while a client may still resend them (24 hours)."""
    with pytest.raises(ConfigError, match="LIGHTCONE_SEARCH_RETENTION_S"):
        from_environ(CoreSettings, {"LIGHTCONE_SEARCH_RETENTION_S": "3600"})
    assert from_environ(CoreSettings, {"LIGHTCONE_SEARCH_RETENTION_S": "86400"})


async def test_migration_makes_flags_level_shaped(tmp_path: Path) -> None:
    """A database from before levels keeps its flags: stale_ok becomes tolerant or strict.
    A row a build from before levels writes later (stale_ok alone) is read from stale_ok."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        old = MIGRATIONS[0].sqlite + MIGRATIONS[1].sqlite
        db.executescript(old + "PRAGMA user_version = 2;")
        db.execute("INSERT INTO flags VALUES ('suggest', 0), ('cursors', 1)")
    store = await Store.open(path)
    try:
        assert await store.flags() == {"suggest": Level("strict"), "cursors": Level("tolerant")}
        await store.set_flag("suggest", Level("tolerant"))
        async with store._engine.writing() as db:  # an older build's write
            await db.execute("UPDATE flags SET stale_ok = 0 WHERE feature = 'suggest'")
        assert (await store.flags())["suggest"] == Level("strict")  # an older build's write
    finally:
        await store.close()
    path.with_name("old.db-wal").unlink(missing_ok=True)


async def test_a_core_node_claims_the_store_unless_another_holds_a_live_lease(
    store: Store,
) -> None:
    """A second node (another host, or a live process here) is refused while its lease
    holds; a lease that expired, or of a process gone from this host, is taken over."""

    def lease(node: str, host: str, pid: int, until: float) -> CoreNodeLease:
        return CoreNodeLease(f"{host}:{pid}", host, pid, node, until)

    alive = {11, 22}
    first = lease("iad", "host-a", 11, T0 + 15)
    assert await store.claim_node(first, T0, alive.__contains__) == []
    other_host = lease("iad", "host-b", 33, T0 + 15)
    assert await store.claim_node(other_host, T0 + 1, alive.__contains__) == [first]
    same_host_live = lease("iad", "host-a", 22, T0 + 16)
    assert await store.claim_node(same_host_live, T0 + 1, alive.__contains__) == [first]
    restarted = lease("iad", "host-a", 44, T0 + 16)  # 11 died: a restart on its host
    assert await store.claim_node(restarted, T0 + 2, {44}.__contains__) == []
    assert await store.claim_node(other_host, T0 + 20, alive.__contains__) == []  # expired
    await store.release_node(other_host.node_id)
    assert await store.claim_node(first, T0 + 21, alive.__contains__) == []


async def test_a_store_closed_under_a_write_in_flight_closes_after_it(tmp_path: Path) -> None:
    """Closing waits for the write transaction in progress. It used to close under it:
    SQLite kept the transaction of a connection closed while one of its statements was still
    referenced (here by the writer's traceback, kept by its task, as by a logged crash), and
    its write lock with it, so a core restarted on the file failed to claim it (``database
    is locked`` after the busy timeout)."""
    path = tmp_path / "lightcone.db"
    store = await Store.open(path)
    began = asyncio.Event()

    async def mark() -> None:  # as Store.mark: a statement whose rows are read back
        async with store._engine.writing() as db:
            began.set()
            await db.fetch("INSERT INTO marks (version) VALUES (7) RETURNING version")

    writer = asyncio.create_task(mark())
    await began.wait()  # its statement is queued: the close comes after it
    await store.close()
    await asyncio.wait([writer])
    again = await Store.open(path)
    try:
        lease = CoreNodeLease("host-a:11", "host-a", 11, "iad", T0 + 15)
        assert await again.claim_node(lease, T0, {11}.__contains__) == []
        assert writer.exception() is None  # it committed, then the store closed
        assert await again.last_mark() == 7
    finally:
        await again.close()


# --- other names -------------------------------------------------------------------------------


async def test_other_names_are_stored_logged_and_kept_unless_given(store: Store) -> None:
    """Names go in with a seed and an upsert, reach the term log (the stream is made from it),
    stay when an upsert leaves them out and go when it gives none."""
    assert (await row(store, "paris")) == TermRow("paris", "Paris", 500, 0, False)
    version, written = await store.upsert_term("lyon", "Lyon", 7, ("Lugdunum", "Лион"))
    assert written.names == ("Lugdunum", "Лион")
    assert (await store.logged(version - 1, version))[0][1].names == ("Lugdunum", "Лион")
    _, kept = await store.upsert_term("lyon", "Lyon", 8)
    assert kept.names == ("Lugdunum", "Лион")
    _, blocked = await store.block_term("lyon", "Lyon")
    assert blocked.names == ("Lugdunum", "Лион")
    _, cleared = await store.upsert_term("lyon", "Lyon", 9, ())
    assert cleared.names == ()
    assert (await row(store, "lyon")) == TermRow("lyon", "Lyon", 9, 0, False)


async def test_a_seed_stores_the_corpus_names(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "named.db")
    try:
        await store.seed(
            [("mumbai", "Mumbai", 9), ("pune", "Pune", 3)], "c", {"mumbai": ("Bombay",)}
        )
        rows = {r.key: r.names for r in await store.terms()}
        assert rows == {"mumbai": ("Bombay",), "pune": ()}
    finally:
        await store.close()
