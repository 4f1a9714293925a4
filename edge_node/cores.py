"""Which core node an edge links to, and when it dials again: pure, ``now`` passed in.

``LIGHTCONE_CORE_URL`` names the core nodes: several base URLs separated by commas, or one
URL whose host name resolves to several addresses (Fly's ``<core-app>.internal`` lists every
running core Machine), or both. :func:`parse` checks the setting at start; before each dial
:func:`resolve` turns the URLs into *candidates*, one per address (IPv6 and IPv4, in the
resolver's order; an IP literal is its own single address), at most :data:`MAX_CANDIDATES`.

:class:`Failover` is the rule (docs/operations.md, "Failover between core nodes"):

* **Which one.** The edge dials the first candidate never yet failed, in order; when every
  one has failed, the one whose last failure is the oldest. So a node that just failed is
  last in line, never dialled first again while another is untried, and two nodes alternate.
* **When.** Before each dial after a failure, a delay of :func:`shared.tasks.backoff_s` (full
  jitter) over the failures since the last *healthy session*: one that kept hearing the core
  for ``healthy_after_s`` (the link timeout) after it opened. A link that opens and dies at
  once (a core that refuses the edge) is no healthy session, so it backs off like a failed
  dial. Dials start at least :data:`MIN_DIAL_GAP_S` apart whatever the jitter draws: at most
  10 per second, never a spin.

Resuming is the link's business, not this module's: ``hello`` carries each feature's
versions, so a node of the same database sends only what the edge lacks.
"""

from __future__ import annotations

import ipaddress
import itertools
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared.tasks import backoff_s

ENV = "LIGHTCONE_CORE_URL"

SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
"""The schemes a core URL may have, and the websocket scheme of its link."""

DEFAULT_PORTS = {"ws": 80, "wss": 443}

MAX_CORE_URLS = 16
"""URLs in ``LIGHTCONE_CORE_URL``; more is refused at start (a core region has a few nodes)."""

MAX_CANDIDATES = 32
"""Addresses the edge keeps from one resolution, all URLs together; the rest are left out
(logged). Bounds what :class:`Failover` remembers."""

MIN_DIAL_GAP_S = 0.1
"""Least time between the starts of two dials: at most 10 dials per second, whatever the
jitter draws and however fast a core refuses."""

Resolver = Callable[[str, int], Sequence[str]]
"""``(host, port)`` → its addresses, in the order to try them (``socket.getaddrinfo``'s);
raises :class:`OSError` when the name does not resolve."""


@dataclass(frozen=True, slots=True)
class Target:
    """One URL of ``LIGHTCONE_CORE_URL``."""

    url: str
    """As configured, without a trailing slash."""
    host: str
    """Host name or IP address (an IPv6 address without brackets)."""
    port: int
    link_url: str
    """The websocket URL of the node's link endpoint: ``http``→``ws``, ``https``→``wss``,
    and ``/link`` appended."""

    @property
    def literal(self) -> bool:
        """The host is an IP address: nothing to resolve."""
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True


@dataclass(frozen=True, slots=True)
class Candidate:
    """One core node the edge may dial: a URL at one of its addresses."""

    target: Target
    address: str

    @property
    def name(self) -> str:
        """The node as ``/status`` names it: the URL as configured when its host is an IP
        address, else the URL with the resolved address in place of the name."""
        if self.target.literal:
            return self.target.url
        parts = urlsplit(self.target.url)
        host = f"[{self.address}]" if ":" in self.address else self.address
        return parts._replace(netloc=f"{host}:{self.target.port}").geturl()


def parse(value: str) -> tuple[Target, ...]:
    """The core URLs of ``LIGHTCONE_CORE_URL`` (comma-separated).

    Raises:
        ValueError: the value is empty, has more than :data:`MAX_CORE_URLS` URLs, an empty
            entry or the same URL twice, or an entry that is not an ``http(s)://`` or
            ``ws(s)://`` URL with a host (and nothing else than a port and a path).
    """
    entries = [entry.strip() for entry in value.split(",")]
    if len(entries) > MAX_CORE_URLS:
        raise ValueError(
            f"Config {ENV!r} names {len(entries)} URLs; at most {MAX_CORE_URLS} are allowed."
        )
    if len(entries) > 1 and "" in entries:
        raise ValueError(f"Config {ENV!r} has an empty entry between commas, got {value!r}.")
    targets = tuple(_target(entry) for entry in entries)
    urls = [t.url for t in targets]
    for url in urls:
        if urls.count(url) > 1:
            raise ValueError(f"Config {ENV!r} names {url!r} twice.")
    return targets


def _target(entry: str) -> Target:
    fix = "e.g. http://127.0.0.1:8081, several separated by commas"
    parts = urlsplit(entry)
    scheme = SCHEMES.get(parts.scheme.lower()) if "://" in entry else None
    if scheme is None or not parts.hostname:
        raise ValueError(f"Config {ENV!r} must be an http(s) URL ({fix}), got {entry!r}.")
    if parts.username is not None or parts.query or parts.fragment:
        raise ValueError(
            f"Config {ENV!r} takes base URLs without credentials, query or fragment "
            f"(the link token goes in LIGHTCONE_LINK_TOKEN), got {entry!r}."
        )
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError(f"Config {ENV!r} has a bad port in {entry!r}.")
    port = port or DEFAULT_PORTS[scheme]
    url = entry.rstrip("/")
    link_url = scheme + url[len(parts.scheme) :] + "/link"
    return Target(url, parts.hostname, port, link_url)


def system_resolver(host: str, port: int) -> list[str]:
    """The IPv6 and IPv4 addresses of ``host`` from ``getaddrinfo`` (blocking: run it in a
    thread)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    families = (socket.AF_INET6, socket.AF_INET)
    return [str(info[4][0]) for info in infos if info[0] in families]


def resolve(targets: Sequence[Target], resolver: Resolver) -> tuple[list[Candidate], list[str]]:
    """The candidates of ``targets``, in order, each address once, at most
    :data:`MAX_CANDIDATES`; and what went wrong (a name that does not resolve, candidates
    left out), one line each, for the log."""
    found: dict[tuple[str, str], Candidate] = {}
    problems: list[str] = []
    for target in targets:
        if target.literal:
            addresses: Sequence[str] = [target.host]
        else:
            try:
                addresses = resolver(target.host, target.port)
            except OSError as exc:
                problems.append(f"cannot resolve {target.host!r} of {target.url}: {exc}")
                continue
            if not addresses:
                problems.append(f"{target.host!r} of {target.url} has no address")
        for address in addresses:
            found.setdefault((target.url, address), Candidate(target, address))
    candidates = list(found.values())
    if len(candidates) > MAX_CANDIDATES:
        left = len(candidates) - MAX_CANDIDATES
        problems.append(f"{left} core addresses left out (at most {MAX_CANDIDATES})")
        del candidates[MAX_CANDIDATES:]
    return candidates, problems


class Failover:
    """The failover rule (module doc). The shell calls, for each dial:
    :meth:`choose` → (:meth:`opened` → :meth:`heard` …) → :meth:`ended`, which says how long
    to wait before the next :meth:`choose`."""

    def __init__(
        self,
        *,
        min_s: float,
        max_s: float,
        healthy_after_s: float,
        min_gap_s: float = MIN_DIAL_GAP_S,
    ) -> None:
        self.min_s, self.max_s = min_s, max_s
        self.healthy_after_s = healthy_after_s
        self.min_gap_s = min_gap_s
        self.attempt = 0
        """Dials that failed (or sessions that ended unhealthy) since the last healthy
        session: the exponent of the backoff."""
        self.current: Candidate | None = None
        """The candidate being dialled or linked to (None while none is known)."""
        self._failed: dict[Candidate, int] = {}
        self._failures = itertools.count()
        self._dialed_at: float | None = None
        self._opened_at: float | None = None

    def order(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        """``candidates`` in the order to try them: never failed first (as given), then by
        oldest last failure."""
        rank = {c: i for i, c in enumerate(candidates)}
        return sorted(candidates, key=lambda c: (self._failed.get(c, -1), rank[c]))

    def choose(self, candidates: Sequence[Candidate], now: float) -> Candidate | None:
        """The candidate to dial now (None: there is none; call :meth:`ended` and wait).
        Failures of candidates no longer listed are forgotten (memory stays bounded)."""
        self._failed = {c: n for c, n in self._failed.items() if c in candidates}
        self._dialed_at = now
        self._opened_at = None
        order = self.order(candidates)
        self.current = order[0] if order else None
        return self.current

    def opened(self, now: float) -> None:
        """The link to the current candidate is open."""
        self._opened_at = now

    def heard(self, now: float) -> None:
        """A frame came from the core: once the session has lasted ``healthy_after_s``, it
        is healthy and the backoff starts afresh."""
        if self._opened_at is not None and now - self._opened_at >= self.healthy_after_s:
            self.attempt = 0

    def ended(self, now: float, jitter: float) -> float:
        """The dial failed or the link ended: the current candidate goes last in line.
        Returns the delay before the next :meth:`choose`.

        Args:
            jitter: a random number in [0, 1) (full jitter).
        """
        if self.current is not None:
            self._failed[self.current] = next(self._failures)
        delay = backoff_s(self.attempt, min_s=self.min_s, max_s=self.max_s, jitter=jitter)
        self.attempt += 1
        self._opened_at = None
        if self._dialed_at is not None:
            delay = max(delay, self._dialed_at + self.min_gap_s - now)
        return delay
