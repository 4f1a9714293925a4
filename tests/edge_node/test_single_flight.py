"""The single-flight core of shared syncs, pure: an idle link sends at once, reads arriving
during a flight board the next one, a read never shares a sync sent before it arrived, a
boarding flight nobody waits for is not sent, one in flight flies on without readers, and at
most one flight is in flight and one boarding whatever happens."""

from __future__ import annotations

import random

from hypothesis import given, strategies as st

from edge_node.single_flight import Flight, SingleFlight


def test_a_read_on_an_idle_link_sends_at_once() -> None:
    flights = SingleFlight()
    flight, send = flights.join(10.0, 1.5)
    assert send and flights.in_flight is flight and flights.boarding is None
    assert (flight.readers, flight.sent_at, flight.deadline) == (1, 10.0, 11.5)
    flights.leave(flight)
    assert flights.landed(flight, 10.2) is None
    assert flights.in_flight is None
    again, send = flights.join(10.3, 1.5)
    assert send and again.id != flight.id


def test_reads_arriving_in_flight_board_the_next_one_which_leaves_when_it_lands() -> None:
    flights = SingleFlight()
    first, _ = flights.join(0.0, 1.0)
    boarded = [flights.join(0.1 * i, 1.0) for i in range(1, 6)]
    assert all(flight is boarded[0][0] and not send for flight, send in boarded)
    following = boarded[0][0]
    assert following is not first and following.readers == 5 and following.sent_at is None
    assert following.deadline == 1.5  # the latest of its readers'
    assert flights.landed(first, 0.6) is following
    assert following.sent_at == 0.6 and flights.in_flight is following
    assert flights.boarding is None


def test_a_read_never_shares_a_sync_sent_before_it_arrived() -> None:
    flights = SingleFlight()
    first, _ = flights.join(0.0, 1.0)
    following, _ = flights.join(0.1, 1.0)
    flights.landed(first, 0.2)  # `following` is sent at 0.2
    late, send = flights.join(0.3, 1.0)
    assert not send and late is not following and late is flights.boarding


def test_a_boarding_flight_nobody_waits_for_is_not_sent() -> None:
    flights = SingleFlight()
    first, _ = flights.join(0.0, 1.0)
    a, _ = flights.join(0.1, 1.0)
    b, _ = flights.join(0.2, 1.0)
    flights.leave(a)
    assert flights.boarding is a  # b still waits
    flights.leave(b)
    assert flights.boarding is None
    assert flights.landed(first, 0.5) is None


def test_a_flight_in_flight_flies_on_when_its_readers_leave() -> None:
    """What keeps the bound: reads that give up do not free the link for another sync."""
    flights = SingleFlight()
    first, _ = flights.join(0.0, 1.0)
    flights.leave(first)
    assert flights.in_flight is first
    following, send = flights.join(0.1, 1.0)
    assert not send and following is flights.boarding


@given(st.lists(st.sampled_from(["join", "leave", "land"]), max_size=200), st.randoms())
def test_one_in_flight_one_boarding_and_each_read_on_a_sync_sent_after_it_came(
    steps: list[str], rnd: random.Random
) -> None:
    flights = SingleFlight()
    waiting: list[tuple[float, Flight]] = []  # (arrival, flight) of reads still waiting
    sent: list[Flight] = []
    for now, step in enumerate(steps):
        if step == "join":
            flight, send = flights.join(float(now), 5.0)
            waiting.append((float(now), flight))
            if send:
                sent.append(flight)
        elif step == "leave" and waiting:
            arrived, flight = waiting.pop(rnd.randrange(len(waiting)))
            flights.leave(flight)
        elif step == "land" and flights.in_flight is not None:
            landed = flights.in_flight
            following = flights.landed(landed, float(now))
            if following is not None:
                sent.append(following)
            for arrived, flight in [w for w in waiting if w[1] is landed]:
                assert flight.sent_at is not None and flight.sent_at >= arrived
                flights.leave(flight)
                waiting.remove((arrived, flight))
        assert len({f.id for f in sent}) == len(sent)  # each flight sent once
        assert flights.boarding is None or flights.in_flight is not None
        assert flights.boarding is not flights.in_flight or flights.boarding is None
        for arrived, flight in waiting:
            assert flight in (flights.in_flight, flights.boarding) or flight.sent_at is not None
            assert flight.sent_at is None or flight.sent_at >= arrived
        if flights.boarding is not None:
            readers = sum(1 for _, f in waiting if f is flights.boarding)
            assert flights.boarding.readers == readers > 0
