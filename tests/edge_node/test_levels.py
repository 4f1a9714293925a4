"""The suggestion feature at each level, in process, its link up to a stand-in core over a
real websocket: bounded answers locally while its data is provably young enough and asks the
core once past it; session answers locally once the edge has reached the bookmark, else after
one round trip; a read asks only for weaker levels; every answer says which level served it,
its bookmark, and whether it waited for the core."""

from __future__ import annotations

import pytest

from edge_node.node import EdgeNode
from shared.errors import BadRequest, Unavailable
from shared.protocol import (
    BOUNDED,
    SESSION,
    STRICT,
    TOLERANT,
    Flags,
    Level,
    Sync,
    encode,
    make_bookmark,
    read_bookmark,
)
from tests.edge_node.test_link import EPOCH, linked, node, snapshot_frame, suggest_of
from tests.helpers.waiting import eventually

TERMS = {"paris": 10, "parma": 5}


async def _set(edge: EdgeNode, level: Level) -> None:
    await edge.link.receive(encode(Flags.of({"suggest": level})))


async def _measured(edge: EdgeNode) -> bool:
    return edge.link.round_trip_ms() is not None


def _trips(edge: EdgeNode, level: str) -> float:
    value = edge.metrics.registry.get_sample_value(
        "lightcone_edge_core_round_trips_total", {"feature": "suggest", "level": level}
    )
    return value or 0.0


async def test_bounded_answers_locally_while_young_enough_and_asks_the_core_once_past() -> None:
    async with linked(head=3) as (edge, core):
        await edge.link.receive(snapshot_frame(3, TERMS))
        await eventually(lambda: _measured(edge), 10, "a round trip measured (a ping)")
        up = suggest_of(edge)

        await _set(edge, Level.bounded(60_000))
        local = await up.suggest("pa", 5)
        assert (local.mode, local.core_trip) == (BOUNDED, False)
        assert local.fresh_ms is not None and 0 < local.fresh_ms < 60_000
        assert core.sent(Sync) == [] and _trips(edge, BOUNDED) == 0
        assert '"core_trip"' not in local.http_body()

        await _set(edge, Level.bounded(1))  # no data is provably that young
        asked = await up.suggest("pa", 5)
        assert (asked.mode, asked.core_trip, asked.fresh_ms) == (BOUNDED, True, 0)
        assert len(core.sent(Sync)) == 1 and _trips(edge, BOUNDED) == 1
        assert asked.http_body().endswith(',"core_trip":true}')


async def test_bounded_without_a_link_fails_fast_like_strict() -> None:
    """No link, so no round trip measured: nothing is provably young; the read asks the core
    and is refused at once."""
    edge = node()
    await edge.link.receive(snapshot_frame(3, TERMS))
    await _set(edge, Level.bounded(60_000))
    with pytest.raises(Unavailable) as refused:
        await suggest_of(edge).suggest("pa", 5)
    assert refused.value.code == "core_unreachable"
    local = await suggest_of(edge).suggest("pa", 5, consistency=TOLERANT)  # weaker: served
    assert local.mode == TOLERANT and local.fresh_ms is None


async def test_session_answers_locally_once_the_edge_has_reached_the_bookmark() -> None:
    async with linked(head=3) as (edge, core):
        await edge.link.receive(snapshot_frame(3, TERMS))
        await _set(edge, Level(SESSION))
        up = suggest_of(edge)

        first = await up.suggest("pa", 5)  # no bookmark: local
        assert (first.mode, first.core_trip, first.fresh_ms) == (SESSION, False, 0)
        assert read_bookmark(first.bookmark) == (EPOCH, 3) and first.epoch == EPOCH
        again = await up.suggest("pa", 5, bookmark=make_bookmark(EPOCH, 2))
        assert read_bookmark(again.bookmark)[1] >= 2 and not again.core_trip
        assert core.sent(Sync) == []

        with pytest.raises(BadRequest) as ahead:  # beyond the core: after one round trip
            await up.suggest("pa", 5, bookmark=make_bookmark(EPOCH, 4))
        assert ahead.value.code == "bookmark_ahead"
        assert len(core.sent(Sync)) == 1

        other = await up.suggest("pa", 5, bookmark=make_bookmark("restored", 90))
        assert other.core_trip and read_bookmark(other.bookmark) == (EPOCH, 3)  # restarts
        assert len(core.sent(Sync)) == 2 and _trips(edge, SESSION) == 1

        with pytest.raises(BadRequest) as garbage:
            await up.suggest("pa", 5, bookmark="not a bookmark")
        assert garbage.value.code == "bad_bookmark"


async def test_a_read_may_weaken_its_level_never_strengthen_it() -> None:
    async with linked(head=3) as (edge, core):
        await edge.link.receive(snapshot_frame(3, TERMS))
        up = suggest_of(edge)
        await _set(edge, Level(STRICT))
        strict = await up.suggest("pa", 5)
        assert (strict.mode, strict.core_trip, strict.fresh_ms) == (STRICT, True, 0)
        assert _trips(edge, STRICT) == 1
        for weaker in (SESSION, TOLERANT):
            answer = await up.suggest("pa", 5, consistency=weaker)
            assert (answer.mode, answer.core_trip) == (weaker, False)
        assert len(core.sent(Sync)) == 1

        await _set(edge, Level(TOLERANT))
        for stronger in (STRICT, BOUNDED, SESSION):
            with pytest.raises(BadRequest) as refused:
                await up.suggest("pa", 5, consistency=stronger)
            assert refused.value.code == "consistency_too_strong"
        tolerant = await up.suggest("pa", 5)
        assert tolerant.mode == TOLERANT and tolerant.fresh_ms is None
        assert read_bookmark(tolerant.bookmark) == (EPOCH, 3)  # every answer has one
