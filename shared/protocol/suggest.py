"""The suggestion feature's messages: suggest/search from clients, and on the link the
snapshot, deltas, batches of searches and their acknowledgements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from shared.protocol.codec import OMIT_NONE
from shared.protocol.common import RequestId
from shared.protocol.registry import CLIENT, LINK, Message, message


@message(CLIENT)
@dataclass(frozen=True, slots=True)
class Suggest(Message):
    """Client asks for completions of ``q``.

    ``consistency`` asks for a level weaker than (or the same as) the feature's, with
    ``max_age_ms`` for ``bounded``; ``bookmark`` is one from an earlier answer or search ack
    (read-your-writes, monotonic reads). Each is left off the wire while ``None``.
    """

    TYPE: ClassVar[str] = "suggest"
    id: RequestId
    q: str
    limit: int = 10
    min_version: int | None = None
    consistency: str | None = field(default=None, metadata=OMIT_NONE)
    max_age_ms: int | None = field(default=None, metadata=OMIT_NONE)
    bookmark: str | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True, slots=True)
class Item:
    """One suggestion: the display form and its weight, and how it matched the query.

    ``match`` is absent for a prefix match (the only kind older edges send), ``"typo"`` for
    a typo match, with ``typos`` (1 or 2) the edits it took, and ``"alias"`` for a match of
    another name of the term, with ``alias`` the display form of that name; each is left off
    the wire while ``None``. Clients show a kind they do not know as a plain suggestion.
    """

    term: str
    weight: int
    match: str | None = field(default=None, metadata=OMIT_NONE)
    typos: int | None = field(default=None, metadata=OMIT_NONE)
    alias: str | None = field(default=None, metadata=OMIT_NONE)


@message(CLIENT)
@dataclass(frozen=True, slots=True)
class Suggestions(Message):
    """The answer to :class:`Suggest`; says how fresh it is and at which level (``mode``) it
    was served.

    ``bookmark`` (every answer of this build) is the newest global version its data reflects,
    in its database, to present with a later read; ``core_trip`` is true when the answer
    waited for a round trip to the core. Each is left off the wire while ``None``.
    """

    TYPE: ClassVar[str] = "suggestions"
    id: RequestId | None
    items: list[Item]
    version: int
    age_ms: int
    mode: str
    stale: bool
    region: str
    bookmark: str | None = field(default=None, metadata=OMIT_NONE)
    core_trip: bool | None = field(default=None, metadata=OMIT_NONE)


@message(CLIENT)
@dataclass(frozen=True, slots=True)
class Search(Message):
    """Client logs a search; ``id`` is made by the client and makes the write idempotent."""

    TYPE: ClassVar[str] = "search"
    id: str
    q: str


@message(CLIENT)
@dataclass(frozen=True, slots=True)
class SearchAck(Message):
    """``status`` is ``committed`` (with the version it produced, and its ``bookmark``) or
    ``queued`` (neither; ``bookmark`` left off the wire)."""

    TYPE: ClassVar[str] = "search_ack"
    id: str
    status: str
    version: int | None
    bookmark: str | None = field(default=None, metadata=OMIT_NONE)


@message(LINK)
@dataclass(frozen=True, slots=True)
class Snapshot(Message):
    """The whole serving structure at ``version`` of database ``epoch`` (see
    :mod:`shared.snapshot`)."""

    TYPE: ClassVar[str] = "snapshot"
    version: int
    data: bytes
    epoch: str = ""


@dataclass(frozen=True, slots=True)
class TermChange:
    """A term's new state; ``term`` is ``None`` when it is no longer served. ``names``: all
    its other names (:mod:`shared.names`), left off the wire when it has none; an edge that
    does not know the field drops it (the link decodes leniently) and serves the term without
    them."""

    key: str
    term: str | None
    weight: int
    names: list[str] | None = field(default=None, metadata=OMIT_NONE)


@message(LINK)
@dataclass(frozen=True, slots=True)
class Delta(Message):
    """What changed from ``from_version`` to ``to_version``.

    ``hot`` replaces the precomputed top keys of the hot prefixes the change touched.
    """

    TYPE: ClassVar[str] = "delta"
    from_version: int
    to_version: int
    terms: list[TermChange]
    hot: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SearchItem:
    """A logged search on the link. ``source`` is the salted hash of the client's address
    the edge saw (:mod:`edge_node.suggest.sources`); the core counts distinct sources per term.
    Empty when unknown: it then counts for no source."""

    id: str
    q: str
    source: str = ""


MAX_SOURCE_CHARS = 64
"""A longer ``SearchItem.source`` counts for no source (edges send 32 hex characters)."""


@message(LINK)
@dataclass(frozen=True, slots=True)
class Searches(Message):
    """A batch of logged searches from one edge."""

    TYPE: ClassVar[str] = "searches"
    searches: list[SearchItem]


@dataclass(frozen=True, slots=True)
class AckItem:
    """``version`` the write produced (or produced the first time); if refused, ``version``
    is ``None`` and ``error`` is :data:`ACK_INVALID` or :data:`ACK_ID_CONFLICT`; not committed
    yet, ``error`` is :data:`ACK_STORE_UNAVAILABLE`."""

    id: str
    version: int | None
    error: str | None = None


ACK_INVALID = "invalid_search"
"""Ack error: the search failed the core's own checks (the edge answers ``rejected``)."""
ACK_ID_CONFLICT = "id_conflict"
"""Ack error: the id was committed before with another ``q`` (the edge answers 409)."""
ACK_STORE_UNAVAILABLE = "store_unavailable"
"""Ack error: not committed, the core's database is unreachable; the edge keeps the search
queued and sends it again (not a refusal)."""


@message(LINK)
@dataclass(frozen=True, slots=True)
class SearchAcks(Message):
    TYPE: ClassVar[str] = "search_acks"
    acks: list[AckItem]
