"""Prometheus metrics of an edge, in a registry of its own (one per app instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram

from core_region.metrics import LATENCY_BUCKETS
from shared.limits import ListenerMetrics
from shared.tasks import Drops, crash_counter


class EdgeMetrics:
    def __init__(self, region: str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Histogram(
            "lightcone_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ws_messages = Histogram(
            "lightcone_ws_message_seconds",
            "Websocket request latency",
            ["type"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.link_state = Enum(
            "lightcone_link_state",
            "State of the link to the core",
            states=["connecting", "up", "down"],
            registry=r,
        )
        self.version = Gauge("lightcone_data_version", "Data version served", registry=r)
        self.age = Gauge(
            "lightcone_data_age_seconds",
            "Time since the data was last confirmed current",
            registry=r,
        )
        self.outbox = Gauge("lightcone_outbox_depth", "Searches waiting for the core", registry=r)
        self.outbox_rejected = Counter(
            "lightcone_outbox_rejected", "Searches refused because the outbox was full", registry=r
        )
        self.strict_failures = Counter(
            "lightcone_strict_failures", "Reads refused for want of the core", ["code"], registry=r
        )
        self.core_round_trips = Counter(
            "lightcone_edge_core_round_trips",
            "Reads that waited for a round trip to the core, by feature and level served",
            ["feature", "level"],
            registry=r,
        )
        self.core_syncs = Counter(
            "lightcone_edge_core_syncs",
            "Syncs sent to the core; each serves every read waiting for it",
            registry=r,
        )
        self.snapshots = Counter("lightcone_snapshots_loaded", "Snapshots loaded", registry=r)
        self.gaps = Counter("lightcone_delta_gaps", "Gaps found in the delta stream", registry=r)
        self.typo_walks_capped = Counter(
            "lightcone_typo_walks_capped",
            "Suggestion queries whose typo search stopped at its cap (answered with what it found)",
            registry=r,
        )
        self.reconnects = Counter(
            "lightcone_link_reconnects", "Link reconnect attempts", registry=r
        )
        self.ws_errors = Counter(
            "lightcone_ws_errors", "Error messages sent to clients", ["code"], registry=r
        )
        self.origin_refused = Counter(
            "lightcone_ws_origin_refused",
            "Websocket handshakes refused (403) for an Origin not allowed",
            registry=r,
        )
        self.frames_dropped = Counter(
            "lightcone_ws_frames_dropped", "Cursor frames dropped for slow clients", registry=r
        )
        self.rooms = Gauge("lightcone_cursor_rooms", "Cursor rooms with local members", registry=r)
        self.members = Gauge(
            "lightcone_cursor_members", "Members (local and remote) in those rooms", registry=r
        )
        self.moves_in = Counter("lightcone_cursor_moves_in", "Moves from clients", registry=r)
        self.moves_refused = Counter(
            "lightcone_cursor_moves_refused", "Moves over the rate limit", registry=r
        )
        self.moves_out = Counter(
            "lightcone_cursor_moves_out", "Positions delivered to clients", registry=r
        )
        self.moves_up = Counter(
            "lightcone_cursor_moves_up", "Positions sent to the core", registry=r
        )
        self.moves_relayed = Counter(
            "lightcone_cursor_moves_relayed", "Positions relayed by the core", registry=r
        )
        self.moves_stale = Counter(
            "lightcone_cursor_moves_stale",
            "Remote positions not shown: already shown, older than one shown, or (mesh) not "
            "the peer's own member; by path",
            ["path"],
            registry=r,
        )
        self.mesh_links = Gauge("lightcone_mesh_links", "Edge mesh links open", registry=r)
        self.mesh_moves_sent = Counter(
            "lightcone_mesh_moves_sent", "Positions sent to peer edges (one per peer)", registry=r
        )
        self.mesh_moves_received = Counter(
            "lightcone_mesh_moves_received", "Positions received from peer edges", registry=r
        )
        self.mesh_frames_dropped = Counter(
            "lightcone_mesh_frames_dropped",
            "Mesh frames not sent: the peer's link gone or its queue full",
            registry=r,
        )
        self.mesh_refused = Counter(
            "lightcone_mesh_refused", "Mesh links refused, by reason", ["reason"], registry=r
        )
        self.frames_per_tick = Histogram(
            "lightcone_cursor_frames_per_tick",
            "Room frames sent per tick",
            buckets=(0, 1, 2, 5, 10, 20, 50, 100, 200, 500),
            registry=r,
        )
        self.tick_seconds = Histogram(
            "lightcone_cursor_tick_seconds",
            "CPU time of one tick",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.held_seconds = Histogram(
            "lightcone_cursor_held_seconds",
            "Tolerant same-edge delivery, server side: from a move's arrival to its frame",
            buckets=(
                0.001,
                0.0025,
                0.005,
                0.01,
                0.015,
                0.02,
                0.025,
                0.03,
                0.035,
                0.04,
                0.05,
                0.075,
                0.1,
                0.25,
            ),
            registry=r,
        )
        self.relay_seconds = Histogram(
            "lightcone_cursor_relay_seconds",
            "Strict mode: from sending a batch to the core to receiving it sequenced",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.task_crashes = crash_counter(r)
        self.drops = Drops(r)
        self.link_posts_dropped = Counter(
            "lightcone_link_posts_dropped",
            "Cursor messages dropped because the link's send queue was full",
            registry=r,
        )
        self.listener = ListenerMetrics.register(r)
        self.info = Gauge("lightcone_edge_info", "Edge identity", ["region"], registry=r)
        self.info.labels(region).set(1)
