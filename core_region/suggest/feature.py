"""Search suggestions at the core: the catalog, its published stream, and the writes.

The shell around three pure pieces: the :class:`~core_region.suggest.catalog.Catalog` (what
is served), the :class:`~core_region.suggest.stream.Stream` (what was published) and the store
(what is durable). It registers ``searches`` from edges (each acknowledged with
``search_acks``), sends edges a snapshot and deltas, compacts the stream into a new snapshot
every ``LIGHTCONE_COMPACT_AFTER`` changes, prunes old searches, and serves the admin routes
under ``/admin/terms``.

The database decides what is sent, so every core node on one store sends the same bytes: a
write only commits (its term rows go to the store's term log with its version); the catalog
changes when the node *follows a mark* (:meth:`SuggestFeature.follow`): the log's rows up to
the mark, applied version by version, make one delta. A compaction happens at the first mark
after which ``LIGHTCONE_COMPACT_AFTER`` changes were applied since the base, which every node
computes alike; it is built before the next mark is followed (deltas wait that long: about
0.3 s at 100,000 terms) and stored, and a node that starts loads the newest stored base and
follows the marks after it. The first base of a database is made under the version row's
lock, from every term at the head (:meth:`core_region.store.Store.first_base`).

No poison pills: a term change or a snapshot entry that cannot be encoded is dropped alone
(logged, ``lightcone_items_dropped_total{where=...}``) and the rest goes out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from array import array
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute

from core_region.features import Feature
from core_region.memory import release_memory, tune_malloc
from core_region.settings import CoreSettings
from core_region.store import LoggedSearch, Pruned, Store
from core_region.suggest import admin, corpus
from core_region.suggest.catalog import Catalog, Entries, Rules, TermRow
from core_region.suggest.stream import Stream
from shared import snapshot
from shared.config import ConfigError
from shared.errors import BadRequest, StoreUnavailable
from shared.folding import FOLD_VERSION
from shared.protocol import (
    ACK_ID_CONFLICT,
    ACK_INVALID,
    ACK_STORE_UNAVAILABLE,
    MAX_SOURCE_CHARS,
    AckItem,
    Delta,
    Level,
    SearchAcks,
    Searches,
    Snapshot,
    decode,
    encode,
)
from shared.text import MAX_ID_CHARS, clean, term as text_term

if TYPE_CHECKING:
    from core_region.node import CoreNode, EdgePeer

logger = logging.getLogger(__name__)


class SuggestFeature(Feature):
    """The suggestion feature of the core (registered as ``suggest``)."""

    name = "suggest"
    link_messages = (Searches,)
    has_data = True
    legacy_version = True
    task = "pruning"

    def __init__(self, node: CoreNode) -> None:
        self.settings = node.settings
        super().__init__(node)
        self.metrics = node.metrics
        self.rules = rules_of(self.settings)
        self.catalog: Catalog = None  # type: ignore[assignment]  # loaded by start()
        self.stream = Stream()
        self.followed = -1
        """The last mark whose changes were sent."""
        self._seeded: tuple[int, Entries] | None = None
        """The corpus this node seeded at a version, while it is all the database holds."""
        self._made: Catalog | None = None
        """The catalog of the first base snapshot this node made."""
        self._prebuilt: tuple[Catalog, bytes] | None = None
        """The first base snapshot built while the corpus was seeded, and its catalog."""

    def default_level(self) -> Level:
        return Level.of(self.settings.suggest_stale_ok)

    # --- life --------------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Seed the corpus; refuse to join other live nodes that build another stream; a
        change of serving rules starts a new epoch (the served set changes without a new
        version, so edges at the head must load a snapshot).

        Raises:
            ConfigError: other core nodes on the store publish with other settings.
        """
        await self._seed()
        store = self.node.store
        await join(store, self.stream_key(), self.node.node_id)
        if await store.note_rules(self.rules.fingerprint()):
            logger.info(
                "serving rules are new (%s): new epoch, edges load a snapshot",
                self.rules.fingerprint(),
            )

    def stream_key(self) -> str:
        return stream_key(self.settings)

    async def _seed(self) -> None:
        settings, store = self.settings, self.node.store
        seeded = await store.corpus_id()
        path = settings.corpus or corpus.default_path()
        if seeded is not None and settings.corpus is None:
            return
        columns, corpus_id = await asyncio.to_thread(corpus.columns, path)
        if seeded is None:
            tune_malloc(len(columns))
            # The first base is built while the rows are written (the writes wait mostly on
            # SQLite and the disk, the build on Python: two cores are used), at the version
            # the seed takes unless another write comes first; kept only if none did.
            guess = await store.version() + 1
            building = asyncio.ensure_future(asyncio.to_thread(self._snapshot, columns, guess))
            try:
                done = await store.seed(
                    zip(columns.keys, columns.terms, columns.weights, strict=True),
                    corpus_id,
                    columns.names,
                )
            finally:
                made = await _settled(building)
            if done.only:
                self._seeded = (done.version, columns)
                if made is not None and made[0].version == done.version:
                    self._prebuilt = made
            logger.info("seeded %d terms from %s (v%d)", len(columns), path, done.version)
        elif seeded != corpus_id:
            fresh = "--store database" if settings.store else "--data-dir"
            raise ConfigError(
                f"the database in {store.where} was seeded from another corpus than "
                f"{path}. Use a fresh {fresh} to serve a different corpus."
            )

    async def start(self) -> None:
        """Load the newest base snapshot (making the database's first if it has none: then
        the catalog built with it is the one served)."""
        store = self.node.store
        base = await store.first_base(self.stream_key(), self._first_base)
        made, self._made = self._made, None
        self._seeded = self._prebuilt = None
        if made is not None and made.version == base[0]:
            self._serve(made, base[1])
        else:
            await self._load(base)
        await asyncio.to_thread(release_memory, len(self.catalog))

    async def _first_base(
        self, version: int, read: Callable[[], Awaitable[list[TermRow]]]
    ) -> bytes:
        """The first base snapshot, at ``version``: from the corpus this node just seeded if
        nothing was committed since (its rows are the only terms, served as they are: a
        corpus term passed the door with a positive weight), else from every stored row."""
        prebuilt, self._prebuilt = self._prebuilt, None
        if prebuilt is not None and prebuilt[0].version == version:
            self._seeded = None
            self._made, blob = prebuilt
            return blob
        if self._seeded is not None and self._seeded[0] == version:
            columns = self._seeded[1]
        else:
            rows = await read()
            columns = await asyncio.to_thread(self._served, rows, version)
            del rows
        self._seeded = None
        self._made, blob = await asyncio.to_thread(self._snapshot, columns, version)
        return blob

    def _served(self, rows: list[TermRow], version: int) -> Entries:
        return self._columns(Catalog(rows, version=version, rules=self.rules))

    def _columns(self, catalog: Catalog) -> Entries:
        """The catalog's entries for a snapshot; a changed one that cannot be encoded is
        dropped alone (the base's were checked when it was built)."""
        changed = catalog.changed()
        kept = {e.key for e in self.metrics.drops.keep("snapshot", changed, _check_entry)}
        return catalog.columns(without={e.key for e in changed} - kept)

    def _snapshot(self, columns: Entries, version: int) -> tuple[Catalog, bytes]:
        """A snapshot of ``columns`` at ``version``, and the catalog serving it."""
        hot, blob = self._build(columns, version)
        catalog = Catalog.of_snapshot(snapshot.parse(blob), rules=self.rules, hot=hot)
        return catalog, blob

    async def _load(self, base: tuple[int, bytes]) -> None:
        """Serve the base snapshot ``(version, data)`` from the store: the catalog is made
        from its entries alone, so every node that loads it holds the same state."""
        _, blob = base
        data = await asyncio.to_thread(snapshot.parse, blob)
        self._serve(await asyncio.to_thread(Catalog.of_snapshot, data, rules=self.rules), blob)

    def _serve(self, catalog: Catalog, blob: bytes) -> None:
        """Serve ``catalog``, whose base snapshot is ``blob``, and send it to every edge."""
        version = catalog.version
        self.catalog = catalog
        self.followed = version
        self.stream = Stream()
        self.stream.rebase(version, encode(Snapshot(version, blob, self.node.epoch)))
        self.metrics.snapshot_bytes.set(len(blob))
        logger.info("serving snapshot v%d: %d terms, %d bytes", version, len(catalog), len(blob))
        for edge in self.node.edges_with(self):
            for frame in self.stream.catch_up(-1):
                edge.send(frame)

    async def run(self) -> None:
        """Prune now and every ``prune_every_s`` (supervised: a failed pass is logged and
        counted, and the task restarts after a backoff; while the store is unreachable a
        pass is skipped with a warning, not a crash loop)."""
        settings = self.settings
        while True:
            try:
                done = await self.prune(
                    retention_s=settings.search_retention_s,
                    batch=settings.prune_batch,
                    now=time.time(),
                )
            except StoreUnavailable as exc:
                logger.warning("pruning skipped until the next pass: %s", exc)
            else:
                if done.searches:
                    logger.info("pruned %d searches, %d terms", done.searches, done.terms)
            await asyncio.sleep(settings.prune_every_s)

    def ready(self) -> bool:
        return self.stream.base_version is not None

    async def status(self) -> dict[str, Any]:
        counts = await self.node.store.counts()
        return {
            "snapshot_version": self.stream.base_version,
            "served_terms": len(self.catalog) if self.catalog is not None else 0,
            "stored_terms": counts["terms"],
            "searches": counts["searches"],
        }

    def routes(self) -> list[BaseRoute]:
        return admin.routes(self)

    def openapi_paths(self) -> dict[str, Any]:
        return admin.openapi_paths()

    # --- snapshots ---------------------------------------------------------------------------

    async def rebase(self) -> None:
        """Make a snapshot of the catalog's version the stream's base, the catalog's base,
        and store it (built off the event loop; the node follows no mark meanwhile)."""
        version = self.catalog.version
        blob = await asyncio.to_thread(self._compact)
        previous = self.stream.base_version
        self.stream.rebase(version, encode(Snapshot(version, blob, self.node.epoch)))
        self.metrics.snapshot_bytes.set(len(blob))
        logger.info(
            "published snapshot v%d: %d terms, %d bytes", version, len(self.catalog), len(blob)
        )
        for edge in self.node.edges_with(self):
            for frame in self.stream.catch_up(-1):
                edge.send(frame)
        try:
            await self.node.store.save_base(
                version, self.stream_key(), blob, keep_after=previous or 0
            )
        except StoreUnavailable as exc:  # another node stores it, or this one at the next
            logger.warning("could not store snapshot v%d: %s", version, exc)

    def _compact(self) -> bytes:
        """Snapshot the catalog at its version and make that its base; the snapshot's data.

        At most the catalog's entries as columns, the snapshot being built and the new base
        are held at once (about 250 MB more than the catalog at a million terms)."""
        catalog = self.catalog
        hot, blob = self._build(self._columns(catalog), catalog.version)
        catalog.adopt(snapshot.parse(blob), hot)
        release_memory(len(catalog))
        return blob

    def _build(self, columns: Entries, version: int) -> tuple[dict[str, list[str]], bytes]:
        """The deep hot lists and the snapshot of ``columns`` at ``version``."""
        settings = self.settings
        hot = snapshot.hot_lists(
            columns, threshold=settings.hot_threshold, depth=2 * settings.max_limit
        )
        release_memory(len(columns))  # what the walk freed, before the build needs as much
        blob = snapshot.build(
            columns,
            version=version,
            hot=hot,
            hot_threshold=settings.hot_threshold,
            depth=settings.max_limit,
            names=columns.names,
        )
        return hot, blob

    def epoch_changed(self) -> None:
        """The base snapshot again, under the node's new epoch."""
        base = decode(self.stream.catch_up(-1)[0])
        assert isinstance(base, Snapshot)
        self.stream.rebase(base.version, encode(Snapshot(base.version, base.data, self.node.epoch)))

    def catch_up(self, have: int, base: int | None = None) -> list[bytes]:
        return self.stream.catch_up(have, base)

    # --- publishing ------------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self.catalog.published if self.catalog is not None else -1

    async def follow(self, after: int, marks: list[int]) -> None:
        """Send one delta per mark in ``marks`` (each after the last), from the term log's
        rows after ``after``; compact where it is due (see the module docstring)."""
        store = self.node.store
        after = max(after, self.followed)  # a follow that failed half-way resumes here
        oldest = await store.oldest_base()
        if oldest is not None and after < oldest:
            # This node fell behind what the log keeps: start again from the newest base.
            base = await store.base(self.stream_key())
            if base is not None:
                logger.warning("fell behind the term log (at v%d): reloading", after)
                await self._load(base)
                after = base[0]
        marks = [m for m in marks if m > after]
        if not marks:
            return
        rows = await store.logged(after, marks[-1])
        i = 0
        for mark in marks:
            while i < len(rows) and rows[i][0] <= mark:
                version, j = rows[i][0], i
                while j < len(rows) and rows[j][0] == version:
                    j += 1
                self.catalog.apply([row for _, row in rows[i:j]], version)
                i = j
            self._send_delta()
            self.followed = mark
            if self.catalog.changes_since_rebase >= self.settings.compact_after:
                try:
                    await self.rebase()
                except Exception:  # no poison pill: tried again at the next mark
                    logger.exception("compaction at v%d failed", self.catalog.version)
                    self.metrics.task_crashes.labels("compaction").inc()

    def _send_delta(self) -> None:
        """Send what the catalog has pending as one delta to every edge."""
        delta = self.catalog.take_delta()
        if delta is None:
            return
        frame = self._encode_delta(delta)
        self.stream.append(delta.from_version, delta.to_version, frame)
        self.metrics.deltas.inc()
        self.node.broadcast(frame, self)

    def _encode_delta(self, delta: Delta) -> bytes:
        """``delta`` encoded; term changes and hot lists that cannot be are dropped alone."""
        try:
            return encode(delta)
        except Exception:
            terms = self.metrics.drops.keep(
                "delta", delta.terms, lambda t: encode(Delta(0, 0, [t]))
            )
            hot = dict(
                self.metrics.drops.keep(
                    "delta", delta.hot.items(), lambda h: encode(Delta(0, 0, [], dict([h])))
                )
            )
            return encode(Delta(delta.from_version, delta.to_version, terms, hot))

    # --- writes ----------------------------------------------------------------------------

    async def on_link(self, peer: EdgePeer, message: Searches) -> None:
        # A batch larger than ours (an edge configured differently) is committed in chunks:
        # refusing it would leave those searches in the edge's outbox for ever.
        size = self.settings.max_search_batch
        for start in range(0, len(message.searches), size):
            chunk = Searches(message.searches[start : start + size])
            peer.send(encode(await self.log_searches(peer, chunk)))

    async def log_searches(self, peer: EdgePeer, batch: Searches) -> SearchAcks:
        """Commit a batch of searches from ``peer``; acknowledge each id."""
        acks: list[AckItem] = []
        valid: list[LoggedSearch] = []
        for item in batch.searches:
            try:  # the same door as at the edge: a core trusts no edge's checks
                clean(item.id, field="id", max_chars=MAX_ID_CHARS)
                term, key = text_term(item.q, field="q")
            except BadRequest:
                term = key = ""
            if not key or not item.id:
                acks.append(AckItem(item.id, None, ACK_INVALID))
            else:
                source = item.source if len(item.source) <= MAX_SOURCE_CHARS else ""
                valid.append(LoggedSearch(item.id, key, term, item.q, peer.region, source))
        if valid:
            acks += await self._commit(valid)
        return SearchAcks(acks)

    async def _commit(self, valid: list[LoggedSearch]) -> list[AckItem]:
        """Commit ``valid`` searches; while the store is unreachable each is acknowledged as
        not committed yet (``store_unavailable``): the edge keeps it and sends it again."""
        started = time.perf_counter()
        try:
            result = await self.node.store.log_searches(valid)
        except StoreUnavailable as exc:
            logger.warning("%d searches wait at their edge: %s", len(valid), exc)
            return [AckItem(s.id, None, ACK_STORE_UNAVAILABLE) for s in valid]
        self.metrics.write_seconds.observe(time.perf_counter() - started)
        if result.version is not None:
            self.node.committed_at(result.version)
            self.metrics.searches.inc(result.fresh)
        return [
            AckItem(s.id, None, ACK_ID_CONFLICT) if v is None else AckItem(s.id, v)
            for s, v in zip(valid, result.acks, strict=True)
        ]

    async def upsert_term(
        self, key: str, term: str, weight: int, names: tuple[str, ...] | None = None
    ) -> int:
        """Admin: set a term's weight, and its other names if given (``None`` keeps them);
        returns the version that carries it (published within the publish delay)."""
        version, _ = await self.node.store.upsert_term(key, term, weight, names)
        self.node.committed_at(version)
        return version

    async def block_term(self, key: str, term: str) -> int:
        """Admin: take a term down; returns the version from which it is no longer served."""
        version, _ = await self.node.store.block_term(key, term)
        self.node.committed_at(version)
        return version

    async def prune(self, *, retention_s: float, batch: int, now: float) -> Pruned:
        """Delete searches logged more than ``retention_s`` before ``now`` and the never-served
        terms they leave, in transactions of at most ``batch`` searches; returns the totals.

        Served data does not change (only terms the rules do not serve are deleted), so no
        version is produced and edges are not told.
        """
        searches = terms = 0
        while True:
            done = await self.node.store.prune(now - retention_s, batch, self.rules.disposable)
            searches, terms = searches + done.searches, terms + done.terms
            self.metrics.pruned.labels("searches").inc(done.searches)
            self.metrics.pruned.labels("terms").inc(done.terms)
            if done.searches < batch:
                return Pruned(searches, terms)


async def _settled(building: asyncio.Future[tuple[Catalog, bytes]]) -> tuple[Catalog, bytes] | None:
    """The result of a build that may have failed (``None``: it is made again later)."""
    try:
        return await building
    except Exception:
        logger.exception("building the first snapshot beside the seed failed")
        return None


def rules_of(settings: CoreSettings) -> Rules:
    """The serving rules ``settings`` give."""
    return Rules(
        search_boost=settings.search_boost,
        min_searches=settings.min_searches,
        min_sources=settings.min_sources,
    )


def stream_key(settings: CoreSettings) -> str:
    """What decides the stream's bytes besides the data: the serving rules, the hot lists'
    threshold and depth, when compactions happen, the snapshot format and the fold that made
    the keys. Stored with each base snapshot: a node with another key builds its own first
    base (alone) or refuses to start (:func:`join`)."""
    return (
        f"{rules_of(settings).fingerprint()} hot={settings.hot_threshold} "
        f"depth={settings.max_limit} compact={settings.compact_after} "
        f"snapshot={snapshot.FORMAT} fold={FOLD_VERSION}"
    )


async def join(store: Store, key: str, node_id: str) -> None:
    """Refuse to publish beside live core nodes that build another stream (``key``).

    Raises:
        ConfigError: naming the settings that must agree.
    """
    stored = await store.newest_base_key()
    if stored is None or stored == key:
        return
    others = [n for n in await store.live_nodes(time.time()) if n.node_id != node_id]
    if others:
        raise ConfigError(
            f"the core nodes on {store.where} ({others[0].node_id}, ...) publish with "
            f"{stored!r}, this one with {key!r}: every node on one store needs the same "
            "LIGHTCONE_SEARCH_BOOST, MIN_SEARCHES, MIN_SOURCES, HOT_THRESHOLD, MAX_LIMIT and "
            "COMPACT_AFTER (each builds the same stream)."
        )


def _check_entry(entry: snapshot.Entry) -> None:
    """Raise if ``entry`` cannot go into a snapshot (see :func:`shared.snapshot.build`)."""
    entry.key.encode()
    entry.term.encode()
    if "\n" in entry.term:  # the snapshot joins the display forms with new lines
        raise ValueError("a display form with a new line")
    array("q", [entry.weight])
