"""Reads that must ask the core share its syncs (edge_node/single_flight.py), on a real
websocket to a stand-in core that answers each ``sync`` when told: reads arriving while one
is in flight share the next one, a read that leaves (cancelled, timed out) ends nothing for
the others, the breaker counts one call per sync sent, not per read, and a stopping edge
sends no more."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from edge_node.breaker import CLOSED, OPEN
from edge_node.link import Link
from shared.errors import Unavailable
from shared.protocol import Sync
from tests.edge_node.test_link import StandInCore, _true, linked, snapshot_frame
from tests.helpers.waiting import eventually

READS = 50


def syncs_sent(link: Link) -> float:
    value = link.metrics.registry.get_sample_value("lightcone_edge_core_syncs_total")
    return value or 0.0


async def boarded(link: Link, readers: int) -> None:
    """Wait until ``readers`` reads wait on the boarding flight."""

    async def check() -> bool:
        boarding = link.flights.boarding
        return boarding is not None and boarding.readers == readers

    await eventually(check, 5, f"{readers} reads boarding")


@contextlib.asynccontextmanager
async def holding(**settings: Any) -> AsyncIterator[tuple[Link, StandInCore]]:
    """An edge's link, up with data at version 3, to a stand-in core that holds every
    ``sync`` until told to answer (:meth:`StandInCore.answer`)."""
    async with linked(head=3, **settings) as (edge, core):
        await edge.link.receive(snapshot_frame(3, {"paris": 10}))
        core.hold = True
        yield edge.link, core


async def held(core: StandInCore, syncs: int) -> None:
    await eventually(lambda: _true(len(core.held) == syncs), 5, f"{syncs} sync(s) held")


async def test_reads_arriving_during_a_sync_share_the_next_one() -> None:
    async with holding(syncs_in_flight=1) as (link, core):
        first = asyncio.create_task(link.sync("suggest", 30))
        await held(core, 1)  # an idle link: sent at once
        later = [asyncio.create_task(link.sync("suggest", 30)) for _ in range(READS)]
        await boarded(link, READS)
        assert len(core.sent(Sync)) == 1  # none of them shares the sync sent before it came
        await core.answer()
        assert await first == 3
        await held(core, 1)  # the next one, for all of them, as soon as the first landed
        await core.answer()
        assert await asyncio.gather(*later) == [3] * READS
        assert len(core.sent(Sync)) == 2 and syncs_sent(link) == 2
        assert not link.flights.in_flight and not link._landings


async def test_reads_go_at_once_while_fewer_syncs_are_in_flight_than_allowed() -> None:
    """``LIGHTCONE_SYNCS_IN_FLIGHT`` (3 here): three reads in a row send three syncs, the
    next ones share a fourth, sent as soon as one of the three is answered."""
    async with holding(syncs_in_flight=3) as (link, core):
        first = [asyncio.create_task(link.sync("suggest", 30)) for _ in range(3)]
        await held(core, 3)  # each at once: no read waits while there is room
        later = [asyncio.create_task(link.sync("suggest", 30)) for _ in range(READS)]
        await boarded(link, READS)
        assert len(core.sent(Sync)) == 3
        await core.answer(1)  # one of the three lands: the fourth goes
        await held(core, 3)
        assert len(core.sent(Sync)) == 4
        await core.answer()
        assert await asyncio.gather(*first, *later) == [3] * (3 + READS)
        assert len(core.sent(Sync)) == 4 and syncs_sent(link) == 4
        assert not link.flights.in_flight and not link._landings


async def test_a_read_that_leaves_ends_nothing_for_the_others() -> None:
    async with holding(syncs_in_flight=1) as (link, core):
        first = asyncio.create_task(link.sync("suggest", 30))
        await held(core, 1)
        cancelled = asyncio.create_task(link.sync("suggest", 30))
        staying = asyncio.create_task(link.sync("suggest", 30))
        await boarded(link, 2)
        first.cancel()  # the one in flight loses its only reader: it flies on
        cancelled.cancel()
        for task in (first, cancelled):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with pytest.raises(Unavailable) as late:  # its own deadline, on the same flight
            await link.sync("suggest", 0.05)
        assert late.value.code == "strict_timeout"
        assert len(core.sent(Sync)) == 1 and link.flights.boarding is not None
        await core.answer()
        await held(core, 1)
        await core.answer()
        assert await staying == 3
        assert len(core.sent(Sync)) == 2 and not link._landings


async def test_the_breaker_counts_one_failure_per_sync_not_per_read() -> None:
    """Two syncs time out with a read on the first and fifty on the second: two failures
    open a breaker of two (not fifty-one); a read then fails at once, sending nothing."""
    settings = {"breaker_failures": 2, "breaker_reset_s": 60, "syncs_in_flight": 1}
    async with holding(**settings) as (link, core):  # and never answered
        first = asyncio.create_task(link.sync("suggest", 0.2))
        await held(core, 1)
        later = [asyncio.create_task(link.sync("suggest", 1.0)) for _ in range(READS)]
        await boarded(link, READS)
        for read in [first, *later]:
            with pytest.raises(Unavailable) as failed:
                await read
            assert failed.value.code == "strict_timeout"
        await eventually(lambda: _true(not link.flights.in_flight), 5, "both landed")
        assert len(core.sent(Sync)) == 2
        assert link.breaker.state(link.now()) == OPEN
        with pytest.raises(Unavailable) as refused:
            await link.sync("suggest", 30)
        assert refused.value.code == "core_unreachable"
        assert len(core.sent(Sync)) == 2 and not link._landings


async def test_reads_arriving_during_a_half_open_trial_wait_for_its_verdict() -> None:
    """They do not fail fast as the breaker's second call: they board the next sync, sent
    once the trial closed the breaker."""
    async with holding(breaker_failures=1, breaker_reset_s=0.0) as (link, core):
        link.breaker.failure(link.now())  # open; half-open at once
        trial = asyncio.create_task(link.sync("suggest", 30))
        await held(core, 1)
        later = [asyncio.create_task(link.sync("suggest", 30)) for _ in range(READS)]
        await boarded(link, READS)
        await core.answer()
        assert await trial == 3
        await held(core, 1)
        await core.answer()
        assert await asyncio.gather(*later) == [3] * READS


async def test_a_stopping_edge_ends_its_syncs_without_a_verdict_and_sends_no_more() -> None:
    """The sync's task is cancelled (the edge stops): its readers and those boarding the
    next are answered ``core_unreachable``, nothing more is sent, the breaker is not told."""
    async with holding(breaker_failures=1, syncs_in_flight=1) as (link, core):
        first = asyncio.create_task(link.sync("suggest", 30))
        await held(core, 1)
        later = [asyncio.create_task(link.sync("suggest", 30)) for _ in range(3)]
        await boarded(link, 3)
        for task in list(link._flying):
            task.cancel()
        for read in [first, *later]:
            with pytest.raises(Unavailable) as stopped:
                await read
            assert stopped.value.code == "core_unreachable"
        assert not link.flights.in_flight and not link._landings
        assert len(core.sent(Sync)) == 1
        assert link.breaker.state(link.now()) == CLOSED  # one failure would have opened it


async def test_stopping_the_link_ends_the_syncs_it_has_in_flight() -> None:
    """The link's task is stopped (the edge shuts down) with syncs in flight: their tasks
    end with it, and every read waiting is answered ``core_unreachable``."""
    async with holding(syncs_in_flight=2) as (link, core):
        reads = [asyncio.create_task(link.sync("suggest", 30)) for _ in range(3)]
        await held(core, 2)
        await boarded(link, 1)
    assert not link._flying and not link.flights.in_flight and not link._landings
    for read in reads:
        with pytest.raises(Unavailable) as stopped:
            await read
        assert stopped.value.code == "core_unreachable"
