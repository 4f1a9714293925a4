"""Prometheus metrics of the core, in a registry of its own (one per app instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.limits import ListenerMetrics
from shared.tasks import Drops, crash_counter

LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


class CoreMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Histogram(
            "lightcone_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.head_version = Gauge("lightcone_head_version", "Last committed version", registry=r)
        self.published_version = Gauge(
            "lightcone_published_version", "Last version published to edges", registry=r
        )
        self.edges = Gauge("lightcone_edges_connected", "Edges on the link", registry=r)
        self.deltas = Counter("lightcone_deltas_published", "Deltas published", registry=r)
        self.snapshot_bytes = Gauge(
            "lightcone_snapshot_bytes", "Size of the current base snapshot", registry=r
        )
        self.searches = Counter(
            "lightcone_searches_committed", "Logged searches committed", registry=r
        )
        self.pruned = Counter("lightcone_pruned", "Rows deleted by pruning", ["table"], registry=r)
        self.epoch_rotations = Counter(
            "lightcone_epoch_rotations", "Epochs rotated after a rollback was found", registry=r
        )
        self.write_seconds = Histogram(
            "lightcone_write_seconds",
            "Time to commit a write batch",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cursor_moves = Counter(
            "lightcone_cursor_moves", "Cursor positions received from edges", registry=r
        )
        self.cursor_relayed = Counter(
            "lightcone_cursor_relayed",
            "Tolerant cursor positions for other edges, by path: relayed by this core "
            "('core', one per receiving edge) or sent by their edge over the mesh ('mesh')",
            ["path"],
            registry=r,
        )
        self.link_messages = Counter(
            "lightcone_link_messages", "Messages received from edges", ["type"], registry=r
        )
        self.broker_up = Gauge(
            "lightcone_broker_up", "1 while the broker (Redis) is reachable", registry=r
        )
        self.broker_nodes = Gauge(
            "lightcone_broker_nodes", "Other core nodes heard from on the broker", registry=r
        )
        self.broker_published = Counter(
            "lightcone_broker_messages_published",
            "Messages published to the broker, by channel",
            ["channel"],
            registry=r,
        )
        self.broker_received = Counter(
            "lightcone_broker_messages_received",
            "Messages from the broker handed to a handler, by channel",
            ["channel"],
            registry=r,
        )
        self.broker_dropped = Counter(
            "lightcone_broker_messages_dropped",
            "Messages not published to the broker, by reason",
            ["reason"],
            registry=r,
        )
        self.task_crashes = crash_counter(r)
        self.drops = Drops(r)
        self.listener = ListenerMetrics.register(r)
