"""The suggestion replica fed snapshots, deltas and acks directly: compaction snapshots never
make it answer from older data, another epoch replaces everything, gaps ask for a resync, and
acks resolve the searches they name."""

from __future__ import annotations

import pytest

from edge_node.suggest.replica import ADVANCED, INSTALLED, NOTHING, UNSENDABLE, Outcome, Replica
from shared import snapshot
from shared.errors import BadRequest, Conflict
from shared.protocol import (
    ACK_ID_CONFLICT,
    ACK_INVALID,
    ACK_STORE_UNAVAILABLE,
    AckItem,
    Delta,
    SearchAcks,
    SearchItem,
    TermChange,
)
from shared.snapshot import Entry, SnapshotData

EPOCH = "db-1"


def snap(version: int, terms: dict[str, int]) -> SnapshotData:
    entries = [Entry(k, k.title(), w) for k, w in sorted(terms.items())]
    blob = snapshot.build(entries, version=version, hot={}, hot_threshold=64, depth=20)
    return snapshot.parse(blob)


def delta(start: int, key: str, weight: int, *, to: int | None = None) -> Delta:
    term = key.title() if weight else None
    return Delta(start, to if to is not None else start + 1, [TermChange(key, term, weight)])


def served(replica: Replica, limit: int = 10) -> list[str]:
    assert replica.index is not None
    return [e.term for e in replica.index.query("", limit)]


def replica_at_5() -> Replica:
    """Snapshot at 3 (paris), then deltas to 5 (lyon, nice)."""
    replica = Replica(outbox_max=10)
    replica.load(snap(3, {"paris": 10}), EPOCH)
    replica.apply(delta(3, "lyon", 20))
    replica.apply(delta(4, "nice", 30))
    return replica


# --- snapshots -------------------------------------------------------------------------------


def test_a_new_replica_serves_nothing_and_announces_nothing() -> None:
    """Before any snapshot: no index, version -1, no epoch, the core's head unknown."""
    replica = Replica(outbox_max=10)
    assert replica.index is None
    assert replica.version == -1 and replica.core_head == -1
    assert replica.hello() == (-1, "")


def test_the_first_snapshot_is_installed_and_announced() -> None:
    """It is served at once, and a new link says which version and database it holds."""
    replica = Replica(outbox_max=10)
    assert replica.load(snap(3, {"paris": 10}), EPOCH) == INSTALLED
    assert served(replica) == ["Paris"]
    assert replica.hello() == (3, EPOCH)
    assert replica.core_head == 3


def test_a_newer_snapshot_of_the_same_epoch_is_installed_at_once() -> None:
    """A snapshot at or past the served version replaces the index."""
    replica = replica_at_5()
    assert replica.load(snap(5, {"rome": 1}), EPOCH) == INSTALLED
    assert served(replica) == ["Rome"] and replica.version == 5


def test_an_older_compaction_snapshot_waits_until_it_has_caught_up() -> None:
    """While the deltas after a compaction snapshot replay, the replica keeps serving the
    newer index it had; it swaps once the new one reaches the same version."""
    replica = replica_at_5()
    current = replica.index
    assert replica.load(snap(3, {"paris": 10}), EPOCH) == NOTHING
    assert replica.index is current and replica.version == 5
    assert replica.apply(delta(3, "lyon", 20)) == NOTHING
    assert replica.index is current and replica.version == 5
    assert replica.apply(delta(4, "nice", 30)) == INSTALLED
    assert replica.index is not current and replica.version == 5
    assert served(replica) == ["Nice", "Lyon", "Paris"]
    assert replica.apply(delta(5, "rome", 40)) == ADVANCED  # the new index goes on
    assert served(replica, 1) == ["Rome"]


def test_an_empty_compaction_snapshot_also_waits_and_gets_the_deltas() -> None:
    """A snapshot of no terms is pending too (an empty index is still an index): the deltas
    go to it, not to the served index, and it is installed once caught up."""
    replica = replica_at_5()
    current = replica.index
    assert replica.load(snap(3, {}), EPOCH) == NOTHING
    assert replica.apply(delta(3, "lyon", 20)) == NOTHING
    assert replica.index is current
    assert replica.apply(delta(4, "nice", 30)) == INSTALLED
    assert served(replica) == ["Nice", "Lyon"]


def test_a_delta_past_the_served_version_installs_the_pending_snapshot() -> None:
    """A delta spanning versions can take the pending index past the served one."""
    replica = replica_at_5()
    replica.load(snap(3, {"paris": 10}), EPOCH)
    assert replica.apply(delta(3, "rome", 40, to=8)) == INSTALLED
    assert replica.version == 8 and served(replica) == ["Rome", "Paris"]


def test_a_second_compaction_snapshot_replaces_the_pending_one() -> None:
    """Only the newest pending snapshot catches up."""
    replica = replica_at_5()
    replica.load(snap(3, {"paris": 10}), EPOCH)
    replica.load(snap(4, {"paris": 10, "lyon": 20}), EPOCH)
    assert replica.apply(delta(3, "x", 1)).resync == 4  # the first one is gone
    assert replica.apply(delta(4, "nice", 30)) == INSTALLED


def test_a_snapshot_from_another_database_replaces_the_index_at_once() -> None:
    """A snapshot of another epoch is not a compaction: served at once, even if older, and the
    core's head is counted afresh from it."""
    replica = Replica(outbox_max=10)
    replica.load(snap(7, {"paris": 10}), EPOCH)
    assert replica.load(snap(2, {"elsewhere": 5}), "db-2") == INSTALLED
    assert replica.version == 2 and replica.core_head == 2
    assert served(replica) == ["Elsewhere"]
    assert replica.hello() == (2, "db-2")


def test_another_epoch_drops_a_pending_compaction_snapshot() -> None:
    """The new database's snapshot is served; deltas of the old one's pending index gap."""
    replica = replica_at_5()
    replica.load(snap(3, {"paris": 10}), EPOCH)
    replica.load(snap(1, {"rome": 1}), "db-2")
    assert replica.apply(delta(1, "oslo", 2)) == ADVANCED
    assert served(replica) == ["Oslo", "Rome"]


# --- deltas ----------------------------------------------------------------------------------


def test_a_delta_that_follows_advances_the_index() -> None:
    """The served index applies it in place; readers are woken."""
    replica = Replica(outbox_max=10)
    replica.load(snap(3, {"paris": 10}), EPOCH)
    current = replica.index
    assert replica.apply(delta(3, "paris", 0)) == ADVANCED  # a takedown
    assert replica.index is current and replica.version == 4
    assert served(replica) == []
    assert replica.core_head == 4


def test_a_delta_before_any_snapshot_is_ignored() -> None:
    """Hello said the replica holds nothing, so a snapshot is on its way."""
    replica = Replica(outbox_max=10)
    assert replica.apply(delta(3, "lyon", 20)) == NOTHING
    assert replica.index is None and replica.core_head == 4


@pytest.mark.parametrize("start", [2, 4, 9])
def test_a_delta_that_does_not_follow_is_a_gap(start: int) -> None:
    """Nothing is applied; the shell asks again from the served version."""
    replica = Replica(outbox_max=10)
    replica.load(snap(3, {"paris": 10}), EPOCH)
    step = replica.apply(delta(start, "lyon", 20))
    assert step.gap and step.resync == 3
    assert not step.advanced and not step.installed
    assert replica.version == 3 and served(replica) == ["Paris"]


def test_a_gap_in_the_pending_index_resyncs_from_its_version() -> None:
    """The pending compaction snapshot is what the deltas must follow."""
    replica = replica_at_5()
    replica.load(snap(3, {"paris": 10}), EPOCH)
    assert replica.apply(delta(5, "rome", 40)).resync == 3
    assert replica.version == 5


def test_a_new_link_resumes_the_pending_snapshot_s_catch_up() -> None:
    """Hello announces the version the next delta must follow: the pending index's. The
    served index stays until the pending one has caught up."""
    replica = replica_at_5()
    current = replica.index
    replica.load(snap(3, {"paris": 10}), EPOCH)
    replica.link_down()
    assert replica.hello() == (3, EPOCH)
    assert replica.apply(delta(3, "lyon", 20)) == NOTHING
    assert replica.index is current
    assert replica.apply(delta(4, "nice", 30)) == INSTALLED
    assert replica.hello() == (5, EPOCH)


def test_the_base_is_the_snapshot_the_next_delta_lands_on_grew_from() -> None:
    """Announced in hello (``bases``): the core sends its base again to an edge grown from
    another (its hot prefixes would be another base's)."""
    replica = Replica(outbox_max=10)
    assert replica.base() == -1
    replica = replica_at_5()
    assert replica.base() == 3 and replica.version == 5
    replica.load(snap(4, {"paris": 10, "lyon": 20}), EPOCH)  # a compaction, catching up
    assert replica.base() == 4
    replica.apply(delta(4, "nice", 30))
    assert replica.base() == 4 and replica.version == 5


# --- what the core says it has -----------------------------------------------------------------


def test_heard_versions_only_move_the_core_head_forward() -> None:
    """Heartbeats and synced answers: the head is the largest seen; whether the served index
    holds it says if the edge is current."""
    replica = Replica(outbox_max=10)
    assert not replica.heard(-1)  # no index: never current
    replica.load(snap(3, {"paris": 10}), EPOCH)
    assert replica.heard(3) and replica.core_head == 3
    assert not replica.heard(9) and replica.core_head == 9
    assert replica.heard(2) and replica.core_head == 9


# --- searches --------------------------------------------------------------------------------


def queued(*ids: str) -> Replica:
    replica = Replica(outbox_max=10)
    for search_id in ids:
        assert replica.outbox.add(SearchItem(search_id, f"q {search_id}"))
    replica.outbox.take(10)
    return replica


def test_acks_forget_the_searches_and_say_what_became_of_each() -> None:
    """One outcome per ack, in order; committed ones advance the core's head."""
    replica = queued("a", "b", "c")
    acks = SearchAcks([AckItem("b", 7), AckItem("a", None, ACK_INVALID), AckItem("c", 6)])
    assert replica.acked(acks) == [
        Outcome("b", 7),
        Outcome("a", None, ACK_INVALID),
        Outcome("c", 6),
    ]
    assert len(replica.outbox) == 0 and replica.core_head == 7


def test_searches_the_core_could_not_store_are_kept_and_sent_again_first() -> None:
    """``store_unavailable`` is not a refusal: the search stays queued, ahead of newer
    ones and in its order, and is taken again by the next batch."""
    replica = queued("a", "b", "c")
    assert replica.outbox.add(SearchItem("d", "q d"))
    acks = SearchAcks(
        [
            AckItem("a", None, ACK_STORE_UNAVAILABLE),
            AckItem("b", 4),
            AckItem("c", None, ACK_STORE_UNAVAILABLE),
        ]
    )
    outcomes = replica.acked(acks)
    assert [(o.id, o.kept) for o in outcomes] == [("a", True), ("b", False), ("c", True)]
    assert len(replica.outbox) == 3 and "b" not in replica.outbox
    assert [item.id for item in replica.outbox.take(10)] == ["a", "c", "d"]


def test_an_ack_of_an_unknown_id_is_harmless() -> None:
    """An ack of a search already forgotten (a resend) changes nothing else."""
    replica = queued("a")
    assert replica.acked(SearchAcks([AckItem("zzz", 3)])) == [Outcome("zzz", 3)]
    assert "a" in replica.outbox


def test_outcomes_say_what_the_waiting_writers_raise() -> None:
    """Committed: nothing; id reused: 409 Conflict; refused by the core: 400 ``rejected``."""
    assert Outcome("a", 4).failure() is None
    conflict = Outcome("a", None, ACK_ID_CONFLICT).failure()
    assert isinstance(conflict, Conflict) and conflict.code == "id_conflict"
    invalid = Outcome("a", None, ACK_INVALID).failure()
    assert isinstance(invalid, BadRequest) and invalid.code == "rejected"
    assert str(invalid) == ACK_INVALID
    unknown = Outcome("a", None).failure()
    assert isinstance(unknown, BadRequest) and str(unknown) == "refused"


def test_a_search_that_cannot_be_sent_is_dropped_alone() -> None:
    """Poison leaves the outbox; its writers hear ``rejected``; the others stay queued."""
    replica = queued("ok", "poison")
    outcome = replica.refuse(SearchItem("poison", "q"))
    assert outcome == Outcome("poison", None, UNSENDABLE)
    failure = outcome.failure()
    assert isinstance(failure, BadRequest) and failure.code == "rejected"
    assert "poison" not in replica.outbox and "ok" in replica.outbox


def test_a_dropped_link_sends_the_searches_in_flight_again() -> None:
    """Searches sent but not acknowledged are unsent again, ahead of newer ones."""
    replica = queued("a", "b")
    replica.outbox.add(SearchItem("c", "q c"))
    replica.link_down()
    assert [i.id for i in replica.outbox.take(10)] == ["a", "b", "c"]
