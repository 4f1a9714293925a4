"""locust users for lightcone: people typing into a suggestion box, and cursors in a room.

Imported by ``load/locustfile.py`` (after locust, so gevent has patched the standard library).
Every measurement goes through ``environment.events.request``, so locust's own statistics,
CSVs and HTML report are real; :class:`RawRecorder` also keeps each request's exact time.

Users:

* :class:`SuggestHttpUser` — types a city name a character at a time, with human think time
  between keystrokes, and sends ``GET /suggest?q=<prefix>`` on every keystroke without waiting
  for the previous answer (a type-ahead box does not wait either). Each answer's latency is
  timed from its own request.
* :class:`SuggestWsUser` — the same person over the ``/ws`` websocket (msgpack by default,
  ``lightcone.json`` with ``LIGHTCONE_CODEC=json``): ``suggest`` messages, answers matched by
  ``id``.
* :class:`CursorUser` — joins a room, moves at ``LIGHTCONE_MOVE_HZ`` (30) and records how long
  each *other* member's move took to reach it. Nothing is added to the protocol: every mover
  moves to coordinates that encode a counter, and keeps the send time of each position in an
  in-process registry keyed by (member id, x, y). All users run in one locust process, so
  sender and receiver share one clock (``time.perf_counter``).

Each user belongs to one *user city* (a label, e.g. ``syd``) and talks to that city's URL:
either ``--host`` with ``LIGHTCONE_CITY``, or one of several targets given in
``LIGHTCONE_TARGETS`` (``syd=http://...,lhr=http://...``), spread round-robin over users.
See ``docs/bench/README.md`` for every environment variable.
"""

from __future__ import annotations

import csv
import gzip
import itertools
import json
import os
import random
import resource
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import gevent
import msgpack  # type: ignore[import-untyped]
import websocket
from gevent.pool import Group
from locust import User, task
from locust.contrib.fasthttp import FastHttpUser
from locust.exception import StopUser

# --- what people type ----------------------------------------------------------------------

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


# --- settings from the environment ---------------------------------------------------------


def _range_ms(value: str, default: tuple[float, float]) -> tuple[float, float]:
    """``"120-280"`` → (0.12, 0.28) seconds; a single number is a fixed time."""
    if not value.strip():
        return default[0] / 1000, default[1] / 1000
    low, _, high = value.partition("-")
    a, b = float(low), float(high or low)
    if a < 0 or b < a:
        raise ValueError(f"bad range {value!r}: want MIN-MAX in ms, 0 <= MIN <= MAX")
    return a / 1000, b / 1000


def parse_targets(text: str) -> list[tuple[str, str]]:
    """``"syd=http://a,lhr=http://b"`` → [("syd", "http://a"), ("lhr", "http://b")]."""
    targets = []
    for item in text.split(","):
        if not item.strip():
            continue
        city, sep, url = item.partition("=")
        if not sep or not city.strip() or not url.strip():
            raise ValueError(f"LIGHTCONE_TARGETS: want city=url, got {item!r}")
        targets.append((city.strip(), url.strip().rstrip("/")))
    return targets


@dataclass(frozen=True)
class Settings:
    """What the users read from ``LIGHTCONE_*`` environment variables (see the module doc)."""

    targets: list[tuple[str, str]]
    city: str
    scenario: str
    expect_mode: str | None
    codec: str
    key_s: tuple[float, float]
    pause_s: tuple[float, float]
    move_hz: float
    room_size: int
    room_prefix: str
    prefer_region: str | None
    out_dir: Path | None
    limit: int

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        codec = env.get("LIGHTCONE_CODEC", "msgpack") or "msgpack"
        if codec not in ("msgpack", "json"):
            raise ValueError(f"LIGHTCONE_CODEC: msgpack or json, not {codec!r}")
        expect = env.get("LIGHTCONE_EXPECT_MODE") or None
        if expect not in (None, "tolerant", "strict"):
            raise ValueError(f"LIGHTCONE_EXPECT_MODE: tolerant or strict, not {expect!r}")
        out = env.get("LIGHTCONE_OUT_DIR")
        room_size = int(env.get("LIGHTCONE_ROOM_SIZE") or 8)
        move_hz = float(env.get("LIGHTCONE_MOVE_HZ") or 30)
        if room_size < 2 or move_hz <= 0:
            raise ValueError("LIGHTCONE_ROOM_SIZE must be >= 2 and LIGHTCONE_MOVE_HZ > 0")
        return cls(
            targets=parse_targets(env.get("LIGHTCONE_TARGETS", "")),
            city=env.get("LIGHTCONE_CITY") or "here",
            scenario=env.get("LIGHTCONE_SCENARIO") or "",
            expect_mode=expect,
            codec=codec,
            key_s=_range_ms(env.get("LIGHTCONE_KEY_MS", ""), (120, 280)),
            pause_s=_range_ms(env.get("LIGHTCONE_PAUSE_MS", ""), (500, 1500)),
            move_hz=move_hz,
            room_size=room_size,
            room_prefix=env.get("LIGHTCONE_ROOM_PREFIX")
            or f"bench-{os.getpid()}-{time.time():.0f}",
            prefer_region=env.get("LIGHTCONE_PREFER_REGION") or None,
            out_dir=Path(out) if out else None,
            limit=int(env.get("LIGHTCONE_LIMIT") or 10),
        )


SETTINGS = Settings.from_environ()


def assign(counter: Iterator[int], host: str | None) -> tuple[int, str, str]:
    """The next user's index, city and base URL (round-robin over the targets)."""
    n = next(counter)
    targets = SETTINGS.targets or [(SETTINGS.city, (host or "").rstrip("/"))]
    city, url = targets[n % len(targets)]
    if not url:
        raise StopUser("no target: pass --host (with LIGHTCONE_CITY) or LIGHTCONE_TARGETS")
    return n, city, url


def ws_url(base: str) -> str:
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + "/ws"
    return "ws://" + base.removeprefix("http://") + "/ws"


# --- raw per-request times -----------------------------------------------------------------


RAW_FIELDS = ("t_s", "kind", "city", "peer", "ms", "ok", "error")


@dataclass
class RawRecorder:
    """Every request's exact response time, kept in memory and written once at the end.

    locust buckets response times (1 ms under 100 ms, 10 ms above) before computing
    percentiles; the report computes its percentiles from these rows instead. Requests whose
    ``context`` has no ``kind`` (not ours) are kept with kind ``other``.
    """

    started: float = field(default_factory=time.time)
    rows: list[tuple[float, str, str, str, float, int, str]] = field(default_factory=list)
    closed: bool = False

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        response_length: int,
        exception: BaseException | None = None,
        context: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if self.closed or response_time is None:
            return
        ctx = context or {}
        self.rows.append(
            (
                time.time() - self.started,
                str(ctx.get("kind", "other")),
                str(ctx.get("city", "")),
                str(ctx.get("peer", "")),
                float(response_time),
                0 if exception else 1,
                "" if exception is None else f"{type(exception).__name__}: {exception}"[:200],
            )
        )

    def write(self, path: Path) -> None:
        self.closed = True
        path.parent.mkdir(parents=True, exist_ok=True)
        opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
        with opener(path, "wt", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(RAW_FIELDS)
            for t, kind, city, peer, ms, ok, error in self.rows:
                out.writerow((f"{t:.3f}", kind, city, peer, f"{ms:.3f}", ok, error))


@dataclass
class Counters:
    """Per-run counts the stats do not show (written to ``counters.json``)."""

    moves_sent: int = 0
    moves_seen: int = 0
    """Positions of other members received whose send time was known."""
    moves_unknown: int = 0
    """Positions of other members received with no known send time (should stay 0)."""
    suggest_sent: int = 0
    suggest_answered: int = 0
    wrong_mode: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


COUNTERS = Counters()


def fire(
    user: User,
    request_type: str,
    name: str,
    ms: float,
    length: int,
    context: dict[str, Any],
    exception: BaseException | None = None,
) -> None:
    user.environment.events.request.fire(
        request_type=request_type,
        name=name,
        response_time=ms,
        response_length=length,
        exception=exception,
        context=context,
    )


class WrongMode(Exception):
    """An answer served in another mode than the scenario expects (flag not applied)."""


class ServerError(Exception):
    """The server answered an ``error`` message."""


# --- a small websocket client on websocket-client (gevent-friendly) -------------------------


class Socket:
    """One ``/ws`` connection speaking msgpack (binary) or JSON (text)."""

    def __init__(self, base_url: str, codec: str, prefer_region: str | None) -> None:
        headers = [f"fly-prefer-region: {prefer_region}"] if prefer_region else None
        protocols = ["lightcone.json"] if codec == "json" else None
        self.json = codec == "json"
        self.ws = websocket.create_connection(
            ws_url(base_url),
            timeout=30,
            subprotocols=protocols,
            header=headers,
            skip_utf8_validation=True,
            enable_multithread=False,
        )
        self.ws.settimeout(None)

    def send(self, message: dict[str, Any]) -> None:
        if self.json:
            self.ws.send(json.dumps(message, separators=(",", ":")))
        else:
            self.ws.send_binary(msgpack.packb(message, use_bin_type=True))

    def recv(self) -> tuple[dict[str, Any], int] | None:
        """The next message and its size, or ``None`` once the connection is closed."""
        try:
            data = self.ws.recv()
        except (websocket.WebSocketConnectionClosedException, OSError):
            return None
        if not data:
            return None
        if isinstance(data, str):
            message = json.loads(data)
        else:
            message = msgpack.unpackb(data, raw=False)
        return (message, len(data)) if isinstance(message, dict) else ({}, len(data))

    def close(self) -> None:
        try:
            self.ws.close()
        except (websocket.WebSocketException, OSError):
            pass


# --- suggestions ---------------------------------------------------------------------------


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


START_SPREAD_S = 0.5
"""Users start within this long of each other, not in lockstep."""

_http_users = itertools.count()
_ws_users = itertools.count()
_cursor_users = itertools.count()


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


class SuggestWsUser(User):
    """Types city names into a search box over the ``/ws`` websocket (see the module doc)."""

    def __init__(self, environment: Any) -> None:
        self.index, self.city, self.base_url = assign(_ws_users, environment.host)
        super().__init__(environment)
        self.typist = Typist(1_000_000 + self.index)
        self.ctx = {"kind": "suggest_ws", "city": self.city}
        self.name = f"suggest [{self.city}]"
        self.sent: dict[int, float] = {}
        self.ids = itertools.count(1)
        self.socket: Socket | None = None
        self.reader: gevent.Greenlet | None = None

    def on_start(self) -> None:
        gevent.sleep(self.typist.rng.uniform(0, START_SPREAD_S))
        self._connect()

    def on_stop(self) -> None:
        if self.reader is not None:
            self.reader.kill(block=False)
        if self.socket is not None:
            self.socket.close()

    def _connect(self) -> None:
        started = time.perf_counter()
        ctx = {"kind": "connect", "city": self.city}
        try:
            self.socket = Socket(self.base_url, SETTINGS.codec, SETTINGS.prefer_region)
        except (websocket.WebSocketException, OSError) as exc:
            fire(self, "WS", f"connect [{self.city}]", _ms(started), 0, ctx, exc)
            raise StopUser() from exc
        fire(self, "WS", f"connect [{self.city}]", _ms(started), 0, ctx)
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
            fire(self, "WS", self.name, _ms(self.sent.pop(request_id)), 0, self.ctx, exc)
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
            ms = _ms(started)
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


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


# --- cursors -------------------------------------------------------------------------------

COORDS = 10001  # x and y are integers in 0..10000
KEEP_SENT_S = 10.0


@dataclass
class MoveRegistry:
    """Send times of every member's moves, shared by all users of this process.

    A mover's ``n``-th move goes to ``position(n)``, distinct for 10001² moves, so a receiver
    finds the send time of any position it is shown by (member id, x, y). Moves coalesced by
    the edge (two in one tick: only the latest is delivered) are never seen; their entries
    age out after ``KEEP_SENT_S``.
    """

    sent: dict[str, dict[tuple[int, int], float]] = field(default_factory=dict)
    order: dict[str, deque[tuple[float, tuple[int, int]]]] = field(default_factory=dict)
    city: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def position(n: int) -> tuple[int, int]:
        return n % COORDS, (n // COORDS) % COORDS

    def register(self, member_id: str, city: str) -> None:
        self.sent[member_id] = {}
        self.order[member_id] = deque()
        self.city[member_id] = city

    def forget(self, member_id: str) -> None:
        self.sent.pop(member_id, None)
        self.order.pop(member_id, None)

    def moved(self, member_id: str, xy: tuple[int, int], at: float) -> None:
        sent, order = self.sent[member_id], self.order[member_id]
        sent[xy] = at
        order.append((at, xy))
        while order and at - order[0][0] > KEEP_SENT_S:
            sent.pop(order.popleft()[1], None)

    def sent_at(self, member_id: str, xy: tuple[int, int]) -> float | None:
        return self.sent.get(member_id, {}).get(xy)


MOVES = MoveRegistry()


def room_of(index: int) -> str:
    """Consecutive users share a room; with round-robin cities a room mixes every city."""
    return f"{SETTINGS.room_prefix}-{index // SETTINGS.room_size}"


class CursorUser(User):
    """Joins a room, moves at ``LIGHTCONE_MOVE_HZ``, times the other members' moves."""

    def wait_time(self) -> float:
        """Paced at ``LIGHTCONE_MOVE_HZ`` on average, each interval ±25 %: a hand on a mouse
        is not a metronome, and a strictly periodic mover would see the same few phases of
        the edge's tick over and over instead of all of them."""
        self.next_move += self.rng.uniform(0.75, 1.25) / SETTINGS.move_hz
        return max(0.0, self.next_move - time.monotonic())

    def __init__(self, environment: Any) -> None:
        self.index, self.city, self.base_url = assign(_cursor_users, environment.host)
        super().__init__(environment)
        self.room = room_of(self.index)
        self.rng = random.Random(2_000_000 + self.index)
        self.moves = itertools.count(self.rng.randrange(COORDS * COORDS // 2))
        self.next_move = time.monotonic()
        self.me: str | None = None
        self.socket: Socket | None = None
        self.reader: gevent.Greenlet | None = None

    def on_start(self) -> None:
        gevent.sleep(self.rng.uniform(0, START_SPREAD_S))
        ctx = {"kind": "connect", "city": self.city}
        started = time.perf_counter()
        try:
            socket = Socket(self.base_url, SETTINGS.codec, SETTINGS.prefer_region)
        except (websocket.WebSocketException, OSError) as exc:
            fire(self, "WS", f"connect [{self.city}]", _ms(started), 0, ctx, exc)
            raise StopUser() from exc
        fire(self, "WS", f"connect [{self.city}]", _ms(started), 0, ctx)
        self._join(socket)
        self.next_move = time.monotonic()
        self.socket = socket
        self.reader = gevent.spawn(self._read, socket)

    def _join(self, socket: Socket) -> None:
        """Join the room and wait for ``presence`` (timed as a ``join`` request)."""
        name = f"bench {self.city} {self.index}"[:32]
        color = f"#{self.rng.randrange(0x1000000):06x}"
        ctx = {"kind": "join", "city": self.city}
        label = f"join [{self.city}]"
        started = time.perf_counter()
        socket.send({"type": "join", "room": self.room, "name": name, "color": color})
        error: Exception | None = None
        with gevent.Timeout(10, False):
            while True:
                got = socket.recv()
                if got is None:
                    error = ServerError("closed before presence")
                    break
                message, _ = got
                if message.get("type") == "error":
                    error = ServerError(f"{message.get('code')}: {message.get('message')}")
                    break
                if message.get("type") == "presence" and message.get("room") == self.room:
                    self.me = str(message["you"])
                    mode = message.get("mode")
                    if SETTINGS.expect_mode and mode != SETTINGS.expect_mode:
                        error = WrongMode(f"room in {mode}, expected {SETTINGS.expect_mode}")
                    break
        if self.me is None and error is None:
            error = ServerError("no presence within 10 s")
        fire(self, "CURSOR", label, _ms(started), 0, ctx, error)
        if self.me is None:
            socket.close()
            raise StopUser()
        MOVES.register(self.me, self.city)

    def on_stop(self) -> None:
        if self.reader is not None:
            self.reader.kill(block=False)
        if self.socket is not None:
            self.socket.close()
        if self.me is not None:
            MOVES.forget(self.me)

    @task
    def move(self) -> None:
        socket, me = self.socket, self.me
        if socket is None or me is None:
            raise StopUser()
        x, y = MOVES.position(next(self.moves))
        MOVES.moved(me, (x, y), time.perf_counter())
        COUNTERS.moves_sent += 1
        try:
            socket.send({"type": "move", "x": x, "y": y})
        except (websocket.WebSocketException, OSError) as exc:
            fire(self, "CURSOR", f"move [{self.city}]", 0.0, 0, {"city": self.city}, exc)
            raise StopUser() from exc

    def _read(self, socket: Socket) -> None:
        same = f"same-city [{self.city}]"
        cross = f"cross-city [{self.city}]"
        while True:
            got = socket.recv()
            if got is None:
                return
            message, size = got
            if message.get("type") != "moves":
                continue
            now = time.perf_counter()
            for move in message.get("moves", ()):
                member = move.get("id")
                if member == self.me:
                    continue
                at = MOVES.sent_at(member, (move.get("x"), move.get("y")))
                if at is None:
                    COUNTERS.moves_unknown += 1
                    continue
                COUNTERS.moves_seen += 1
                peer = MOVES.city.get(member, "")
                kind = "cursor_same" if peer == self.city else "cursor_cross"
                ctx = {"kind": kind, "city": self.city, "peer": peer}
                fire(
                    self,
                    "CURSOR",
                    same if kind == "cursor_same" else cross,
                    (now - at) * 1000,
                    size,
                    ctx,
                )


@dataclass
class CpuWatch:
    """This process's CPU during the test (``getrusage``): mean, and peak over 0.5 s windows.

    Measured from inside, so locust's start-up and its HTML report at exit do not count.
    """

    window_s: float = 0.5
    started: float = 0.0
    started_cpu: float = 0.0
    peak_pct: float = 0.0
    greenlet: gevent.Greenlet | None = None

    @staticmethod
    def cpu_s() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def start(self) -> None:
        self.started, self.started_cpu, self.peak_pct = time.time(), self.cpu_s(), 0.0
        self.greenlet = gevent.spawn(self._watch)

    def _watch(self) -> None:
        last_t, last_cpu = self.started, self.started_cpu
        while True:
            gevent.sleep(self.window_s)
            t, cpu = time.time(), self.cpu_s()
            if t - last_t > 0:
                self.peak_pct = max(self.peak_pct, 100 * (cpu - last_cpu) / (t - last_t))
            last_t, last_cpu = t, cpu

    def stop(self) -> dict[str, float]:
        if self.greenlet is not None:
            self.greenlet.kill(block=False)
        stopped = time.time()
        wall = max(stopped - self.started, 1e-9)
        return {
            "test_started_at": round(self.started, 3),
            "test_stopped_at": round(stopped, 3),
            "cpu_pct": round(100 * (self.cpu_s() - self.started_cpu) / wall, 1),
            "cpu_peak_pct": round(self.peak_pct, 1),
        }


def write_outputs(recorder: RawRecorder, extra: dict[str, float] | None = None) -> None:
    """Write ``raw.csv.gz`` and ``counters.json`` to ``LIGHTCONE_OUT_DIR`` (if set)."""
    if SETTINGS.out_dir is None or recorder.closed:
        recorder.closed = True
        return
    recorder.write(SETTINGS.out_dir / "raw.csv.gz")
    counters = {**COUNTERS.as_dict(), "raw_rows": len(recorder.rows), **(extra or {})}
    (SETTINGS.out_dir / "counters.json").write_text(json.dumps(counters, indent=2) + "\n")


__all__ = [
    "CursorUser",
    "RawRecorder",
    "SuggestHttpUser",
    "SuggestWsUser",
    "CpuWatch",
    "write_outputs",
]
