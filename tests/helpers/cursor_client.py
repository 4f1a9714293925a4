"""A cursor client for e2e tests: joins a room over /ws and keeps the view it is told.

A reader task applies ``presence``/``joined``/``left`` to :attr:`CursorClient.members`,
records every ``moves`` frame with its arrival time, and wakes waiters on every message, so
tests wait for conditions (with deadlines) rather than sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from websockets.asyncio.client import ClientConnection, connect

from shared.protocol import (
    Error,
    Join,
    Joined,
    Leave,
    Left,
    Member,
    Message,
    Move,
    Moves,
    Ping,
    Presence,
    RoomStatus,
    decode,
    encode,
)

T = TypeVar("T")


@dataclass
class Received:
    at: float
    message: Message


@dataclass
class CursorClient:
    url: str
    name: str
    ws: ClientConnection | None = None
    you: str = ""
    mode: str = ""
    members: dict[str, Member] = field(default_factory=dict)
    moves: list[Received] = field(default_factory=list)
    statuses: list[RoomStatus] = field(default_factory=list)
    errors: list[Error] = field(default_factory=list)
    log: list[Received] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _pinger: asyncio.Task[None] | None = None

    async def open(self, **kwargs: Any) -> CursorClient:
        self.ws = await connect(self.url.replace("http://", "ws://") + "/ws", **kwargs)
        self._tasks.append(asyncio.create_task(self._read()))
        return self

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.ws is not None:
            await self.ws.close()

    async def send(self, message: Message) -> None:
        assert self.ws is not None
        await self.ws.send(encode(message))

    async def join(self, room: str, session: str | None = None) -> None:
        await self.send(Join(room, self.name, "#3366ff", session))
        await self.wait_for(lambda: self.you != "", 5, "presence after join")

    async def move(self, x: int, y: int) -> float:
        """Send a move; returns the time it was sent."""
        sent = time.monotonic()
        await self.send(Move(x, y))
        return sent

    def keep_alive(self, every_s: float) -> None:
        """Ping in the background so a short presence timeout does not remove this client."""

        async def ping() -> None:
            while True:
                await self.send(Ping())
                await asyncio.sleep(every_s)

        self._pinger = asyncio.create_task(ping())
        self._tasks.append(self._pinger)

    def stop_keep_alive(self) -> None:
        if self._pinger is not None:
            self._pinger.cancel()

    async def send_leave(self) -> None:
        await self.send(Leave())

    async def _read(self) -> None:
        assert self.ws is not None
        async for data in self.ws:
            assert isinstance(data, bytes)
            message = decode(data)
            now = time.monotonic()
            async with self._changed:
                self._apply(message, now)
                self._changed.notify_all()

    def _apply(self, message: Message, now: float) -> None:
        self.log.append(Received(now, message))
        if isinstance(message, Presence):
            self.you = message.you
            self.mode = message.mode
            self.members = {m.id: m for m in message.members}
        elif isinstance(message, Joined):
            self.members[message.member.id] = message.member
        elif isinstance(message, Left):
            self.members.pop(message.id, None)
        elif isinstance(message, Moves):
            self.moves.append(Received(now, message))
        elif isinstance(message, RoomStatus):
            self.statuses.append(message)
            self.mode = message.mode
        elif isinstance(message, Error):
            self.errors.append(message)

    async def wait_for(self, check: Callable[[], T], timeout_s: float, what: str) -> T:
        """The first truthy ``check()``, re-evaluated on every message received."""
        try:
            async with asyncio.timeout(timeout_s):
                async with self._changed:
                    return await self._changed.wait_for(check)
        except TimeoutError:
            raise AssertionError(f"{self.name}: not within {timeout_s} s: {what}") from None

    async def seen(self, member_id: str, x: int, y: int, timeout_s: float = 5) -> float:
        """Wait until a ``moves`` frame put ``member_id`` at (x, y); when it arrived."""
        at = await self.wait_for(
            lambda: self.saw_position(member_id, x, y), timeout_s, f"{member_id} at {x},{y}"
        )
        assert at is not None
        return at

    def in_mode(self, mode: str) -> bool:
        return self.mode == mode

    def names(self) -> set[str]:
        return {m.name for m in self.members.values()}

    def saw_position(self, member_id: str, x: int, y: int) -> float | None:
        """When a ``moves`` frame put ``member_id`` at (x, y), if one did."""
        for received in self.moves:
            assert isinstance(received.message, Moves)
            for p in received.message.moves:
                if (p.id, p.x, p.y) == (member_id, x, y):
                    return received.at
        return None
