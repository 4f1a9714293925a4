"""The load of a fault-injection run: writers that keep what is not acknowledged, readers, cursors.

Every client is a coroutine on the run's event loop, talking to an edge on 127.0.0.1 over
HTTP (httpx) or its websocket (msgpack, the ``websockets`` client). Each one is bounded: it
paces itself (``rate_hz``), stops when :attr:`Control.stop` is set, and the run sets it at a
deadline. Writers behave like the browser client (``edge_node/static/app.js``): a search gets
a fresh id, and an id with no acknowledgement (an error, a timeout, a dropped connection) is
kept and sent again, first thing after a reconnect. One thing is stricter than the browser: an
id acknowledged ``queued`` is *not* sent again. The edge promised to deliver it; if it does
not, the run counts it lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException
from websockets.typing import Subprotocol

from edge_node.cursors.rooms import COORD_MAX
from shared.protocol import (
    SUBPROTOCOL_MSGPACK,
    Error,
    Join,
    Leave,
    Move,
    Moves,
    Search,
    SearchAck,
    Suggest,
    Suggestions,
    decode,
    encode,
)

REQUEST_TIMEOUT_S = 5.0
"""A client's deadline for one answer (the edge's own write deadline is 2 s by default)."""
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.1, 2.0
"""A client's wait after a failure: doubles from the first to the second."""
RETRYABLE = frozenset({"outbox_full", "rate_limited", "too_many_in_flight"})
"""Refusals the browser client retries (``app.js``); any other refusal is final."""
TERMS = (
    "Paris", "Tokyo", "São Paulo", "Lagos", "Mumbai", "Sydney", "Reykjavík", "Zürich",
    "Montréal", "Kraków", "Istanbul", "Cairo", "Lima", "Seoul", "Toronto", "Ōsaka",
)  # fmt: skip
"""What the writers search for: real city names of the default corpus, accents included."""
PREFIXES = ("pa", "to", "sao", "la", "mu", "syd", "rey", "zur", "mon", "kra", "is", "ca", "s")
ROOM = "reliability"
ANSWERED = ("fresh", "stale")
"""Outcomes of a read that was answered; any other outcome is a refusal or a failure."""
MAX_REQUESTS = 1_000_000
"""Most requests (ids, reads, moves) one client makes in a run, whatever its length."""
MSGPACK = [Subprotocol(SUBPROTOCOL_MSGPACK)]


@dataclass
class Control:
    """What every client watches: whether new writes may start, and when to stop."""

    writing: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.writing.set()


def backoff(failures: int) -> float:
    return min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2.0 ** max(0, failures - 1))


# --- writes ----------------------------------------------------------------------------------


@dataclass
class Ledger:
    """Every search id sent, and what the edges answered for it, across all writers."""

    attempted: set[str] = field(default_factory=set)
    committed: dict[str, float] = field(default_factory=dict)
    """id → when its first ``committed`` came (monotonic)."""
    queued: set[str] = field(default_factory=set)
    refused: Counter[str] = field(default_factory=Counter)
    """Final refusals, by error code (not promised: the writer was told)."""
    failures: Counter[str] = field(default_factory=Counter)
    """Sends with no acknowledgement (retried), by cause."""
    sends: int = 0
    pending: dict[str, int] = field(default_factory=dict)
    """writer → ids it still holds unacknowledged."""

    @property
    def acknowledged(self) -> set[str]:
        return set(self.committed) | self.queued

    def ack(self, search_id: str, status: str) -> None:
        if status == "committed":
            self.committed.setdefault(search_id, time.monotonic())
        else:
            self.queued.add(search_id)

    def first_commit_after(self, moment: float) -> float | None:
        """Seconds from ``moment`` to the first ``committed`` after it, if any."""
        later = [t for t in self.committed.values() if t > moment]
        return min(later) - moment if later else None

    def line(self) -> str:
        waiting = sum(self.pending.values())
        return (
            f"writes {len(self.attempted)} ids ({self.sends} sends): committed "
            f"{len(self.committed)}, queued {len(self.queued)}, unacknowledged {waiting}, "
            f"refused {sum(self.refused.values())}, failed sends {sum(self.failures.values())}"
        )

    def summary(self) -> dict[str, Any]:
        return {
            "ids_attempted": len(self.attempted),
            "sends": self.sends,
            "acknowledged": len(self.acknowledged),
            "acknowledged_committed": len(self.committed),
            "acknowledged_queued": len(self.queued),
            "refused": dict(self.refused),
            "failed_sends": dict(self.failures),
            "never_acknowledged": len(self.attempted - self.acknowledged),
        }


class Writer:
    """One client's searches: fresh ids while writing is on, its unacknowledged ids resent."""

    def __init__(self, name: str, ledger: Ledger, control: Control, rate_hz: float) -> None:
        self.name = name
        self.ledger = ledger
        self.control = control
        self.interval = 1 / rate_hz
        self.pending: dict[str, str] = {}
        self.sends = 0
        self._ids = (f"{name}-{n}" for n in range(MAX_REQUESTS))
        self._rand = random.Random(name)

    def next_item(self) -> tuple[str, str] | None:
        """An unacknowledged id first, else a new one while writing is on; ``None``: done."""
        if self.sends >= MAX_REQUESTS:
            return None
        if self.pending:
            search_id = next(iter(self.pending))
            return search_id, self.pending[search_id]
        if not self.control.writing.is_set():
            return None
        fresh = next(self._ids, None)
        if fresh is None:
            return None
        q = self._rand.choice(TERMS)
        self.pending[fresh] = q
        self.ledger.attempted.add(fresh)
        return fresh, q

    def answered(self, search_id: str, status: str | None, code: str | None) -> bool:
        """Record an answer (``status`` an ack's, or ``code`` a refusal's); ``True`` if the id
        needs no more sending."""
        self.sends += 1
        self.ledger.sends += 1
        if status is not None:
            self.ledger.ack(search_id, status)
        elif code in RETRYABLE or code is None:
            self.ledger.failures[code or "no answer"] += 1
            return False
        else:
            self.ledger.refused[code] += 1
        self.pending.pop(search_id, None)
        self.ledger.pending[self.name] = len(self.pending)
        return True

    def failed(self, cause: str) -> None:
        self.sends += 1
        self.ledger.sends += 1
        self.ledger.failures[cause] += 1
        self.ledger.pending[self.name] = len(self.pending)


async def http_writer(writer: Writer, base_url: str) -> None:
    """``POST /search`` at the writer's pace until it is done or told to stop."""
    failures = 0
    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as client:
        while not writer.control.stop.is_set():
            item = writer.next_item()
            if item is None:
                return
            search_id, q = item
            try:
                response = await client.post("/search", json={"id": search_id, "q": q})
                body = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                writer.failed(type(exc).__name__)
                ok = False
            else:
                if response.status_code in (200, 202):
                    ok = writer.answered(search_id, body["status"], None)
                else:
                    ok = writer.answered(search_id, None, str(body.get("error", "http_error")))
            failures = 0 if ok else failures + 1
            await _pause(writer.control, backoff(failures) if failures else writer.interval)


async def ws_writer(writer: Writer, ws_url: str) -> None:
    """Searches over the edge's websocket, one at a time; on a dropped connection it
    reconnects (with backoff) and resends what is unacknowledged first, as the page does."""
    failures = 0
    while not writer.control.stop.is_set():
        try:
            async with connect(ws_url, subprotocols=MSGPACK, open_timeout=REQUEST_TIMEOUT_S) as ws:
                while not writer.control.stop.is_set():
                    item = writer.next_item()
                    if item is None:
                        return
                    ok = await _ws_search(writer, ws, *item)
                    failures = 0 if ok else failures + 1
                    await _pause(writer.control, backoff(failures) if failures else writer.interval)
        except (OSError, TimeoutError, WebSocketException) as exc:
            writer.failed(type(exc).__name__)
            failures += 1
            await _pause(writer.control, backoff(failures))


async def _ws_search(writer: Writer, ws: ClientConnection, search_id: str, q: str) -> bool:
    await ws.send(encode(Search(search_id, q)))
    async with asyncio.timeout(REQUEST_TIMEOUT_S):
        while True:
            message = decode(await ws.recv(decode=False), strict=False)
            if isinstance(message, SearchAck) and message.id == search_id:
                return writer.answered(search_id, message.status, None)
            if isinstance(message, Error) and message.id == search_id:
                return writer.answered(search_id, None, message.code)


async def _pause(control: Control, seconds: float) -> None:
    """Sleep ``seconds``, or less if the run stops."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await control.stop.wait()


# --- reads -----------------------------------------------------------------------------------


@dataclass
class Reads:
    """Suggestion answers by (edge, mode, whether the edge's link was cut when asked)."""

    outcomes: Counter[tuple[str, str, bool, str]] = field(default_factory=Counter)
    """(region, mode, cut, outcome) → count; outcome ``fresh``, ``stale`` or an error code."""
    latencies: dict[tuple[str, str, bool, str], list[float]] = field(default_factory=dict)

    def record(self, region: str, mode: str, cut: bool, outcome: str, seconds: float) -> None:
        key = (region, mode, cut, outcome)
        self.outcomes[key] += 1
        self.latencies.setdefault(key, []).append(seconds)

    def count(self, *, mode: str | None = None, cut: bool | None = None, ok: bool) -> int:
        return sum(
            n
            for (_, m, c, outcome), n in self.outcomes.items()
            if (mode is None or m == mode)
            and (cut is None or c == cut)
            and (outcome in ANSWERED) == ok
        )

    def refused(self) -> dict[str, int]:
        """Reads not answered, by ``region outcome``."""
        found: Counter[str] = Counter()
        for (region, _, _, outcome), n in self.outcomes.items():
            if outcome not in ANSWERED:
                found[f"{region} {outcome}"] += n
        return dict(found)

    def line(self) -> str:
        answered = self.count(ok=True)
        stale = sum(n for k, n in self.outcomes.items() if k[3] == "stale")
        return f"reads answered {answered} (stale {stale}), refused {self.count(ok=False)}"

    def summary(self) -> list[dict[str, Any]]:
        rows = []
        for key, n in sorted(self.outcomes.items()):
            lat = sorted(self.latencies[key])
            rows.append(
                {
                    "region": key[0],
                    "mode": key[1],
                    "link_cut": key[2],
                    "outcome": key[3],
                    "count": n,
                    "p50_ms": round(statistics.median(lat) * 1000, 1),
                    "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 1),
                    "max_ms": round(lat[-1] * 1000, 1),
                }
            )
        return rows


async def http_reader(
    base_url: str,
    region: str,
    reads: Reads,
    control: Control,
    rate_hz: float,
    context: Callable[[], tuple[str, bool]],
) -> None:
    """``GET /suggest`` at a pace; each answer filed under ``context()`` when it was asked:
    the mode the run set, and whether the edge's link was cut."""
    rand = random.Random(region)
    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as client:
        for _ in range(MAX_REQUESTS):
            if control.stop.is_set():
                return
            mode, cut = context()
            started = time.monotonic()
            try:
                response = await client.get("/suggest", params={"q": rand.choice(PREFIXES)})
                body = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                outcome = type(exc).__name__
            else:
                if response.status_code == 200:
                    outcome = "stale" if body["stale"] else "fresh"
                else:
                    outcome = str(body.get("error", response.status_code))
            reads.record(region, mode, cut, outcome, time.monotonic() - started)
            await _pause(control, 1 / rate_hz)


async def ws_reader(
    ws_url: str,
    region: str,
    reads: Reads,
    control: Control,
    rate_hz: float,
    context: Callable[[], tuple[str, bool]],
    abandon_every: int = 4,
) -> None:
    """``suggest`` over the websocket; every ``abandon_every``-th request the client hangs up
    before the answer (a user closing the tab), then reconnects."""
    rand = random.Random(f"ws-{region}")
    sent = 0
    while not control.stop.is_set() and sent < MAX_REQUESTS:
        started = time.monotonic()
        try:
            async with connect(ws_url, subprotocols=MSGPACK, open_timeout=REQUEST_TIMEOUT_S) as ws:
                while not control.stop.is_set() and sent < MAX_REQUESTS:
                    sent += 1
                    mode, cut = context()
                    started = time.monotonic()
                    await ws.send(encode(Suggest(sent, rand.choice(PREFIXES))))
                    if sent % abandon_every == 0:
                        break  # hang up with the request in flight
                    outcome = await _ws_answer(ws, sent)
                    reads.record(region, mode, cut, outcome, time.monotonic() - started)
                    await _pause(control, 1 / rate_hz)
        except (OSError, TimeoutError, WebSocketException) as exc:
            reads.record(region, *context(), type(exc).__name__, time.monotonic() - started)
            await _pause(control, BACKOFF_MIN_S)


async def _ws_answer(ws: ClientConnection, request_id: int) -> str:
    """``fresh``, ``stale``, or the error code of the answer to ``request_id``."""
    async with asyncio.timeout(REQUEST_TIMEOUT_S):
        while True:
            message = decode(await ws.recv(decode=False), strict=False)
            if isinstance(message, Suggestions) and message.id == request_id:
                return "stale" if message.stale else "fresh"
            if isinstance(message, Error) and message.id == request_id:
                return message.code


# --- cursors ---------------------------------------------------------------------------------


@dataclass
class Cursors:
    """When each mover's moves were last seen by a member on another edge."""

    moves_sent: int = 0
    frames_seen: int = 0
    last_seen: dict[int, float] = field(default_factory=dict)
    """mover index → when a listener on another edge last received one of its moves."""
    reconnects: int = 0
    room_changes: int = 0

    def line(self) -> str:
        return f"cursor moves sent {self.moves_sent}, move frames seen {self.frames_seen}"


async def cursor_member(
    ws_url: str,
    index: int,
    cursors: Cursors,
    control: Control,
    rate_hz: float,
    room: Callable[[], str] = lambda: ROOM,
) -> None:
    """Join ``room()`` and move at ``rate_hz`` (``y`` = ``index`` names the mover); file every
    move seen from another mover. When ``room()`` changes, leave for the new room (a user
    going to another document); after a dropped connection, join again."""
    while not control.stop.is_set():
        try:
            async with connect(ws_url, subprotocols=MSGPACK, open_timeout=REQUEST_TIMEOUT_S) as ws:
                joined = room()
                await ws.send(encode(Join(joined, f"mover-{index}", "#336699")))
                listen = asyncio.create_task(_listen(ws, index, cursors))
                try:
                    x = 0
                    while (
                        not control.stop.is_set()
                        and not listen.done()
                        and cursors.moves_sent < MAX_REQUESTS
                    ):
                        if (wanted := room()) != joined:
                            await ws.send(encode(Leave(joined)))
                            await ws.send(encode(Join(wanted, f"mover-{index}", "#336699")))
                            joined = wanted
                            cursors.room_changes += 1
                        x = (x + 1) % (COORD_MAX + 1)
                        await ws.send(encode(Move(x, index, joined)))
                        cursors.moves_sent += 1
                        await _pause(control, 1 / rate_hz)
                finally:
                    listen.cancel()
                    with contextlib.suppress(asyncio.CancelledError, WebSocketException):
                        await listen
        except (OSError, TimeoutError, WebSocketException):
            pass
        if not control.stop.is_set():
            cursors.reconnects += 1
            await _pause(control, BACKOFF_MIN_S)


async def _listen(ws: ClientConnection, index: int, cursors: Cursors) -> None:
    async for data in ws:
        message = decode(data if isinstance(data, bytes) else data.encode(), strict=False)
        if isinstance(message, Moves):
            cursors.frames_seen += 1
            now = time.monotonic()
            for position in message.moves:
                if position.y != index:
                    cursors.last_seen[position.y] = now
