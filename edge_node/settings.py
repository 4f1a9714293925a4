"""Settings of ``lightcone edge`` (each field: environment variable, default, meaning)."""

from __future__ import annotations

from dataclasses import dataclass

from edge_node import cores
from edge_node.mesh.peers import parse_peers
from edge_node.origins import OriginPolicy
from edge_node.suggest.caching import CachePolicy
from shared import roomtoken
from shared.config import positive, setting
from shared.settings import NodeSettings
from shared.text import MAX_TERM_CHARS

ROOM_AUTH_MODES = ("off", "token")


@dataclass(frozen=True, slots=True)
class EdgeSettings(NodeSettings):
    """``lightcone edge``'s settings; those the core declares too are in :class:`NodeSettings`
    (the listener's defaults there are the edge's)."""

    core_url: str = setting(
        "LIGHTCONE_CORE_URL",
        "",
        "Base URL of the core, e.g. http://127.0.0.1:8081 (required); several core nodes: "
        "URLs separated by commas, or one name that resolves to several addresses.",
    )
    stale_after_ms: int = setting(
        "LIGHTCONE_STALE_AFTER_MS",
        3000,
        "Answers are marked stale when the edge last confirmed its data longer ago than this.",
    )
    strict_timeout_ms: int = setting(
        "LIGHTCONE_STRICT_TIMEOUT_MS",
        1500,
        "Deadline of a read's round trip to the core (strict, bounded past its bound, a "
        "version or bookmark beyond the edge's data) before it fails with 503.",
    )
    syncs_in_flight: int = setting(
        "LIGHTCONE_SYNCS_IN_FLIGHT",
        64,
        "Most syncs the edge has in flight to the core at once; reads beyond them share the "
        "next one (at most this many syncs per link round trip, whatever the read rate).",
    )
    min_version_wait_ms: int = setting(
        "LIGHTCONE_MIN_VERSION_WAIT_MS",
        500,
        "How long a read with min_version or a bookmark waits for the delta before asking "
        "the core.",
    )
    write_timeout_ms: int = setting(
        "LIGHTCONE_WRITE_TIMEOUT_MS",
        2000,
        "How long a logged search waits for the core's commit before it is answered 'queued'.",
    )
    breaker_failures: int = setting(
        "LIGHTCONE_BREAKER_FAILURES",
        3,
        "Consecutive failed strict round trips that open the circuit breaker.",
    )
    breaker_reset_s: float = setting(
        "LIGHTCONE_BREAKER_RESET_S", 5.0, "How long the breaker stays open before a trial."
    )
    outbox_max: int = setting(
        "LIGHTCONE_OUTBOX_MAX",
        10000,
        "Searches the edge holds for the core; beyond it new searches get 503 outbox_full.",
    )
    reconnect_min_s: float = setting(
        "LIGHTCONE_RECONNECT_MIN_S", 0.1, "First reconnect delay (doubles, with full jitter)."
    )
    reconnect_max_s: float = setting("LIGHTCONE_RECONNECT_MAX_S", 5.0, "Longest reconnect delay.")
    max_query_chars: int = setting(
        "LIGHTCONE_MAX_QUERY_CHARS", 100, "Longest query or logged search, in characters."
    )
    max_frame_bytes: int = setting(
        "LIGHTCONE_MAX_FRAME_BYTES", 65536, "Largest websocket message from a client."
    )
    max_body_bytes: int = setting("LIGHTCONE_MAX_BODY_BYTES", 4096, "Largest HTTP request body.")
    max_snapshot_bytes: int = setting(
        "LIGHTCONE_MAX_SNAPSHOT_BYTES", 256 << 20, "Largest message the edge accepts from the core."
    )
    ws_rate: float = setting(
        "LIGHTCONE_WS_RATE", 200.0, "Messages per second a client websocket may send (sustained)."
    )
    ws_burst: int = setting(
        "LIGHTCONE_WS_BURST", 400, "Messages a client websocket may send in a burst."
    )

    tick_ms: int = setting(
        "LIGHTCONE_TICK_MS", 25, "Cursor fan-out tick: one frame per room per tick at most."
    )
    max_room_members: int = setting(
        "LIGHTCONE_MAX_ROOM_MEMBERS", 200, "Members in one room, across all edges."
    )
    max_rooms_per_conn: int = setting(
        "LIGHTCONE_MAX_ROOMS_PER_CONN", 4, "Rooms one client connection may join."
    )
    max_queued_frames: int = setting(
        "LIGHTCONE_MAX_QUEUED_FRAMES",
        64,
        "Frames waiting for a slow client before cursor frames are dropped (latest-only).",
    )

    max_rooms: int = setting(
        "LIGHTCONE_MAX_ROOMS", 10000, "Cursor rooms this edge hosts; beyond it joins get edge_full."
    )
    max_edge_members: int = setting(
        "LIGHTCONE_MAX_EDGE_MEMBERS",
        50000,
        "Local members across all rooms of this edge; beyond it joins get edge_full.",
    )

    trust_client_ip_header: str | None = setting(
        "LIGHTCONE_TRUST_CLIENT_IP_HEADER",
        None,
        "Request header that carries the client address, set by a proxy in front of the edge "
        "(e.g. Fly-Client-IP); unset: the peer address is the client. Never set it without "
        "such a proxy: clients could pick their own address.",
    )

    socket_sndbuf: int = setting(
        "LIGHTCONE_SOCKET_SNDBUF",
        0,
        "Kernel send buffer of each client connection in bytes; 0 keeps the OS autotuning.",
    )

    http_cache_max_age_s: int = setting(
        "LIGHTCONE_HTTP_CACHE_MAX_AGE_S",
        1,
        "max-age of a tolerant GET /suggest answer for caches in front of the edge (a PoP), "
        "and the longest max-age of a bounded one; 0: tolerant answers are not cached.",
    )
    http_cache_swr_s: int = setting(
        "LIGHTCONE_HTTP_CACHE_SWR_S",
        2,
        "stale-while-revalidate of a tolerant GET /suggest answer: a cache may serve it this "
        "long past max-age while it fetches a fresh one.",
    )
    http_cache_sie_s: int = setting(
        "LIGHTCONE_HTTP_CACHE_SIE_S",
        10,
        "stale-if-error of a tolerant GET /suggest answer: a cache may serve it this long past "
        "max-age while the edge cannot be reached or answers an error.",
    )

    ws_allowed_origins: str = setting(
        "LIGHTCONE_WS_ALLOWED_ORIGINS",
        "loopback",
        "Web pages that may open /ws, besides the edge's own origin: comma-separated origins "
        "(https://app.example.com), 'loopback' (pages on localhost), or '*' (any). A client "
        "that sends no Origin is not a browser page and is always let in.",
    )
    room_auth: str = setting(
        "LIGHTCONE_ROOM_AUTH",
        "off",
        "'off': anyone may join any room under any name; 'token': a join needs a room token "
        "signed with LIGHTCONE_ROOM_SECRET for its room, name and session.",
    )
    room_secret_previous: str | None = setting(
        "LIGHTCONE_ROOM_SECRET_PREVIOUS",
        None,
        "The secret before the last rotation: its tokens are still accepted.",
    )

    mesh: bool = setting(
        "LIGHTCONE_MESH",
        True,
        "The edge mesh for tolerant cursor rooms (docs/operations.md, 'Edge mesh'); off: no "
        "mesh listener, no peer dialed, every move relayed by the core.",
    )
    mesh_peers: str = setting(
        "LIGHTCONE_MESH_PEERS",
        "",
        "The peer edges: comma-separated region=ws://host:port/mesh, or bare regions with "
        "LIGHTCONE_MESH_PEER_URL; this edge's own region is skipped. Empty: no peer dialed.",
    )
    mesh_peer_url: str = setting(
        "LIGHTCONE_MESH_PEER_URL",
        "",
        "URL of a peer listed by region alone, '{region}' filled in (on Fly.io "
        "ws://{region}.<app>.internal:8090/mesh).",
    )
    mesh_host: str = setting(
        "LIGHTCONE_MESH_HOST",
        "127.0.0.1",
        "Address of the mesh listener: a private one only (fly-local-6pn on Fly.io).",
    )
    mesh_port: int | None = setting(
        "LIGHTCONE_MESH_PORT",
        None,
        "TCP port of the mesh listener (0: any free one, shown in /status); unset: none, the "
        "edge only dials.",
    )
    mesh_max_peers: int = setting(
        "LIGHTCONE_MESH_MAX_PEERS",
        16,
        "Mesh links open at once (dialed and accepted); beyond it a dialing peer is refused "
        "(close 1013) and its rooms go through the core.",
    )

    demo_control_url: str = setting(
        "LIGHTCONE_DEMO_CONTROL_URL",
        "",
        "Local demo only (set by lightcone up): the control API the page uses to flip flags "
        "and partitions. Empty in deployments: the page then shows flags read-only.",
    )

    def __post_init__(self) -> None:
        NodeSettings.__post_init__(self)
        cores.parse(self.core_url)  # a URL that does not parse stops the start
        positive(self, "max_query_chars", "outbox_max", "ws_rate", "ws_burst")
        positive(self, "breaker_failures", "tick_ms", "max_room_members", "syncs_in_flight")
        positive(self, "max_rooms_per_conn", "max_queued_frames", "max_rooms", "max_edge_members")
        if self.max_query_chars > MAX_TERM_CHARS:
            raise ValueError(
                f"Config 'LIGHTCONE_MAX_QUERY_CHARS' must be at most {MAX_TERM_CHARS}, the "
                "longest term the core stores."
            )
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError(
                "Config 'LIGHTCONE_RECONNECT_MIN_S' must not exceed LIGHTCONE_RECONNECT_MAX_S."
            )
        for name in ("http_cache_max_age_s", "http_cache_swr_s", "http_cache_sie_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"Config 'LIGHTCONE_{name.upper()}' must not be negative.")
        self.origin_policy()  # a value that does not parse stops the start
        self.mesh_peer_map()  # likewise
        positive(self, "mesh_max_peers")
        if self.mesh_port is not None and not 0 <= self.mesh_port <= 65535:
            raise ValueError("Config 'LIGHTCONE_MESH_PORT' must be in 0..65535.")
        self._check_room_auth()

    def _check_room_auth(self) -> None:
        if self.room_auth not in ROOM_AUTH_MODES:
            raise ValueError(
                f"Config 'LIGHTCONE_ROOM_AUTH' must be one of {', '.join(ROOM_AUTH_MODES)}, "
                f"got {self.room_auth!r}."
            )
        if self.room_auth == "token" and not self.room_secret:
            raise ValueError("Config 'LIGHTCONE_ROOM_SECRET' is required with ROOM_AUTH=token.")
        if self.room_secret_previous:
            roomtoken.check_secret(
                self.room_secret_previous, "Config 'LIGHTCONE_ROOM_SECRET_PREVIOUS'"
            )

    def cache_policy(self) -> CachePolicy:
        """How long caches in front of the edge may serve a tolerant ``/suggest`` answer."""
        return CachePolicy(self.http_cache_max_age_s, self.http_cache_swr_s, self.http_cache_sie_s)

    def origin_policy(self) -> OriginPolicy:
        """Who may open ``/ws`` (parsed from LIGHTCONE_WS_ALLOWED_ORIGINS).

        Raises:
            ValueError: an entry is not ``*``, ``loopback`` or an origin.
        """
        return OriginPolicy.parse(self.ws_allowed_origins, "LIGHTCONE_WS_ALLOWED_ORIGINS")

    def mesh_peer_map(self) -> dict[str, str]:
        """The peers of LIGHTCONE_MESH_PEERS, ``{region: URL}`` without this edge's region.

        Raises:
            ValueError: an entry that does not parse (:func:`edge_node.mesh.peers.parse_peers`).
        """
        return parse_peers(self.mesh_peers, self.region, self.mesh_peer_url)

    @property
    def mesh_on(self) -> bool:
        """Does this edge take part in a mesh (on, and a listener or a peer to dial)?"""
        return self.mesh and (self.mesh_port is not None or bool(self.mesh_peers))

    @property
    def room_secrets(self) -> tuple[str, ...] | None:
        """The secrets a room token may be signed with, or None when joins need no token."""
        if self.room_auth != "token" or not self.room_secret:
            return None
        return tuple(s for s in (self.room_secret, self.room_secret_previous) if s)

    @property
    def core_targets(self) -> tuple[cores.Target, ...]:
        """The core nodes of LIGHTCONE_CORE_URL, in order (:func:`edge_node.cores.parse`)."""
        return cores.parse(self.core_url)
