"""Search suggestions at the edge: prefix completions from a local replica, and logged searches.

The feature registers ``suggest`` and ``search`` from clients (and ``GET /suggest``,
``POST /search``), and ``snapshot``, ``delta`` and ``search_acks`` from the core. It applies
its level (docs/protocol.md §3) or the weaker one a read asks for: tolerant answers from the
local index at once; session too, once the data has reached the read's bookmark; bounded
while the data is provably younger than its bound (:meth:`Freshness.bound_left_ms`); strict
and the rest after one round trip to the core. It keeps read-your-writes (``min_version``, a
bookmark), gives every answer and committed ack a bookmark, and raises the errors of
:mod:`shared.errors`, which each transport renders its own way. A read the local data answers
is answered inline; only one that waits for the core runs as a task.

The replica's logic (snapshot, delta, gap, ack) is the pure
:class:`~edge_node.suggest.replica.Replica`; this is its shell: it parses snapshots off the
event loop, asks the link to resync after a gap, sends the outbox's searches up while the
link is up, and resolves the writes waiting for their ack.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute

from edge_node import memory
from edge_node.features import ClientHandler, Feature
from edge_node.frames import by_items, frames, splits
from edge_node.suggest import routes
from edge_node.suggest.prepared import (
    PreparedItems,
    item as _item,
    suggestions_json,
    suggestions_msgpack,
)
from edge_node.suggest.replica import Outcome, Replica, Step
from edge_node.suggest.sources import Sources
from shared import snapshot
from shared.errors import BadRequest, Unavailable
from shared.folding import fold
from shared.protocol import (
    BOUNDED,
    STRICT,
    TOLERANT,
    Delta,
    Level,
    Message,
    RequestId,
    Search,
    SearchAck,
    SearchAcks,
    Searches,
    SearchItem,
    Snapshot,
    Suggest,
    make_bookmark,
    read_bookmark,
)
from shared.text import MAX_ID_CHARS, MAX_KEY_CHARS, clean, term

if TYPE_CHECKING:
    from edge_node.freshness import Freshness
    from edge_node.link import Link, Session
    from edge_node.node import EdgeNode
    from edge_node.ws import ClientSocket

logger = logging.getLogger(__name__)

splits(Searches, by_items("searches", Searches))  # a long batch goes up in several frames

STORE_RETRY_S = 1.0
"""Wait before sending again searches the core kept back because its store was down (each
such batch costs the core one failed write attempt at most this often)."""

ANSWER_CACHE_ENTRIES = 10_000
"""Prepared answers kept per index version (the cache empties when it fills or data changes)."""


_TOLERANT = Level(TOLERANT)


@dataclass(frozen=True, slots=True)
class _Read:
    """A read the edge's data does not answer as it is (:meth:`SuggestFeature._from_core`)."""

    q: str
    limit: int
    level: Level
    min_version: int | None
    bookmark: tuple[str, int] | None
    """The presented bookmark's database (epoch) and version."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A suggestion answer, rendered for each transport without re-encoding its items.

    ``mode`` names the level that served it (``strict``, ``bounded``, ``session``,
    ``tolerant``). ``bookmark`` is the newest global version its data reflects, in database
    ``epoch`` (:func:`~shared.protocol.make_bookmark`). ``fresh_ms`` is how long it may still
    be served under its level: ``None`` for tolerant (no bound), what is left of the bound
    for bounded (>= 0), 0 for strict and session. ``core_trip``: it waited for a round trip
    to the core.
    """

    items: PreparedItems
    version: int
    age_ms: int
    mode: str
    stale: bool
    region: str
    bookmark: str
    fresh_ms: int | None
    epoch: str
    core_trip: bool = False

    def http_body(self) -> str:
        return suggestions_json(self.items, None, *self._rest(), message=False)

    def frame(self, request_id: RequestId | None, json_codec: bool) -> bytes | str:
        if json_codec:
            return suggestions_json(self.items, request_id, *self._rest())
        return suggestions_msgpack(self.items, request_id, *self._rest())

    def _rest(self) -> tuple[int, int, str, bool, str, str, bool]:
        return (
            self.version,
            self.age_ms,
            self.mode,
            self.stale,
            self.region,
            self.bookmark,
            self.core_trip,
        )


class SuggestFeature(Feature):
    """The suggestion feature of an edge (registered as ``suggest``)."""

    name = "suggest"
    client_messages = (Suggest, Search)
    link_messages = (Snapshot, Delta, SearchAcks)
    has_data = True

    def __init__(self, node: EdgeNode) -> None:
        super().__init__(node)
        self.settings = settings = node.settings
        self.metrics = node.metrics
        self.replica = Replica(settings.outbox_max)
        self.sources = Sources(node.token, settings.trust_client_ip_header)
        self.ready_event = asyncio.Event()
        self._cache: dict[tuple[str, int], PreparedItems] = {}
        self._cached_for: object = None
        self._cached_version = -1
        self._acks: dict[str, list[asyncio.Future[int]]] = {}
        self._bookmark_text, self._bookmark_reach, self._bookmark_epoch = "", -2, ""
        self._wake = asyncio.Event()
        self._retry: asyncio.TimerHandle | None = None
        self._hold: asyncio.TimerHandle | None = None  # a small batch waits (Outbox.wait_s)
        self._suggest_seconds = self.metrics.ws_messages.labels(Suggest.TYPE)  # the hot path
        self._tolerant = self.level.level == TOLERANT
        self.metrics.version.set_function(lambda: self.version)
        self.metrics.age.set_function(lambda: self.link.age_ms(self.name) / 1000)
        self.metrics.outbox.set_function(lambda: len(self.replica.outbox))

    @functools.cached_property
    def link(self) -> Link:
        return self.node.link

    @functools.cached_property
    def freshness(self) -> Freshness:
        """This feature's freshness, as the link tracks it."""
        return self.link.freshness[self.name]

    @property
    def index(self) -> Any:
        return self.replica.index

    @property
    def outbox(self) -> Any:
        return self.replica.outbox

    @property
    def version(self) -> int:
        return self.replica.version

    # --- the seam --------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return routes.routes(self)

    def openapi_paths(self) -> dict[str, Any]:
        return routes.openapi_paths(self.settings)

    def hello_version(self) -> int:
        return self.replica.hello()[0]

    def hello_base(self) -> int | None:
        return self.replica.base()

    def ready(self) -> bool:
        return self.replica.index is not None

    def status(self) -> dict[str, Any]:
        return {"outbox": len(self.replica.outbox)}

    def client_handlers(self) -> dict[type[Message], ClientHandler]:
        return {Suggest: self.on_suggest, Search: self.on_search}

    def on_suggest(self, client: ClientSocket, message: Suggest, now: float) -> bytes | str | None:
        if (
            self._tolerant
            and message.min_version is None
            and message.bookmark is None
            and message.consistency is None
            and message.max_age_ms is None
        ):  # nothing to wait for: the hot path
            started = time.perf_counter()
            answer = self.suggest_now(message.q, message.limit)
            frame = answer.frame(message.id, client.json_codec)
            self._suggest_seconds.observe(time.perf_counter() - started)
            return frame
        started = time.perf_counter()
        read = self._read(
            message.q,
            message.limit,
            message.min_version,
            message.consistency,
            message.max_age_ms,
            message.bookmark,
        )
        if isinstance(read, Answer):  # the edge's data does: answered at once
            frame = read.frame(message.id, client.json_codec)
            self._suggest_seconds.observe(time.perf_counter() - started)
            return frame
        client.run(message, message.id, self._answer_later(client, message.id, read))
        return None

    def on_search(self, client: ClientSocket, message: Search, now: float) -> None:
        client.run(message, message.id, self._log_search(client, message))

    async def _answer_later(self, client: ClientSocket, request_id: RequestId, read: _Read) -> None:
        answer = await self._from_core(read)
        client.push(answer.frame(request_id, client.json_codec))

    async def _log_search(self, client: ClientSocket, message: Search) -> None:
        client.send(await self.search(message.id, message.q, self.sources.of(client.websocket)))

    async def on_link(self, message: Any) -> None:
        if type(message) is Snapshot:
            await self._load(message)
        elif type(message) is Delta:
            await self._apply(message)
        else:  # SearchAcks, the last of link_messages
            self._acked(message)

    def flag_changed(self, level: Level) -> None:
        self._tolerant = level.level == TOLERANT

    def link_up(self, session: Session) -> None:
        session.spawn("link_searches", lambda: self._send_searches(session))
        self._wake.set()

    def link_down(self) -> None:
        self.replica.link_down()

    # --- the replica's shell ---------------------------------------------------------------

    async def _load(self, message: Snapshot) -> None:
        logger.info("snapshot v%d arrived: %d bytes", message.version, len(message.data))
        data = await asyncio.to_thread(snapshot.parse, message.data)
        self.metrics.snapshots.inc()
        logger.info("loaded snapshot v%d: %d terms", data.version, len(data))
        self.link.loading(message.epoch)
        step = self.replica.load(data, message.epoch)
        self.link.core_at(data.version)
        await self._stepped(step)

    async def _apply(self, delta: Delta) -> None:
        step = self.replica.apply(delta)
        self.link.core_at(delta.to_version)
        if step.resync is not None:
            logger.warning("a gap before v%d: resyncing from v%d", delta.from_version, step.resync)
            await self.link.resync(self)
        await self._stepped(step)

    async def _stepped(self, step: Step) -> None:
        if step.advanced:
            self.link.advanced(self.name, self.replica.version)
        if step.installed:
            self.ready_event.set()
            # The answers cached for the index just replaced hold it: let it go at once, and
            # give its memory back to the system (edge_node/memory.py).
            self._cache.clear()
            self._cached_for = None
            await asyncio.to_thread(memory.give_back)

    def _held(self) -> None:
        self._hold = None
        self._wake.set()

    def _acked(self, message: SearchAcks) -> None:
        self._wake.set()  # the next batch may go (Outbox.wait_s)
        for outcome in self.replica.acked(message):
            if outcome.kept:  # its writers wait on (or got "queued"); sent again soon
                self._retry_later()
                continue
            if outcome.version is not None:
                self.link.core_at(outcome.version)
            self._resolve(outcome)

    def _retry_later(self) -> None:
        """Send the outbox again in :data:`STORE_RETRY_S` (searches the core kept back)."""
        if self._retry is None:
            loop = asyncio.get_running_loop()
            self._retry = loop.call_later(STORE_RETRY_S, self._retried)

    def _retried(self) -> None:
        self._retry = None
        self._wake.set()

    def _resolve(self, outcome: Outcome) -> None:
        """Tell the writers waiting for ``outcome.id``."""
        failure = outcome.failure()
        for fut in self._acks.pop(outcome.id, []):
            if fut.done():
                continue
            if failure is not None:
                fut.set_exception(failure)
            else:
                assert outcome.version is not None
                fut.set_result(outcome.version)

    async def _send_searches(self, session: Session) -> None:
        """Send the outbox in batches that grow under load (:meth:`Outbox.wait_s`): woken by
        a new search, an acknowledgement, or the end of a hold."""
        outbox, most = self.replica.outbox, self.settings.max_search_batch
        loop = asyncio.get_running_loop()
        with contextlib.suppress(Unavailable):
            while True:
                await self._wake.wait()
                self._wake.clear()
                while outbox.has_unsent:
                    hold = outbox.wait_s(most, loop.time())
                    if hold > 0:
                        if self._hold is None:
                            self._hold = loop.call_later(hold, self._held)
                        break
                    sent, dropped = frames(Searches(outbox.take(most, loop.time())))
                    for item in dropped:
                        self._refuse(item)
                    for frame in sent:
                        await session.send_frame(frame)

    def _refuse(self, item: SearchItem) -> None:
        """A search that cannot be sent to the core (poison): drop it alone, tell its waiters."""
        self.metrics.drops.drop("outbox", item)
        self._resolve(self.replica.refuse(item))

    # --- answers ---------------------------------------------------------------------------

    def check_query(self, q: str, limit: int) -> None:
        """Refuse a query that is not text, over ``LIGHTCONE_MAX_QUERY_CHARS``, folds over
        :data:`~shared.text.MAX_KEY_CHARS`, or asks for a ``limit`` out of range."""
        clean(
            q,
            field="q",
            max_chars=self.settings.max_query_chars,
            max_key_chars=MAX_KEY_CHARS,
            code="query_too_long",
        )
        index = self.replica.index
        # Hot lists are as deep as the core's max limit: never promise more than they hold.
        most = min(self.settings.max_limit, index.depth) if index else self.settings.max_limit
        if not 1 <= limit <= most:
            raise BadRequest(f"limit must be 1..{most}", code="bad_limit")

    async def suggest(
        self,
        q: str,
        limit: int,
        min_version: int | None = None,
        *,
        consistency: str | None = None,
        max_age_ms: int | None = None,
        bookmark: str | None = None,
    ) -> Answer:
        """Top completions of ``q``, as fresh as the level demands: the feature's, or the
        weaker one ``consistency`` asks for (with ``max_age_ms`` for bounded); never older
        than ``min_version`` or ``bookmark`` (docs/protocol.md §3).

        Raises:
            BadRequest: a bad query or level, or a version or bookmark ahead of the core.
            Unavailable: not ready yet, or the core is needed and does not answer.
        """
        read = self._read(q, limit, min_version, consistency, max_age_ms, bookmark)
        return read if isinstance(read, Answer) else await self._from_core(read)

    def suggest_now(self, q: str, limit: int) -> Answer:
        """The tolerant answer from the local index, with no wait (the hot path).

        ``q`` and ``limit`` are checked (:meth:`check_query`) unless a prepared answer for them
        exists: it was made only after they passed, against the same index.
        """
        if self.replica.index is None:
            self.check_query(q, limit)
            raise Unavailable("the edge has no data yet", code="not_ready")
        return self._answer(q, limit, _TOLERANT)

    def _read(
        self,
        q: str,
        limit: int,
        min_version: int | None,
        consistency: str | None,
        max_age_ms: int | None,
        bookmark: str | None,
    ) -> Answer | _Read:
        """The answer, if the edge's data gives it now; else what to ask the core for.
        Everything is checked here, before any round trip."""
        level = self.level.serve(consistency, max_age_ms, self.link.default_max_age_ms)
        marked = read_bookmark(bookmark) if bookmark is not None else None
        if level.level == TOLERANT and min_version is None and marked is None:
            return self.suggest_now(q, limit)
        self.check_query(q, limit)
        if self.replica.index is None:
            raise Unavailable("the edge has no data yet", code="not_ready")
        read = _Read(q, limit, level, min_version, marked)
        if self._local(read):
            return self._answer(q, limit, level)
        return read

    def _local(self, read: _Read) -> bool:
        """Whether the edge's data answers ``read`` as it is: it reaches the read's bookmark
        (same database) and ``min_version``, and its level allows: strict never, bounded
        while the data is provably younger than the bound, session and tolerant always."""
        marked = read.bookmark
        if marked is not None and (marked[0] != self.link.epoch or not self._reflects(marked[1])):
            return False
        if read.min_version is not None and not self._reflects(read.min_version):
            return False
        if read.level.level == STRICT:
            return False
        return read.level.level != BOUNDED or self._left_ms(read.level) is not None

    def _left_ms(self, level: Level) -> int | None:
        """What is left of a bounded level's bound for the data now (None: not within it)."""
        link = self.link
        bound = level.max_age_ms or link.default_max_age_ms
        return self.freshness.bound_left_ms(bound, link.round_trip_ms(), link.clock())

    async def _from_core(self, read: _Read) -> Answer:
        """Answer ``read`` after what it needs from the core: one sync for strict, for
        bounded past its bound and for a bookmark of another database; then the bookmark's
        and ``min_version``'s versions (:meth:`_reach`)."""
        link, level = self.link, read.level
        marked = read.bookmark
        trip = False
        try:
            if (
                level.level == STRICT
                or (marked is not None and marked[0] != link.epoch)
                or (level.level == BOUNDED and self._left_ms(level) is None)
            ):
                await link.sync(self.name, self.settings.strict_timeout_ms / 1000)
                trip = True
            # A bookmark of another database, still so after the sync, is not waited for:
            # this answer's bookmark restarts the client's guarantees (docs/protocol.md §3).
            if marked is not None and marked[0] == link.epoch:
                trip = await self._reach(marked[1], "bookmark", synced=trip) or trip
            if read.min_version is not None:
                trip = await self._reach(read.min_version, "min_version", synced=trip) or trip
        except Unavailable as exc:
            self.metrics.strict_failures.labels(exc.code).inc()
            raise
        if trip:
            self.metrics.core_round_trips.labels(self.name, level.level).inc()
        return self._answer(read.q, read.limit, level, core_trip=trip)

    def _reflects(self, version: int) -> bool:
        return self.freshness.reflects(version)

    def _answer(self, q: str, limit: int, level: Level, *, core_trip: bool = False) -> Answer:
        index = self.replica.index
        assert index is not None
        if self._cached_for is not index or self._cached_version != index.version:
            self._cache.clear()
            self._cached_for, self._cached_version = index, index.version
        key = (q, limit)  # by the text as typed: a hit costs no folding
        items = self._cache.get(key)
        if items is None:
            self.check_query(q, limit)  # suggest() checked already; suggest_now() did not
            if len(self._cache) >= ANSWER_CACHE_ENTRIES:
                self._cache.clear()
            capped = index.typo_walks_capped
            entries = index.query(fold(q), limit)
            if index.typo_walks_capped != capped:
                self.metrics.typo_walks_capped.inc()
            items = self._cache[key] = PreparedItems.of([_item(e) for e in entries])
        fresh = self.freshness
        age_ms = 0 if fresh.confirmed_at is None else fresh.age_ms(self.link.clock())
        mode = level.level
        if mode == TOLERANT:
            fresh_ms: int | None = None
        elif mode == BOUNDED:
            fresh_ms = self._left_ms(level) or 0
        else:
            fresh_ms = 0
        return Answer(
            items,
            index.version,
            age_ms,
            mode,
            age_ms > self.settings.stale_after_ms,
            self.settings.region,
            self._bookmark(index.version),
            fresh_ms,
            self.link.epoch,
            core_trip,
        )

    def _bookmark(self, version: int) -> str:
        """The bookmark of what the data at ``version`` reflects now (made again only when
        that moves)."""
        fresh, epoch = self.freshness, self.link.epoch
        reach = max(version, fresh.version, fresh.current_at)
        if reach != self._bookmark_reach or epoch != self._bookmark_epoch:
            self._bookmark_text = make_bookmark(epoch, reach)
            self._bookmark_reach, self._bookmark_epoch = reach, epoch
        return self._bookmark_text

    async def _reach(self, version: int, what: str, *, synced: bool) -> bool:
        """Wait until the data reflects global ``version`` (``what``: ``min_version`` or
        ``bookmark``); returns whether that took a sync.

        If the core is known to have it, its delta is on the way: waited for up to
        ``LIGHTCONE_MIN_VERSION_WAIT_MS`` (the publish delay, on a healthy link). Otherwise,
        or after that, one sync (unless the read ``synced`` already) says whether it exists.

        Raises:
            BadRequest: ``<what>_ahead``: beyond the core's head, after the sync.
        """
        if self._reflects(version):
            return False
        link = self.link
        trip = False
        if not synced:
            if version <= link.head:
                try:
                    async with asyncio.timeout(self.settings.min_version_wait_ms / 1000):
                        await link.wait_version(self.name, version)
                    return False
                except TimeoutError:
                    pass
            head = await link.sync(self.name, self.settings.strict_timeout_ms / 1000)
            trip = True
        else:
            head = link.head
        if not self._reflects(version):
            raise BadRequest(
                f"{what} {version} is ahead of the core's head {head}", code=f"{what}_ahead"
            )
        return trip

    # --- writes ----------------------------------------------------------------------------

    async def search(self, search_id: str, q: str, source: str = "") -> SearchAck:
        """Log a search: ``committed`` once the core has it, ``queued`` while it cannot.

        ``source`` is the client's hashed address (:mod:`edge_node.suggest.sources`).

        Raises:
            Conflict: ``search_id`` was used before for another ``q`` (409 ``id_conflict``).
        """
        clean(search_id, field="id", max_chars=MAX_ID_CHARS, code="bad_id")
        if not search_id:
            raise BadRequest(f"id must be 1..{MAX_ID_CHARS} characters", code="bad_id")
        display, key = term(
            q, field="q", max_chars=self.settings.max_query_chars, code="query_too_long"
        )
        if not key:
            raise BadRequest("query is empty", code="empty_query")
        if not self.replica.outbox.add(SearchItem(search_id, display, source)):
            self.metrics.outbox_rejected.inc()
            raise Unavailable(
                f"the outbox is full ({self.replica.outbox.capacity} searches wait for the core)",
                code="outbox_full",
            )
        version = await self.commit(search_id, self.settings.write_timeout_ms / 1000)
        if version is None:
            return SearchAck(search_id, "queued", None)
        return SearchAck(search_id, "committed", version, make_bookmark(self.link.epoch, version))

    async def commit(self, search_id: str, timeout_s: float) -> int | None:
        """Wait for the core to commit a queued search; ``None`` if it is still queued."""
        if self.link.state != "up":
            return None
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._acks.setdefault(search_id, []).append(fut)
        self._wake.set()
        try:
            async with asyncio.timeout(timeout_s):
                return await fut
        except TimeoutError:
            return None
        finally:
            waiters = self._acks.get(search_id)
            if waiters and fut in waiters:
                waiters.remove(fut)
                if not waiters:
                    del self._acks[search_id]
