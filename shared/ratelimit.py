"""Token buckets for client rates. Pure: ``now`` is passed in.

* :class:`TokenBucket`: one client's rate (a websocket connection's messages).
* :class:`BucketTable`: a bucket per client address for HTTP requests, at most
  ``max_clients`` of them, least recently used dropped first.
"""

from __future__ import annotations

import collections

MAX_TRACKED_CLIENTS = 10_000
"""Most client addresses whose HTTP rate is remembered at once (a few MB of buckets). A
client pushed out of the table comes back with a full bucket: it can only gain a burst,
which an attacker who holds that many addresses has anyway."""


class TokenBucket:
    """Allows ``rate`` events per second on average and bursts of up to ``burst``."""

    __slots__ = ("_at", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._at = now

    def allow(self, now: float) -> bool:
        """Take one token if there is one (on every websocket message: kept lean)."""
        tokens = self._tokens + (now - self._at) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        self._at = now
        if tokens >= 1:
            self._tokens = tokens - 1
            return True
        self._tokens = tokens
        return False

    def wait(self, now: float) -> float:
        """Seconds from ``now`` until the next token (0.0 if there is one)."""
        tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        return max(0.0, (1 - tokens) / self.rate)


class BucketTable:
    """A :class:`TokenBucket` per client; at most ``max_clients`` are kept (LRU)."""

    def __init__(self, rate: float, burst: int, max_clients: int = MAX_TRACKED_CLIENTS) -> None:
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self._buckets: collections.OrderedDict[str, TokenBucket] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def retry_after(self, client: str, now: float) -> float:
        """Spend one of ``client``'s tokens: 0.0 if it had one, else the seconds until it
        has one again (and the request is refused, taking nothing)."""
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = self._buckets[client] = TokenBucket(self.rate, self.burst, now)
            if len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(client)
        return 0.0 if bucket.allow(now) else bucket.wait(now)
