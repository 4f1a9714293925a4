"""The link protocol driven end to end through the pure cores, with no sockets.

The core side is the :class:`~core_region.suggest.catalog.Catalog` and the
:class:`~core_region.suggest.stream.Stream` wired as the core's suggestion feature
(:class:`core_region.suggest.feature.SuggestFeature`) wires them (publish, compaction in two
halves with writes in between, catch-up on hello and resync, epoch rotation), plus the store's
idempotent search log; the edge side is two
:class:`~edge_node.suggest.replica.Replica` objects. Every frame is encoded and decoded as on
the wire, and sits in a per-link queue until a rule delivers it, so hypothesis chooses the
interleaving: writes, publishes, compactions, deliveries, lost frames, cut links, reconnects,
restores to an older database.

Checked after every step: an edge's version never goes backwards within an epoch; every entry
an edge serves is the catalog's entry at the edge's version (never a state that did not exist);
the core's head as the edge knows it is a version the core has. After ``settle`` (everything in
flight delivered, searches sent): each connected edge is at the head and answers exactly what
the catalog serves, by key and for every prefix, and every search was counted once. (An edge
that missed the current base snapshot used to keep top lists the core stopped maintaining;
``hello.bases`` fixed it, and the regression test at the end replays the case.)
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from core_region.suggest.catalog import Catalog, Rules, TermRow
from core_region.suggest.stream import Stream
from edge_node.suggest.replica import Outcome, Replica
from shared import snapshot
from shared.protocol import (
    AckItem,
    Delta,
    Heartbeat,
    Message,
    Resync,
    SearchAcks,
    Searches,
    SearchItem,
    Snapshot,
    decode,
    encode,
)
from shared.snapshot import Entry, rank

KEYS = ["a", "ab", "abc", "abd", "ac", "b", "ba", "bab", "bb", "c"]
"""Keys sharing prefixes, so that some prefixes are hot (see THRESHOLD)."""
PREFIXES = sorted({k[:n] for k in KEYS for n in range(len(k) + 1)} | {"d"})
THRESHOLD = 2
"""A prefix with more than this many served completions gets a hot list."""
DEPTH = 2
"""Hot lists are this deep on the edges: queries are exact up to this limit."""
EDGES = 2
RULES = Rules(search_boost=5, min_searches=1)

edges = st.integers(0, EDGES - 1)
changes = st.lists(
    st.tuples(st.sampled_from(KEYS), st.integers(0, 60), st.booleans()), min_size=1, max_size=3
)
"""One commit: (key, base weight, blocked) rows."""


def send_up(message: Message) -> Message:
    """What the core reads of ``message`` sent by an edge."""
    return decode(encode(message))


@dataclass
class Link:
    """One edge's link: frames in flight each way (``None`` when the link is cut)."""

    down: deque[bytes] | None = None
    up: deque[bytes] = field(default_factory=deque)


class Core:
    """The core's pure pieces as the hub drives them, with the store's search log."""

    def __init__(self, rows: dict[str, TermRow], version: int, epoch: str) -> None:
        self.rows = dict(rows)
        self.epoch = epoch
        self.catalog = Catalog(
            rows.values(), version=version, rules=RULES, hot_threshold=THRESHOLD, depth=DEPTH
        )
        self.stream = Stream(merge_above=2)  # catch-up merges deltas early: exercised too
        self.building: tuple[int, dict[str, list[str]], bytes] | None = None
        self.committed: dict[str, tuple[int, str]] = {}  # search id -> (version, q)
        self.history: dict[int, dict[str, Entry]] = {version: self.served()}
        """The served entries at every version of this database (what an edge may serve)."""
        self.start_compaction()
        self.finish_compaction([])

    def served(self) -> dict[str, Entry]:
        return {e.key: e for e in self.catalog.entries()}

    def commit(self, rows: list[TermRow]) -> int:
        version = self.catalog.version + 1
        self.rows.update((r.key, r) for r in rows)
        self.catalog.apply(rows, version)
        self.history[version] = self.served()
        return version

    def publish(self, links: list[Link]) -> None:
        """Hub.publish: the pending delta, once encoded, to every connected edge."""
        delta = self.catalog.take_delta()
        if delta is None:
            return
        frame = encode(delta)
        self.stream.append(delta.from_version, delta.to_version, frame)
        for link in links:
            if link.down is not None:
                link.down.append(frame)

    def start_compaction(self) -> None:
        """The first half of Hub.rebase: publish, then build at the head (in a thread)."""
        version = self.catalog.version
        entries = self.catalog.entries()
        hot = self.catalog.compute_hot(entries)
        blob = snapshot.build(
            entries, version=version, hot=hot, hot_threshold=THRESHOLD, depth=DEPTH
        )
        self.building = (version, hot, blob)

    def finish_compaction(self, links: list[Link]) -> None:
        """The second half: adopt the lists, re-base the stream, send it to every edge."""
        assert self.building is not None
        version, hot, blob = self.building
        self.building = None
        self.catalog.install_hot(hot, version)
        self.stream.rebase(version, encode(Snapshot(version, blob, self.epoch)))
        for link in links:
            if link.down is not None:
                link.down.extend(self.stream.catch_up(-1))

    def rotate(self, epoch: str, links: list[Link]) -> None:
        """Hub.rotate_epoch: the base snapshot again under a new epoch, to every edge."""
        self.epoch = epoch
        self.publish(links)
        base = decode(self.stream.catch_up(-1)[0])
        assert isinstance(base, Snapshot)
        self.stream.rebase(base.version, encode(Snapshot(base.version, base.data, epoch)))
        for link in links:
            if link.down is not None:
                link.down.extend(self.stream.catch_up(-1))

    def hello(self, version: int, epoch: str, base: int, links: list[Link]) -> list[bytes]:
        """CoreNode.connect: what an edge holding ``version`` of ``epoch``, grown from the
        snapshot of version ``base``, is sent first."""
        if epoch == self.epoch and version > self.catalog.version:
            self.rotate(f"{self.epoch}+", links)
        if epoch != self.epoch:
            version = -1
        self.publish(links)
        frames = self.stream.catch_up(version, base if epoch == self.epoch else None)
        return [*frames, encode(Heartbeat(self.catalog.published))]

    def receive(self, message: Message, links: list[Link]) -> list[bytes]:
        """An edge's message (Hub.resync, Hub.log_searches): the frames that answer it."""
        if isinstance(message, Resync):
            self.publish(links)
            return self.stream.catch_up(message.version)
        assert isinstance(message, Searches)
        fresh = [s for s in message.searches if s.id not in self.committed]
        if fresh:
            version = self.catalog.version + 1
            for s in fresh:
                self.committed.setdefault(s.id, (version, s.q))
            rows: dict[str, TermRow] = {}
            for s in fresh:
                old = rows.get(s.q) or self.rows.get(s.q) or TermRow(s.q, s.q.upper(), 0, 0, False)
                rows[s.q] = TermRow(
                    old.key, old.term, old.base_weight, old.searches + 1, old.blocked
                )
            assert self.commit(list(rows.values())) == version
        acks = [AckItem(s.id, self.committed[s.id][0]) for s in message.searches]
        return [encode(SearchAcks(acks))]


class LinkProtocol(RuleBasedStateMachine):
    """The machine: one core, :data:`EDGES` edges, the frames between them."""

    @initialize(weights=st.lists(st.integers(0, 50), min_size=len(KEYS), max_size=len(KEYS)))
    def start(self, weights: list[int]) -> None:
        rows = {k: TermRow(k, k.upper(), w, 0, False) for k, w in zip(KEYS, weights, strict=True)}
        self.epochs = (f"db-{n}" for n in itertools.count(1))
        self.core = Core(rows, 1, next(self.epochs))
        self.replicas = [Replica(outbox_max=50) for _ in range(EDGES)]
        self.links = [Link() for _ in range(EDGES)]
        self.seen: list[tuple[str, int]] = [("", -1)] * EDGES
        self.search_ids = itertools.count()
        for edge in range(EDGES):
            self.reconnect(edge)

    # --- the core's side ----------------------------------------------------------------------

    @rule(changes=changes, publish=st.booleans())
    def commit(self, changes: list[tuple[str, int, bool]], publish: bool) -> None:
        """Admin writes (new terms, weight changes, 0: not served, takedowns); then maybe the
        publish timer fires, and a heartbeat goes out."""
        rows: dict[str, TermRow] = {}
        for key, weight, blocked in changes:
            old = self.core.rows.get(key) or TermRow(key, key.upper(), 0, 0, False)
            rows[key] = TermRow(key, old.term, weight, old.searches, blocked)
        self.core.commit(list(rows.values()))
        if publish:
            self.core.publish(self.links)
            frame = encode(Heartbeat(self.core.catalog.published))
            for link in self.links:
                if link.down is not None:
                    link.down.append(frame)

    @precondition(lambda self: self.core.building is None)
    @rule(during=st.lists(changes, max_size=3))
    def start_compaction(self, during: list[list[tuple[str, int, bool]]]) -> None:
        """A compaction starts; ``during`` are commits published while it builds."""
        self.core.publish(self.links)
        self.core.start_compaction()
        for batch in during:
            self.commit(batch, publish=True)

    @precondition(lambda self: self.core.building is not None)
    @rule()
    def finish_compaction(self) -> None:
        """The snapshot is built: the stream is re-based on it (sent to every edge)."""
        self.core.finish_compaction(self.links)

    @rule()
    def rotate_epoch(self) -> None:
        """A rollback found while running (Hub.rotate_epoch): same data, a new epoch."""
        self.core.rotate(next(self.epochs), self.links)

    @rule(back=st.integers(0, 4))
    def restart(self, back: int) -> None:
        """The core restarts and every link drops. ``back`` 0: on the same database (a
        deploy); its first snapshot is of the head. Else on a backup ``back`` versions old
        (a restore, always under a new epoch): edges must load its snapshot whatever they
        hold."""
        old = self.core
        if back == 0:
            self.core = Core(old.rows, old.catalog.version, old.epoch)
            self.core.committed, self.core.history = old.committed, old.history
        else:
            version = max(min(old.history), old.catalog.version - back)
            self.core = Core(self.core_rows_at(version), version, next(self.epochs))
        for edge in range(EDGES):
            self.cut(edge)

    def core_rows_at(self, version: int) -> dict[str, TermRow]:
        """Rows that serve what the core served at ``version`` (a backup of that time)."""
        served = self.core.history[version].values()
        return {e.key: TermRow(e.key, e.term, e.weight, 0, False) for e in served}

    # --- the links ------------------------------------------------------------------------------

    @rule(edge=edges)
    def cut(self, edge: int) -> None:
        """The link drops: frames in flight are lost, the edge requeues its searches."""
        link = self.links[edge]
        if link.down is None:
            return
        link.down, link.up = None, deque()
        self.replicas[edge].link_down()

    @rule(edge=edges)
    def reconnect(self, edge: int) -> None:
        """A new link: hello with what the edge holds; the core answers with the catch-up."""
        link = self.links[edge]
        if link.down is not None:
            return
        version, epoch = self.replicas[edge].hello()
        base = self.replicas[edge].base()
        link.down = deque(self.core.hello(version, epoch, base, self.links))

    @rule(edge=edges, count=st.integers(1, 6))
    def deliver(self, edge: int, count: int = 1) -> None:
        """The next frames to the edge, which may answer (a resync)."""
        link = self.links[edge]
        while link.down and count:
            self.edge_receives(edge, link.down.popleft())
            count -= 1

    @rule(edge=edges, at=st.integers(0, 20))
    def lose(self, edge: int, at: int) -> None:
        """A delta in flight is lost; a later delta or snapshot in the queue shows the gap."""
        down = self.links[edge].down
        if not down:
            return
        kinds = [type(decode(f)) for f in down]
        lost = [
            i
            for i, kind in enumerate(kinds)
            if kind is Delta and any(k in (Delta, Snapshot) for k in kinds[i + 1 :])
        ]
        if lost:
            del down[lost[at % len(lost)]]

    @rule(edge=edges)
    def core_reads(self, edge: int) -> None:
        """The core handles the edge's next message (a resync, a batch of searches)."""
        link = self.links[edge]
        if link.down is not None and link.up:
            message = send_up(decode(link.up.popleft()))
            link.down.extend(self.core.receive(message, self.links))

    @rule(edge=edges, key=st.sampled_from(KEYS), send=st.integers(0, 3))
    def search(self, edge: int, key: str, send: int) -> None:
        """A client searches at the edge; the edge sends up to ``send`` queued searches."""
        replica, link = self.replicas[edge], self.links[edge]
        replica.outbox.add(SearchItem(f"s{next(self.search_ids)}", key))
        if link.down is not None and (batch := replica.outbox.take(send)):
            link.up.append(encode(Searches(batch)))

    def edge_receives(self, edge: int, frame: bytes) -> None:
        """Upstream's dispatch, fed to the replica."""
        replica = self.replicas[edge]
        message = decode(frame, strict=False)
        if isinstance(message, Snapshot):
            replica.load(snapshot.parse(message.data), message.epoch)
        elif isinstance(message, Delta):
            step = replica.apply(message)
            if step.resync is not None:
                self.links[edge].up.append(encode(Resync(step.resync)))
        elif isinstance(message, Heartbeat):
            replica.heard(message.version)
        elif isinstance(message, SearchAcks):
            for outcome in replica.acked(message):
                assert outcome.failure() is None
                assert outcome == Outcome(outcome.id, self.core.committed[outcome.id][0])
        else:
            raise AssertionError(f"unexpected frame {message}")
        self.check_edges()  # after every frame, not only between steps (settle delivers many)

    # --- quiescence -------------------------------------------------------------------------

    @rule()
    def settle(self) -> None:
        """Deliver everything in flight, searches included; connected edges are then exact."""
        if self.core.building is not None:
            self.core.finish_compaction(self.links)
        self.core.publish(self.links)
        for edge, link in enumerate(self.links):
            if link.down is not None:
                while batch := self.replicas[edge].outbox.take(50):
                    link.up.append(encode(Searches(batch)))
        for _ in range(10_000):
            busy = [e for e, link in enumerate(self.links) if link.down or link.up]
            if not busy:
                break
            for edge in busy:
                self.deliver(edge)
                self.core_reads(edge)
            self.core.publish(self.links)
        else:
            raise AssertionError("the links never went quiet")
        catalog = self.core.catalog
        entries = catalog.entries()
        for edge, replica in enumerate(self.replicas):
            if self.links[edge].down is None:
                continue
            assert replica.hello() == (catalog.published, self.core.epoch)
            assert replica.index is not None and len(replica.outbox) == 0
            for key in KEYS:
                assert replica.index.get(key) == catalog.get(key), key
            for prefix in PREFIXES:
                own = [e for e in entries if e.key == prefix]  # the exact key ranks first
                ranked = sorted(
                    (e for e in entries if e.key.startswith(prefix) and e.key != prefix), key=rank
                )
                found = replica.index.query(prefix, DEPTH)
                assert [e for e in found if e.match == "prefix"] == (own + ranked)[:DEPTH], prefix
        counted: dict[str, int] = {}
        for _, q in self.core.committed.values():
            counted[q] = counted.get(q, 0) + 1
        # Searches since the last restore are counted once each, resent or not.
        assert all(self.core.rows[q].searches == n for q, n in counted.items())

    # --- invariants -------------------------------------------------------------------------

    @invariant()
    def check_edges(self) -> None:
        self.versions_never_go_back_within_an_epoch()
        self.edges_serve_only_states_that_existed()
        self.the_known_head_exists()

    def versions_never_go_back_within_an_epoch(self) -> None:
        """Answers never go back in time (a compaction snapshot waits until caught up)."""
        for edge, replica in enumerate(self.replicas):
            epoch, version = self.seen[edge]
            if replica.epoch == epoch:
                assert replica.version >= version, (edge, epoch, version, replica.version)
            self.seen[edge] = (replica.epoch, replica.version)

    def edges_serve_only_states_that_existed(self) -> None:
        """Each entry served at version v is the catalog's entry at v (deltas are atomic)."""
        for replica in self.replicas:
            if replica.index is None or replica.epoch != self.core.epoch:
                continue  # an older database: its states are gone with it
            state = self.core.history.get(replica.version)
            assert state is not None, f"v{replica.version} never existed"
            for key in KEYS:
                assert replica.index.get(key) == state.get(key), (replica.version, key)

    def the_known_head_exists(self) -> None:
        """Heartbeats, data and acks never make an edge believe in a version the core lacks."""
        for replica in self.replicas:
            if replica.epoch == self.core.epoch:
                assert replica.version <= replica.core_head <= self.core.catalog.version


# About 8 s on a quiet 2-core machine: 500 runs of up to 80 steps.
LinkProtocol.TestCase.settings = settings(
    max_examples=500, stateful_step_count=80, deadline=None, database=None
)
test_link_protocol = LinkProtocol.TestCase


def test_an_edge_that_missed_a_compaction_snapshot_answers_exactly() -> None:
    """Found by the machine above (fixed: ``hello`` says the edge's base snapshot, and the
    core sends the current base to an edge whose base is another).

    The edge reaches v2 by deltas, its link drops, and a compaction at v2 finds the prefix ""
    no longer hot (two completions, threshold 2). The edge reconnects at v2: the head, so it
    is sent nothing, and it keeps its list for "" ([bb, c]), which no delta maintains any
    more. ``a`` is served again at v3 (weight 1, ranking first by key): the edge still
    answered [BB, C] for "" instead of [A, BB]. A core restart on the same database did the
    same to every edge at the head (its first snapshot recomputes the hot prefixes).
    """
    machine = LinkProtocol()
    machine.start(weights=[1, 0, 0, 0, 0, 0, 0, 0, 1, 1])  # a, bb, c served; "" is hot
    machine.settle()
    machine.commit(changes=[("a", 0, False)], publish=True)
    machine.deliver(0, 6)
    machine.cut(0)
    machine.start_compaction(during=[])
    machine.finish_compaction()
    machine.reconnect(0)
    machine.commit(changes=[("a", 1, False)], publish=True)
    machine.settle()
    replica = machine.replicas[0]
    assert replica.index is not None
    assert [e.key for e in replica.index.query("", DEPTH)] == ["a", "bb"]


def test_a_lists_only_delta_is_not_replayed_after_a_snapshot_of_its_version() -> None:
    """Found by the machine (fixed in core_region/stream.py). A compaction at v1 ends with a
    delta 2->2 that only resends the list of "" ([bb, c]); a compaction at v2 finds "" no
    longer hot. The stream used to keep that delta and send it after the v2 snapshot, so
    edges held a list for "" that nothing maintained: once ``a`` was served again at v3 they
    answered [BB, C] instead of [A, BB]."""
    machine = LinkProtocol()
    machine.start(weights=[1, 0, 0, 0, 0, 0, 0, 0, 1, 1])  # a, bb, c served; "" is hot
    machine.start_compaction(during=[[("a", 0, False)]])
    machine.settle()  # the compaction at v1 finishes; its delta 2->2 goes out
    machine.start_compaction(during=[])
    machine.settle()
    machine.commit(changes=[("a", 1, False)], publish=False)
    machine.settle()
    for replica in machine.replicas:
        assert replica.index is not None
        assert [e.key for e in replica.index.query("", DEPTH)] == ["a", "bb"]
