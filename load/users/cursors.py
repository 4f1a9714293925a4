"""Cursors in a room: members that move and time every other member's moves they are shown."""

from __future__ import annotations

import itertools
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import gevent
import websocket
from locust import task
from locust.exception import StopUser

from edge_node.cursors.rooms import COORD_MAX, MAX_NAME_CHARS
from load.users.connection import Socket, WebsocketUser
from load.users.recording import COUNTERS, ServerError, WrongMode, fire, ms_since
from load.users.settings import SETTINGS, START_SPREAD_S

COORDS = COORD_MAX + 1
"""Positions per axis: x and y are integers in 0..COORD_MAX, the edge's bound."""
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


_cursor_users = itertools.count()


class CursorUser(WebsocketUser):
    """Joins a room, moves at ``LIGHTCONE_MOVE_HZ``, times the other members' moves."""

    def wait_time(self) -> float:
        """Paced at ``LIGHTCONE_MOVE_HZ`` on average, each interval ±25 %: a hand on a mouse
        is not a metronome, and a strictly periodic mover would see the same few phases of
        the edge's tick over and over instead of all of them."""
        self.next_move += self.rng.uniform(0.75, 1.25) / SETTINGS.move_hz
        return max(0.0, self.next_move - time.monotonic())

    def __init__(self, environment: Any) -> None:
        super().__init__(environment, _cursor_users)
        self.room = room_of(self.index)
        self.rng = random.Random(2_000_000 + self.index)
        self.moves = itertools.count(self.rng.randrange(COORDS * COORDS // 2))
        self.next_move = time.monotonic()
        self.me: str | None = None

    def on_start(self) -> None:
        gevent.sleep(self.rng.uniform(0, START_SPREAD_S))
        socket = self.connect()
        self._join(socket)
        self.next_move = time.monotonic()
        self.socket = socket
        self.reader = gevent.spawn(self._read, socket)

    def _join(self, socket: Socket) -> None:
        """Join the room and wait for ``presence`` (timed as a ``join`` request)."""
        name = f"bench {self.city} {self.index}"[:MAX_NAME_CHARS]
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
        fire(self, "CURSOR", label, ms_since(started), 0, ctx, error)
        if self.me is None:
            socket.close()
            raise StopUser()
        MOVES.register(self.me, self.city)

    def on_stop(self) -> None:
        super().on_stop()
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
