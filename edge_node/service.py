"""What an edge answers, whatever the transport: suggestions and logged searches.

HTTP routes and the websocket endpoint both call :class:`Service`; it validates input,
applies the ``suggest`` flag (tolerant: answer from the local index at once; strict: one
round trip to the core first) and read-your-writes (``min_version``), and raises the errors
of :mod:`shared.errors`, which each transport renders its own way.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from edge_node.settings import EdgeSettings
from edge_node.suggest.prepared import PreparedItems, suggestions_json, suggestions_msgpack
from edge_node.upstream import Upstream
from shared.errors import BadRequest, Unavailable
from shared.folding import fold
from shared.protocol import (
    Item,
    RequestId,
    SearchAck,
    SearchItem,
    Suggestions,
)
from shared.text import MAX_ID_CHARS, MAX_KEY_CHARS, clean, term

ANSWER_CACHE_ENTRIES = 10_000
"""Prepared answers kept per index version (the cache empties when it fills or data changes)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A suggestion answer, rendered for each transport without re-encoding its items."""

    items: PreparedItems
    version: int
    age_ms: int
    mode: str
    stale: bool
    region: str

    def http_body(self) -> str:
        return suggestions_json(self.items, None, *self._rest(), message=False)

    def frame(self, request_id: RequestId | None, json_codec: bool) -> bytes | str:
        if json_codec:
            return suggestions_json(self.items, request_id, *self._rest())
        return suggestions_msgpack(self.items, request_id, *self._rest())

    def message(self, request_id: RequestId | None = None) -> Suggestions:
        return Suggestions(request_id, self.items.items, *self._rest())

    def _rest(self) -> tuple[int, int, str, bool, str]:
        return (self.version, self.age_ms, self.mode, self.stale, self.region)


class Service:
    def __init__(self, settings: EdgeSettings, upstream: Upstream) -> None:
        self.settings = settings
        self.upstream = upstream
        self._cache: dict[tuple[str, int], PreparedItems] = {}
        self._cached_for: object = None
        self._cached_version = -1

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
        index = self.upstream.index
        # Hot lists are as deep as the core's max limit: never promise more than they hold.
        most = min(self.settings.max_limit, index.depth) if index else self.settings.max_limit
        if not 1 <= limit <= most:
            raise BadRequest(f"limit must be 1..{most}", code="bad_limit")

    async def suggest(self, q: str, limit: int, min_version: int | None = None) -> Answer:
        """Top completions of ``q``, as fresh as the flag (and ``min_version``) demand."""
        up = self.upstream
        stale_ok = up.stale_ok("suggest")
        if stale_ok and min_version is None:
            return self.suggest_now(q, limit)  # nothing to wait for
        self.check_query(q, limit)  # before any round trip
        if up.index is None:
            raise Unavailable("the edge has no data yet", code="not_ready")
        try:
            if not stale_ok:
                await up.sync(self.settings.strict_timeout_ms / 1000)
            if min_version is not None and up.version < min_version:
                await self._reach(min_version, synced=not stale_ok)
        except Unavailable as exc:
            up.metrics.strict_failures.labels(exc.code).inc()
            raise
        return self._answer(q, limit, stale_ok)

    def suggest_now(self, q: str, limit: int) -> Answer:
        """The tolerant answer from the local index, with no wait (the hot path).

        ``q`` and ``limit`` are checked (:meth:`check_query`) unless a prepared answer for them
        exists: it was made only after they passed, against the same index.
        """
        if self.upstream.index is None:
            self.check_query(q, limit)
            raise Unavailable("the edge has no data yet", code="not_ready")
        return self._answer(q, limit, stale_ok=True)

    def _answer(self, q: str, limit: int, stale_ok: bool) -> Answer:
        index = self.upstream.index
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
            entries = index.query(fold(q), limit)
            items = self._cache[key] = PreparedItems.of([Item(e.term, e.weight) for e in entries])
        age_ms = self.upstream.age_ms()
        return Answer(
            items,
            index.version,
            age_ms,
            "tolerant" if stale_ok else "strict",
            age_ms > self.settings.stale_after_ms,
            self.settings.region,
        )

    async def _reach(self, min_version: int, *, synced: bool) -> None:
        up = self.upstream
        if not synced:
            if min_version <= up.core_head:  # the core has it: its delta is on the way
                try:
                    async with asyncio.timeout(self.settings.min_version_wait_ms / 1000):
                        await up.wait_version(min_version)
                    return
                except TimeoutError:
                    pass
            # Beyond what the core is known to have: one sync says whether it exists at all.
            head = await up.sync(self.settings.strict_timeout_ms / 1000)
        else:
            head = up.version
        if up.version < min_version:
            raise BadRequest(
                f"min_version {min_version} is ahead of the core's head {head}",
                code="min_version_ahead",
            )

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
        up = self.upstream
        if not up.outbox.add(SearchItem(search_id, display, source)):
            up.metrics.outbox_rejected.inc()
            raise Unavailable(
                f"the outbox is full ({up.outbox.capacity} searches wait for the core)",
                code="outbox_full",
            )
        version = await up.commit(search_id, self.settings.write_timeout_ms / 1000)
        if version is None:
            return SearchAck(search_id, "queued", None)
        return SearchAck(search_id, "committed", version)
