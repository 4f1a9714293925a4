"""People typing city names into a suggestion box, over HTTP and over the websocket."""

from __future__ import annotations

import itertools
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

from load.users.connection import Socket, WebsocketUser
from load.users.recording import COUNTERS, ServerError, WrongMode, fire, ms_since
from load.users.settings import SETTINGS, START_SPREAD_S, assign

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


def keystrokes(rng: random.Random, names: tuple[str, ...] = CITY_NAMES) -> list[str]:
    """One query as the prefixes a type-ahead box sees, one per keystroke.

    Half the people type the name as written, half in plain lower case; they stop somewhere
    after the third character, once the suggestion they want shows up.
    """
    name = rng.choice(names)
    text = name if rng.random() < 0.5 else plain(name)
    stop = rng.randint(min(3, len(text)), len(text))
    return [text[:n] for n in range(1, stop + 1)]


class Typist:
    """A person typing queries: one prefix per keystroke, think time between keys."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def key_pause(self) -> float:
        return self.rng.uniform(*SETTINGS.key_s)

    def query_pause(self) -> float:
        return self.rng.uniform(*SETTINGS.pause_s)

    def type_one(self, send: Callable[[str], None]) -> None:
        """Type one query: ``send`` each prefix, then pause as people read the list."""
        for prefix in keystrokes(self.rng):
            send(prefix)
            gevent.sleep(self.key_pause())
        gevent.sleep(self.query_pause())


_http_users = itertools.count()
_ws_users = itertools.count()


class SuggestHttpUser(FastHttpUser):
    """Types city names into a search box served by ``GET /suggest`` (see the module doc)."""

    concurrency = 16  # keystrokes whose answers are still in flight share these connections

    def __init__(self, environment: Any) -> None:
        self.index, self.city, self.host = assign(_http_users, environment.host)
        super().__init__(environment)
        self.typist = Typist(self.index)
        self.requests = Group()
        self.headers = (
            {"fly-prefer-region": SETTINGS.prefer_region} if SETTINGS.prefer_region else None
        )

    def context(self) -> dict[str, Any]:
        return {"kind": "suggest_http", "city": self.city}

    def on_start(self) -> None:
        gevent.sleep(self.typist.rng.uniform(0, START_SPREAD_S))  # people don't start at once

    def on_stop(self) -> None:
        self.requests.kill(block=False)

    @task
    def type_a_query(self) -> None:
        self.typist.type_one(lambda prefix: self.requests.spawn(self._suggest, prefix))

    def _suggest(self, prefix: str) -> None:
        COUNTERS.suggest_sent += 1
        path = f"/suggest?q={quote(prefix)}&limit={SETTINGS.limit}"
        with self.client.get(
            path, name=f"/suggest [{self.city}]", headers=self.headers, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
                return
            try:
                answer = response.json()
            except ValueError:
                response.failure(f"not JSON: {(response.text or '')[:200]}")
                return
            COUNTERS.suggest_answered += 1
            response.request_meta["context"]["peer"] = answer.get("region", "")
            mode = answer.get("mode")
            if SETTINGS.expect_mode and mode != SETTINGS.expect_mode:
                COUNTERS.wrong_mode += 1
                response.failure(WrongMode(f"answered {mode}, expected {SETTINGS.expect_mode}"))


class SuggestWsUser(WebsocketUser):
    """Types city names into a search box over the ``/ws`` websocket (see the module doc)."""

    def __init__(self, environment: Any) -> None:
        super().__init__(environment, _ws_users)
        self.typist = Typist(1_000_000 + self.index)
        self.ctx = {"kind": "suggest_ws", "city": self.city}
        self.name = f"suggest [{self.city}]"
        self.sent: dict[int, float] = {}
        self.ids = itertools.count(1)

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
        try:
            socket.send({"type": "suggest", "id": request_id, "q": prefix, "limit": SETTINGS.limit})
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
                ctx = {**self.ctx, "peer": message.get("region", "")}
                mode = message.get("mode")
                error: Exception | None = None
                if SETTINGS.expect_mode and mode != SETTINGS.expect_mode:
                    COUNTERS.wrong_mode += 1
                    error = WrongMode(f"answered {mode}, expected {SETTINGS.expect_mode}")
                fire(self, "WS", self.name, ms, size, ctx, error)
            else:
                error = ServerError(f"{message.get('code')}: {message.get('message')}")
                fire(self, "WS", self.name, ms, size, self.ctx, error)
