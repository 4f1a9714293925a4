"""The single-flight core of shared syncs, pure: a link with room sends at once, reads arriving
while its capacity is in flight board the next one, a read never shares a sync sent before it
arrived, a boarding flight nobody waits for is not sent, one in flight flies on without
readers, and at most ``capacity`` flights are in flight and one boarding whatever happens."""

from __future__ import annotations

import random

from hypothesis import given, strategies as st

from edge_node.single_flight import Flight, SingleFlight


def test_a_read_on_an_idle_link_sends_at_once() -> None:
    flights = SingleFlight()
    flight, send = flights.join(10.0, 1.5)
    assert send and flights.in_flight == [flight] and flights.boarding is None
    assert (flight.readers, flight.sent_at, flight.deadline) == (1, 10.0, 11.5)
    flights.leave(flight)
    assert flights.landed(flight, 10.2) is None
    assert flights.in_flight == []
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
    assert following.sent_at == 0.6 and flights.in_flight == [following]
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
    assert flights.in_flight == [first]
    following, send = flights.join(0.1, 1.0)
    assert not send and following is flights.boarding


def test_reads_send_at_once_while_there_is_room_then_board() -> None:
    flights = SingleFlight()
    sent = [flights.join(0.1 * i, 1.0, capacity=3) for i in range(3)]
    assert all(send for _, send in sent) and len({f.id for f, _ in sent}) == 3
    boarded, send = flights.join(0.5, 1.0, capacity=3)
    assert not send and flights.boarding is boarded and len(flights.in_flight) == 3
    assert flights.landed(sent[1][0], 0.6, capacity=3) is boarded
    assert boarded.sent_at == 0.6 and len(flights.in_flight) == 3


def test_a_lower_capacity_holds_reads_until_the_flights_in_flight_land() -> None:
    """The shell lowers the capacity to 1 while its breaker is not closed: a trial flies
    alone, and reads wait for its verdict."""
    flights = SingleFlight()
    a, _ = flights.join(0.0, 1.0, capacity=2)
    b, _ = flights.join(0.0, 1.0, capacity=2)
    waiting, send = flights.join(0.1, 1.0, capacity=1)
    assert not send and flights.boarding is waiting
    assert flights.landed(a, 0.2, capacity=1) is None  # b still in flight
    assert flights.landed(b, 0.3, capacity=1) is waiting
    # Room again with a flight boarding: the next read goes with it, at once.
    flights.landed(waiting, 0.4, capacity=1)
    c, _ = flights.join(0.5, 1.0, capacity=1)
    late, _ = flights.join(0.6, 1.0, capacity=1)
    assert late is flights.boarding
    now, send = flights.join(0.7, 1.0, capacity=3)
    assert send and now is late and late.readers == 2 and late.sent_at == 0.7
    assert flights.boarding is None and flights.in_flight == [c, late]


@given(
    st.lists(st.sampled_from(["join", "leave", "land"]), max_size=200),
    st.integers(1, 3),
    st.randoms(),
)
def test_at_most_capacity_in_flight_one_boarding_and_each_read_on_a_sync_sent_after_it_came(
    steps: list[str], capacity: int, rnd: random.Random
) -> None:
    flights = SingleFlight()
    waiting: list[tuple[float, Flight]] = []  # (arrival, flight) of reads still waiting
    sent: list[Flight] = []
    for now, step in enumerate(steps):
        if step == "join":
            flight, send = flights.join(float(now), 5.0, capacity)
            waiting.append((float(now), flight))
            if send and flight not in sent:
                sent.append(flight)
        elif step == "leave" and waiting:
            arrived, flight = waiting.pop(rnd.randrange(len(waiting)))
            flights.leave(flight)
        elif step == "land" and flights.in_flight:
            landed = rnd.choice(flights.in_flight)
            following = flights.landed(landed, float(now), capacity)
            if following is not None:
                sent.append(following)
            for arrived, flight in [w for w in waiting if w[1] is landed]:
                assert flight.sent_at is not None and flight.sent_at >= arrived
                flights.leave(flight)
                waiting.remove((arrived, flight))
        assert len({f.id for f in sent}) == len(sent)  # each flight sent once
        assert len(flights.in_flight) <= capacity
        assert flights.boarding is None or len(flights.in_flight) == capacity
        assert flights.boarding not in flights.in_flight
        for arrived, flight in waiting:
            assert flight in flights.in_flight or flight is flights.boarding or flight.sent_at
            assert flight.sent_at is None or flight.sent_at >= arrived
        if flights.boarding is not None:
            readers = sum(1 for _, f in waiting if f is flights.boarding)
            assert flights.boarding.readers == readers > 0
