"""The edge mesh's state, apart from any socket: who the peers are, which link may carry a
tick, who may connect. Pure and synchronous; ``now`` (monotonic seconds) is a parameter.

Peers (``LIGHTCONE_MESH_PEERS``): ``region=URL`` entries, or bare regions whose URL is
``LIGHTCONE_MESH_PEER_URL`` with ``{region}`` filled in (on Fly.io,
``ws://{region}.<app>.internal:<port>/mesh``: 6PN's DNS names the machines of a region). The
edge's own region may be listed (every edge can be given one list): it is skipped. Of each
pair, the edge whose region sorts first dials (:func:`shared.protocol.dials`); the other only
accepts, from any edge that presents the link token, up to ``max_peers`` links at once.

A link is *ready* for a tick's frame when both sides have heard each other within
``fresh_s`` (one heartbeat: each side beats twice per heartbeat, and each beat says how long
ago its sender last heard the other, so a cut in either direction is seen on both sides)
and its send queue has room. A link that is not ready is skipped: the tick goes to the core,
which relays it as it did before the mesh, and back to the mesh once the link is ready again.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.protocol import dials

MAX_PEER_FRAMES = 64
"""Frames waiting for one peer link (1.6 s of ticks at 25 ms). A link with half of them
queued is not ready: the next ticks go through the core until it drains."""

ADMITTED, SAME_REGION, WRONG_DIALER, FULL = "admitted", "same_region", "wrong_dialer", "full"


def parse_peers(text: str, own: str, template: str = "") -> dict[str, str]:
    """``LIGHTCONE_MESH_PEERS`` as ``{region: URL}``, without ``own``.

    Raises:
        ValueError: an entry without a URL and no template, an empty region, a region twice,
            or a URL that is not ``ws://`` or ``wss://``.
    """
    peers: dict[str, str] = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        region, eq, url = (part.strip() for part in entry.partition("="))
        if not eq:
            if not template:
                raise ValueError(
                    f"LIGHTCONE_MESH_PEERS entry {entry!r} has no URL and "
                    "LIGHTCONE_MESH_PEER_URL is empty"
                )
            url = template.replace("{region}", region)
        if not region:
            raise ValueError(f"LIGHTCONE_MESH_PEERS entry {entry!r} has no region")
        if region in peers:
            raise ValueError(f"LIGHTCONE_MESH_PEERS names region {region!r} twice")
        if not url.startswith(("ws://", "wss://")):
            raise ValueError(f"LIGHTCONE_MESH_PEERS URL {url!r} is not ws:// or wss://")
        if region != own:
            peers[region] = url
    return peers


@dataclass
class PeerLink:
    """One open mesh link, as the table sees it."""

    region: str
    edge_id: str
    heard_at: float
    peer_heard_ms: int = 0
    """How long ago the peer last heard this edge, by its latest beat."""
    beat_at: float = 0.0
    """When that beat came."""

    def heard(self, now: float) -> None:
        """A frame came from the peer."""
        self.heard_at = now

    def beat(self, heard_ms: int, now: float) -> None:
        """A beat came: the peer last heard this edge ``heard_ms`` before sending it."""
        self.heard_at = self.beat_at = now
        self.peer_heard_ms = heard_ms

    def ready(self, now: float, fresh_s: float, queued: int) -> bool:
        """May a tick's frame go this way (module doc)?"""
        return (
            now - self.heard_at <= fresh_s
            and now - self.beat_at <= fresh_s
            and self.peer_heard_ms <= fresh_s * 1000
            and queued <= MAX_PEER_FRAMES // 2
        )


class MeshTable:
    """The edge's peers and its open links; decides who may link and who is ready."""

    def __init__(self, region: str, peers: dict[str, str], *, max_peers: int) -> None:
        self.region = region
        self.peers = peers
        """Every configured peer: ``{region: URL}``."""
        self.max_peers = max_peers
        self.links: dict[str, PeerLink] = {}

    def dialed(self) -> dict[str, str]:
        """The peers this edge dials (the dial rule), at most ``max_peers`` of them."""
        ours = sorted(r for r in self.peers if dials(self.region, r))
        return {r: self.peers[r] for r in ours[: self.max_peers]}

    def admit(self, region: str) -> str:
        """May the edge of ``region``, which dialed this one, link now?

        :data:`ADMITTED`, or why not: :data:`SAME_REGION`, :data:`WRONG_DIALER` (this edge
        dials that one), :data:`FULL` (``max_peers`` links open, none of them that region's).
        """
        if region == self.region:
            return SAME_REGION
        if dials(self.region, region):
            return WRONG_DIALER
        if region not in self.links and len(self.links) >= self.max_peers:
            return FULL
        return ADMITTED

    def opened(self, region: str, edge_id: str, now: float) -> PeerLink:
        """A link to ``region`` is up (replacing any older one of that region)."""
        link = self.links[region] = PeerLink(region, edge_id, now, beat_at=now)
        return link

    def closed(self, link: PeerLink) -> bool:
        """``link`` ended; False if a newer link of its region had replaced it already."""
        if self.links.get(link.region) is not link:
            return False
        del self.links[link.region]
        return True

    def ready(self, now: float, fresh_s: float, queued: dict[str, int]) -> frozenset[str]:
        """The regions whose link may carry this tick's frame."""
        return frozenset(
            region
            for region, link in self.links.items()
            if link.ready(now, fresh_s, queued.get(region, 0))
        )

    def view(self, now: float, fresh_s: float, queued: dict[str, int]) -> dict[str, object]:
        """Each configured or linked peer for ``/status``: ``state`` (``up``, ``suspect``:
        open but not ready, ``down``), whether this edge ``dials`` it, ``heard_ms``."""
        ready = self.ready(now, fresh_s, queued)
        out: dict[str, object] = {}
        for region in sorted(set(self.peers) | set(self.links)):
            link = self.links.get(region)
            state = "down" if link is None else "up" if region in ready else "suspect"
            heard = None if link is None else int((now - link.heard_at) * 1000)
            out[region] = {
                "state": state,
                "dials": dials(self.region, region),
                "heard_ms": heard,
            }
        return out
