"""People typing city names into a suggestion box: over HTTP, over the websocket, and with the
on-device pack in front of HTTP.

A share of the HTTP user's queries (``LIGHTCONE_SEARCH_SHARE``, none by default) end in a
search, ``POST /search`` of the name typed, followed at once by a read of the same prefix (in a
session, with the ack's bookmark): read-your-writes, recorded as its own kind
(``suggest_ryw``), with whether the answer's ``version`` had reached the ack's (``saw_write``).
In a session (``LIGHTCONE_SESSION=1``) every user also keeps the newest bookmark it was given
and presents it with each request (HTTP: the ``Lightcone-Bookmark`` header; websocket: the
``bookmark`` field).
"""

from __future__ import annotations

import itertools
import json
import random
import time
import unicodedata
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import gevent
import websocket
from gevent.pool import Group
from locust import task
from locust.contrib.fasthttp import FastHttpUser

from load.plan import PACK_REFRESH_S
from load.users.connection import Socket, WebsocketUser
from load.users.recording import COUNTERS, ServerError, WrongMode, fire, ms_since
from load.users.settings import SETTINGS, START_SPREAD_S, assign
from shared.errors import BadRequest
from shared.folding import fold
from shared.protocol import read_bookmark

CITY_NAMES = (
    "São Paulo",
    "New York",
    "Sydney",
    "Singapore",
    "London",
    "Los Angeles",
    "Tokyo",
    "Mumbai",
    "Mexico City",
    "Buenos Aires",
    "Kraków",
    "Zürich",
    "München",
    "Montréal",
    "Bogotá",
    "Reykjavík",
    "Paris",
    "Berlin",
    "Istanbul",
    "Jakarta",
    "Seoul",
    "Cairo",
    "Lagos",
    "Nairobi",
    "Cape Town",
    "Johannesburg",
    "Melbourne",
    "Auckland",
    "Toronto",
    "Chicago",
    "San Francisco",
    "Ho Chi Minh City",
    "Hong Kong",
    "Shanghai",
    "Bangkok",
    "Manila",
    "Lima",
    "Santiago",
    "Madrid",
    "Lisbon",
    "Rome",
    "Amsterdam",
    "Stockholm",
    "Dubai",
    "Karachi",
    "Dhaka",
    "Rio de Janeiro",
    "Kuala Lumpur",
    "Perth",
    "Brisbane",
)
"""Queries people type, as they would spell them (accents, capitals, spaces)."""


def plain(text: str) -> str:
    """``text`` as people often type it: lower case, no accents ("São Paulo" → "sao paulo")."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def zipf_weights(n: int, s: float) -> list[float]:
    """Weights of ``n`` names by rank: the k-th (from 1) ``1 / k**s``; ``s`` 0: all alike."""
    return [1 / k**s for k in range(1, n + 1)]


def keystrokes(
    rng: random.Random, names: tuple[str, ...] = CITY_NAMES, weights: list[float] | None = None
) -> list[str]:
    """One query as the prefixes a type-ahead box sees, one per keystroke.

    The name is drawn by ``weights`` (every name alike without them). Half the people type
    it as written, half in plain lower case; they stop somewhere after the third character,
    once the suggestion they want shows up.
    """
    name = rng.choices(names, weights)[0] if weights else rng.choice(names)
    text = name if rng.random() < 0.5 else plain(name)
    stop = rng.randint(min(3, len(text)), len(text))
    return [text[:n] for n in range(1, stop + 1)]


WEIGHTS = zipf_weights(len(CITY_NAMES), SETTINGS.zipf_s)
"""The query mix: :data:`CITY_NAMES` in order of popularity, Zipf-weighted."""


def newest(kept: str | None, given: Any) -> str | None:
    """The newer of two bookmarks: a later version in the same epoch, else the one given."""
    if not isinstance(given, str) or not given:
        return kept
    if kept is None:
        return given
    try:
        (kept_epoch, kept_version), (epoch, version) = read_bookmark(kept), read_bookmark(given)
    except BadRequest:
        return given
    return kept if epoch == kept_epoch and version < kept_version else given


def rung(answer: dict[str, Any], cache_status: str = "") -> str:
    """Which rung answered: ``pop`` (a PoP's cache), ``core`` (the edge waited for a round
    trip to the core) or ``edge``."""
    if cache_status in ("HIT", "STALE", "UPDATING"):
        return "pop"
    return "core" if answer.get("core_trip") else "edge"


class Typist:
    """A person typing queries: one prefix per keystroke, think time between keys."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def key_pause(self) -> float:
        return self.rng.uniform(*SETTINGS.key_s)

    def query_pause(self) -> float:
        return self.rng.uniform(*SETTINGS.pause_s)

    def type_one(
        self, send: Callable[[str], None], searched: Callable[[str], None] | None = None
    ) -> None:
        """Type one query: ``send`` each prefix; a share of queries
        (``LIGHTCONE_SEARCH_SHARE``) end in ``searched(prefix)``; then pause as people read
        the list."""
        prefixes = keystrokes(self.rng, weights=WEIGHTS)
        for prefix in prefixes:
            send(prefix)
            gevent.sleep(self.key_pause())
        if searched is not None and self.rng.random() < SETTINGS.search_share:
            searched(prefixes[-1])
        gevent.sleep(self.query_pause())


_http_users = itertools.count()
_ws_users = itertools.count()


class SuggestHttpUser(FastHttpUser):
    """Types city names into a search box served by ``GET /suggest`` (see the module doc)."""

    concurrency = 16  # keystrokes whose answers are still in flight share these connections
    kind = "suggest_http"

    def __init__(self, environment: Any) -> None:
        self.index, self.city, self.host = assign(_http_users, environment.host)
        super().__init__(environment)
        self.typist = Typist(self.index)
        self.requests = Group()
        self.bookmark: str | None = None
        self.searches = itertools.count(1)
        self.name = f"/suggest [{self.city}]"

    def headers(self, bookmark: str | None = None) -> dict[str, str]:
        found = {"fly-prefer-region": SETTINGS.prefer_region} if SETTINGS.prefer_region else {}
        bookmark = bookmark or (self.bookmark if SETTINGS.session else None)
        if bookmark:
            found["Lightcone-Bookmark"] = bookmark
        return found

    def on_start(self) -> None:
        gevent.sleep(self.typist.rng.uniform(0, START_SPREAD_S))  # people don't start at once

    def on_stop(self) -> None:
        self.requests.kill(block=False)

    @task
    def type_a_query(self) -> None:
        self.typist.type_one(
            lambda prefix: self.requests.spawn(self._suggest, prefix), self._search
        )

    def _suggest(self, prefix: str) -> None:
        self.get_suggestions(prefix, self.kind)

    def get_suggestions(
        self, prefix: str, kind: str, bookmark: str | None = None, written: int | None = None
    ) -> None:
        """``GET /suggest`` of ``prefix``, recorded as ``kind`` with the rung that answered
        (and, after a search committed at version ``written``, whether it saw it)."""
        COUNTERS.suggest_sent += 1
        path = f"/suggest?q={quote(prefix)}&limit={SETTINGS.limit}"
        if SETTINGS.cache_tag:
            path += f"&run={quote(SETTINGS.cache_tag)}"
        name = self.name if kind == self.kind else f"{kind} [{self.city}]"
        with self.client.get(
            path, name=name, headers=self.headers(bookmark), catch_response=True
        ) as response:
            context = response.request_meta["context"]
            context.update({"kind": kind, "city": self.city})
            answer = json_body(response)
            if answer is None:
                return
            COUNTERS.suggest_answered += 1
            cache_status = response.headers.get("X-Cache-Status") or ""
            if cache_status:
                COUNTERS.cache[cache_status] = COUNTERS.cache.get(cache_status, 0) + 1
            context["peer"] = answer.get("region", "")
            context["rung"] = rung(answer, cache_status)
            if written is not None:
                context["saw_write"] = int(int(answer.get("version") or -1) >= written)
            if SETTINGS.session:
                self.bookmark = newest(self.bookmark, answer.get("bookmark"))
            mode = answer.get("mode")
            if SETTINGS.expect_mode and mode != SETTINGS.expect_mode:
                COUNTERS.wrong_mode += 1
                response.failure(WrongMode(f"answered {mode}, expected {SETTINGS.expect_mode}"))

    def _search(self, prefix: str) -> None:
        """Search for the name ``prefix`` begins (``POST /search``), then read ``prefix``
        again at once, in a session with the ack's bookmark (timed on its own:
        ``suggest_ryw``)."""
        name = next(n for n in CITY_NAMES if n.startswith(prefix) or plain(n).startswith(prefix))
        search_id = f"{SETTINGS.room_prefix}-{self.index}-{next(self.searches)}"
        COUNTERS.searches += 1
        ack: dict[str, Any] = {}
        with self.client.post(
            "/search",
            json={"id": search_id, "q": name},
            name=f"/search [{self.city}]",
            headers=self.headers(),
            catch_response=True,
        ) as response:
            response.request_meta["context"].update({"kind": "search_http", "city": self.city})
            ack = json_body(response, (200, 202))
            if ack is None:
                return
        if ack.get("status") != "committed":
            return
        COUNTERS.searches_committed += 1
        self.bookmark = newest(self.bookmark, ack.get("bookmark"))
        version = ack.get("version")
        written = version if isinstance(version, int) else None
        bookmark = ack.get("bookmark") if SETTINGS.session else None  # only a session has one
        self.get_suggestions(prefix, "suggest_ryw", bookmark, written)


def json_body(response: Any, ok: tuple[int, ...] = (200,)) -> Any:
    """The JSON body of a locust ``catch_response`` answer whose status is in ``ok``; None,
    with the failure recorded on the response, for any other status or a body not JSON."""
    if response.status_code not in ok:
        response.failure(failure(response.status_code, response.text))
        return None
    try:
        return response.json()
    except ValueError:
        response.failure(f"not JSON: {(response.text or '')[:200]}")
        return None


def failure(status: int, text: str | None) -> str:
    """A failed answer as ``HTTP <status> <code>: <message>`` (the report groups by code)."""
    try:
        body = json.loads(text or "")
        code, message = body["error"], body.get("message", "")
    except (ValueError, KeyError, TypeError):
        code, message = "", (text or "")[:200]
    return f"HTTP {status} {code}: {message}"[:200]


_device_users = itertools.count()


class SuggestDeviceUser(SuggestHttpUser):
    """A person typing into the page with the on-device rung: keystrokes whose folded prefix
    has one or two characters come from the pack (``GET /suggest/pack``, refreshed by
    conditional requests every :data:`PACK_REFRESH_S`) while the pack says ``tolerant``; every
    other keystroke asks the edge. Each keystroke is one ``device_keystroke``, with its rung."""

    kind = "device_keystroke"

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.pack: dict[str, Any] = {}
        self.etag = ""
        self.fetched = 0.0

    def on_start(self) -> None:
        super().on_start()
        self._refresh()

    def _refresh(self) -> None:
        headers = {**self.headers(), **({"If-None-Match": self.etag} if self.etag else {})}
        COUNTERS.packs += 1
        self.fetched = time.monotonic()
        with self.client.get(
            "/suggest/pack", name=f"pack [{self.city}]", headers=headers, catch_response=True
        ) as response:
            response.request_meta["context"].update({"kind": "pack", "city": self.city})
            if response.status_code == 304:
                COUNTERS.packs_unchanged += 1
                return
            pack = json_body(response)
            if pack is None:
                return
            self.pack = pack
            self.etag = response.headers.get("ETag") or ""
            COUNTERS.pack_bytes = len(response.content or b"")
            COUNTERS.pack_wire_bytes = int(response.headers.get("Content-Length") or 0)

    def _suggest(self, prefix: str) -> None:
        COUNTERS.keystrokes += 1
        if time.monotonic() - self.fetched > PACK_REFRESH_S:
            self._refresh()
        started = time.perf_counter()
        items = self.local(prefix)
        if items is None:
            self.get_suggestions(prefix, self.kind)
            return
        ms = ms_since(started)
        COUNTERS.device_answered += 1
        context = {"kind": self.kind, "city": self.city, "rung": "device"}
        fire(self, "DEVICE", f"device [{self.city}]", ms, 0, context)

    def local(self, prefix: str) -> list[Any] | None:
        """The pack's answer to ``prefix``, or ``None`` when the edge must answer: a level
        other than tolerant, or a folded prefix the pack does not hold."""
        pack = self.pack
        if pack.get("level") != "tolerant":
            return None
        key = fold(prefix)
        if not 1 <= len(key) <= 2:
            return None
        items = pack.get("prefixes", {}).get(key)
        return None if items is None else list(items)[: SETTINGS.limit]


class SuggestWsUser(WebsocketUser):
    """Types city names into a search box over the ``/ws`` websocket (see the module doc)."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment, _ws_users)
        self.typist = Typist(1_000_000 + self.index)
        self.ctx = {"kind": "suggest_ws", "city": self.city}
        self.name = f"suggest [{self.city}]"
        self.sent: dict[int, float] = {}
        self.ids = itertools.count(1)
        self.bookmark: str | None = None

    def on_start(self) -> None:
        gevent.sleep(self.typist.rng.uniform(0, START_SPREAD_S))
        self._connect()

    def _connect(self) -> None:
        self.socket = self.connect()
        self.sent.clear()
        self.reader = gevent.spawn(self._read, self.socket)

    @task
    def type_a_query(self) -> None:
        if self.socket is None:
            self._connect()
        self.typist.type_one(self._suggest)

    def _suggest(self, prefix: str) -> None:
        socket = self.socket
        if socket is None:
            return
        request_id = next(self.ids)
        self.sent[request_id] = time.perf_counter()
        COUNTERS.suggest_sent += 1
        message: dict[str, Any] = {
            "type": "suggest",
            "id": request_id,
            "q": prefix,
            "limit": SETTINGS.limit,
        }
        if SETTINGS.session and self.bookmark:
            message["bookmark"] = self.bookmark
        try:
            socket.send(message)
        except (websocket.WebSocketException, OSError) as exc:
            fire(self, "WS", self.name, ms_since(self.sent.pop(request_id)), 0, self.ctx, exc)
            self.socket = None

    def _read(self, socket: Socket) -> None:
        while True:
            got = socket.recv()
            if got is None:
                if self.socket is socket:
                    self.socket = None
                return
            message, size = got
            started = self.sent.pop(message.get("id"), None)  # type: ignore[arg-type]
            if started is None:
                continue
            ms = ms_since(started)
            if message.get("type") == "suggestions":
                COUNTERS.suggest_answered += 1
                ctx = {**self.ctx, "peer": message.get("region", ""), "rung": rung(message)}
                if SETTINGS.session:
                    self.bookmark = newest(self.bookmark, message.get("bookmark"))
                mode = message.get("mode")
                error: Exception | None = None
                if SETTINGS.expect_mode and mode != SETTINGS.expect_mode:
                    COUNTERS.wrong_mode += 1
                    error = WrongMode(f"answered {mode}, expected {SETTINGS.expect_mode}")
                fire(self, "WS", self.name, ms, size, ctx, error)
            else:
                error = ServerError(f"{message.get('code')}: {message.get('message')}")
                fire(self, "WS", self.name, ms, size, self.ctx, error)
