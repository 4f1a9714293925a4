"""The outbox: bounded, no duplicates, oldest first, in-flight items requeued first."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from edge_node.suggest.outbox import HOLD_S, Outbox
from shared.errors import Conflict
from shared.protocol import SearchItem


def item(n: int) -> SearchItem:
    return SearchItem(f"s{n}", f"query {n}")


def ids(items: list[SearchItem]) -> list[str]:
    return [i.id for i in items]


def test_new_outbox_is_empty() -> None:
    """Nothing queued, nothing unsent, nothing to take."""
    outbox = Outbox(3)
    assert len(outbox) == 0
    assert not outbox.has_unsent
    assert outbox.take(10) == []


def test_add_refuses_when_full() -> None:
    """Beyond ``capacity`` add returns False and the outbox keeps what it had."""
    outbox = Outbox(2)
    assert outbox.add(item(1))
    assert outbox.add(item(2))
    assert not outbox.add(item(3))
    assert len(outbox) == 2
    assert "s3" not in outbox
    assert ids(outbox.take(10)) == ["s1", "s2"]


def test_in_flight_items_count_against_capacity() -> None:
    """Taken but unacknowledged items still occupy the outbox."""
    outbox = Outbox(2)
    outbox.add(item(1))
    outbox.add(item(2))
    outbox.take(2)
    assert not outbox.add(item(3))
    outbox.ack("s1")
    assert outbox.add(item(3))


def test_duplicate_id_is_accepted_once() -> None:
    """Adding a queued id again with the same query succeeds without a second copy, even
    when full (whatever its source: a client may resend from another address)."""
    outbox = Outbox(1)
    assert outbox.add(item(1))
    assert outbox.add(SearchItem("s1", "query 1", "another source"))
    assert len(outbox) == 1
    assert outbox.take(5) == [item(1)]


@pytest.mark.parametrize("sent", [False, True])
def test_queued_id_with_another_query_is_a_conflict(sent: bool) -> None:
    """A queued (or in-flight) id sent again with another query raises Conflict (409
    ``id_conflict``); the first search stays queued as it was."""
    outbox = Outbox(5)
    outbox.add(item(1))
    if sent:
        outbox.take(1)
    with pytest.raises(Conflict) as refused:
        outbox.add(SearchItem("s1", "other text"))
    assert (refused.value.status, refused.value.code) == (409, "id_conflict")
    assert len(outbox) == 1
    outbox.requeue()
    assert outbox.take(5) == [item(1)]


def test_duplicate_of_an_in_flight_id_is_not_queued_again() -> None:
    """An id already sent and not yet acknowledged is not queued a second time."""
    outbox = Outbox(5)
    outbox.add(item(1))
    outbox.take(1)
    assert outbox.add(item(1))
    assert len(outbox) == 1
    assert not outbox.has_unsent
    assert outbox.take(5) == []


def test_take_returns_oldest_first_up_to_max() -> None:
    """take hands out unsent items in arrival order, ``max_items`` at a time."""
    outbox = Outbox(10)
    for n in range(5):
        outbox.add(item(n))
    assert ids(outbox.take(2)) == ["s0", "s1"]
    assert ids(outbox.take(2)) == ["s2", "s3"]
    assert ids(outbox.take(2)) == ["s4"]
    assert outbox.take(2) == []
    assert len(outbox) == 5  # all in flight
    assert not outbox.has_unsent


def test_ack_forgets_the_item() -> None:
    """An acknowledged id leaves the outbox, whether in flight or not yet sent."""
    outbox = Outbox(10)
    for n in range(3):
        outbox.add(item(n))
    outbox.take(1)
    outbox.ack("s0")  # in flight
    outbox.ack("s2")  # still unsent (the core had it from an earlier connection)
    outbox.ack("unknown")  # no effect
    assert "s0" not in outbox
    assert "s2" not in outbox
    assert len(outbox) == 1
    assert ids(outbox.take(5)) == ["s1"]


def test_requeue_puts_in_flight_items_first() -> None:
    """After a dropped link, sent-but-unacknowledged items go out again before newer ones."""
    outbox = Outbox(10)
    for n in range(4):
        outbox.add(item(n))
    outbox.take(2)  # s0, s1 in flight
    outbox.add(item(4))
    outbox.ack("s0")
    outbox.requeue()
    assert outbox.has_unsent
    assert len(outbox) == 4
    assert ids(outbox.take(10)) == ["s1", "s2", "s3", "s4"]


def test_requeue_with_nothing_in_flight_keeps_order() -> None:
    """Requeue is harmless when nothing was sent."""
    outbox = Outbox(10)
    outbox.add(item(1))
    outbox.add(item(2))
    outbox.requeue()
    assert ids(outbox.take(10)) == ["s1", "s2"]


operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 8)),
        st.tuples(st.just("take"), st.integers(0, 3)),
        st.tuples(st.just("ack"), st.integers(0, 8)),
        st.tuples(st.just("requeue"), st.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None, database=None)
@given(st.integers(1, 5), operations)
def test_accepted_items_are_never_dropped(capacity: int, ops: list[tuple[str, int]]) -> None:
    """Every accepted id stays until acknowledged; no id is ever held twice or over capacity."""
    outbox = Outbox(capacity)
    accepted: set[str] = set()
    for op, n in ops:
        if op == "add":
            held = f"s{n}" in outbox
            added = outbox.add(item(n))
            assert added == (held or len(accepted) < capacity)
            if added:
                accepted.add(f"s{n}")
        elif op == "take":
            batch = outbox.take(n)
            assert len(batch) <= n
            assert len(set(ids(batch))) == len(batch)
        elif op == "ack":
            outbox.ack(f"s{n}")
            accepted.discard(f"s{n}")
        else:
            outbox.requeue()
        assert len(outbox) == len(accepted) <= capacity
        assert all(i in outbox for i in accepted)
    outbox.requeue()
    assert sorted(ids(outbox.take(capacity))) == sorted(accepted)


def test_a_small_batch_waits_for_the_one_in_flight_or_the_hold() -> None:
    """Nagle's rule: batches grow while one is being committed; a full one goes at once."""
    outbox = Outbox(100)
    outbox.add(item(0))
    assert outbox.wait_s(3, now=10.0) == 0.0  # nothing in flight: it goes
    assert ids(outbox.take(3, now=10.0)) == ["s0"]
    outbox.add(item(1))
    outbox.add(item(2))
    assert outbox.wait_s(3, now=10.01) == pytest.approx(HOLD_S - 0.01)  # s0 in flight
    outbox.add(item(3))
    assert outbox.wait_s(3, now=10.01) == 0.0  # a full batch
    assert outbox.wait_s(4, now=10.0 + HOLD_S) == 0.0  # the hold is over
    outbox.ack("s0")
    assert outbox.wait_s(4, now=10.01) == 0.0  # acknowledged: the next goes
    assert ids(outbox.take(4, now=10.01)) == ["s1", "s2", "s3"]
