"""The published stream: which frames bring an edge from the version it holds to the head."""

from __future__ import annotations

import pytest

from core_region.suggest.stream import Stream
from shared.protocol import Delta, TermChange, decode, encode

SNAP = b"snapshot@2"


def frame(from_version: int, to_version: int) -> bytes:
    return f"delta {from_version}->{to_version}".encode()


def stream_2_to_7() -> Stream:
    """Base snapshot at 2, then deltas 2->3, 3->5, 5->7."""
    stream = Stream()
    stream.rebase(2, SNAP)
    for a, b in [(2, 3), (3, 5), (5, 7)]:
        stream.append(a, b, frame(a, b))
    return stream


def test_empty_stream_has_no_head() -> None:
    """Before any snapshot there is no head and no delta."""
    stream = Stream()
    assert stream.head is None
    assert stream.base_version is None
    assert len(stream) == 0


def test_catch_up_before_any_snapshot_raises() -> None:
    """Nothing can be sent before the first rebase."""
    with pytest.raises(RuntimeError, match="no snapshot"):
        Stream().catch_up(0)


def test_head_is_the_last_delta_or_the_base() -> None:
    """The head is the base version until a delta follows it."""
    stream = Stream()
    stream.rebase(4, SNAP)
    assert stream.head == 4
    stream.append(4, 6, frame(4, 6))
    assert stream.head == 6
    assert len(stream) == 1


def test_catch_up_at_head_is_empty() -> None:
    """An edge that holds the head needs nothing."""
    assert stream_2_to_7().catch_up(7) == []


def test_catch_up_at_base_with_no_deltas_is_empty() -> None:
    """Right after a rebase the base is the head."""
    stream = Stream()
    stream.rebase(2, SNAP)
    assert stream.catch_up(2) == []


@pytest.mark.parametrize(
    ("have", "expected"),
    [
        (2, [frame(2, 3), frame(3, 5), frame(5, 7)]),
        (3, [frame(3, 5), frame(5, 7)]),
        (5, [frame(5, 7)]),
    ],
)
def test_catch_up_from_a_boundary_sends_the_missing_deltas(
    have: int, expected: list[bytes]
) -> None:
    """An edge at a delta boundary gets only the deltas after it, in order."""
    assert stream_2_to_7().catch_up(have) == expected


@pytest.mark.parametrize(
    "have",
    [
        -1,  # a new edge
        0,  # older than the base
        1,
        4,  # inside the stream but not a boundary (another database?)
        6,
        8,  # ahead of the head (the core lost data)
        100,
    ],
)
def test_catch_up_from_anywhere_else_sends_snapshot_and_every_delta(have: int) -> None:
    """Too old, unknown or ahead: the snapshot, then every delta after it."""
    assert stream_2_to_7().catch_up(have) == [SNAP, frame(2, 3), frame(3, 5), frame(5, 7)]


@pytest.mark.parametrize("have", [2, 5, 7])
def test_an_edge_grown_from_another_base_gets_the_base_wherever_it_is(have: int) -> None:
    """Its hot prefixes are its own base's, which the deltas here do not maintain: it loads
    this base, even at the head (a core restarted, or a compaction it missed)."""
    everything = [SNAP, frame(2, 3), frame(3, 5), frame(5, 7)]
    assert stream_2_to_7().catch_up(have, base=1) == everything
    assert stream_2_to_7().catch_up(have, base=2) == stream_2_to_7().catch_up(have)


def test_rebase_keeps_the_deltas_after_the_new_base() -> None:
    """A snapshot at 5 drops the deltas before 5 and keeps 5->7."""
    stream = stream_2_to_7()
    stream.rebase(5, b"snapshot@5")
    assert stream.base_version == 5
    assert stream.head == 7
    assert len(stream) == 1
    assert stream.catch_up(5) == [frame(5, 7)]
    assert stream.catch_up(3) == [b"snapshot@5", frame(5, 7)]
    assert stream.catch_up(-1) == [b"snapshot@5", frame(5, 7)]


def test_rebase_at_head_drops_every_delta() -> None:
    """A snapshot of the head leaves no delta; old edges get the snapshot alone."""
    stream = stream_2_to_7()
    stream.rebase(7, b"snapshot@7")
    assert len(stream) == 0
    assert stream.head == 7
    assert stream.catch_up(7) == []
    assert stream.catch_up(5) == [b"snapshot@7"]


def test_rebase_drops_a_lists_only_delta_at_the_new_base() -> None:
    """A delta 7->7 (hot lists only, after the previous compaction) is not replayed after a
    snapshot of 7: its lists may be for prefixes that snapshot dropped, which no later delta
    would maintain (found by tests/link: an edge answered a stale top list)."""
    stream = stream_2_to_7()
    stream.append(7, 7, frame(7, 7))
    stream.rebase(7, b"snapshot@7")
    assert len(stream) == 0
    assert stream.catch_up(-1) == [b"snapshot@7"]
    stream.append(7, 8, frame(7, 8))
    assert stream.catch_up(7) == [frame(7, 8)]


def test_append_after_rebase_continues_from_the_head() -> None:
    """Deltas kept by a rebase and new ones form one contiguous stream."""
    stream = stream_2_to_7()
    stream.rebase(3, b"snapshot@3")
    stream.append(7, 8, frame(7, 8))
    assert stream.catch_up(5) == [frame(5, 7), frame(7, 8)]


@pytest.mark.parametrize("from_version", [6, 8, 2, 5])
def test_append_refuses_a_delta_that_does_not_start_at_the_head(from_version: int) -> None:
    """A gap or an overlap is a ValueError and the stream is unchanged."""
    stream = stream_2_to_7()
    with pytest.raises(ValueError, match="does not follow head 7"):
        stream.append(from_version, 9, frame(from_version, 9))
    assert stream.head == 7
    assert len(stream) == 3


def test_append_before_any_snapshot_is_refused() -> None:
    """Without a base there is no head for a delta to follow."""
    with pytest.raises(ValueError):
        Stream().append(0, 1, frame(0, 1))


def test_past_merge_above_catch_up_sends_the_deltas_merged_into_one() -> None:
    """An edge far behind gets one frame, not one per publication: each term's last change
    and each hot prefix's last list, from its version to the head."""
    stream = Stream(merge_above=2)
    stream.rebase(1, b"snapshot")
    changes = [
        Delta(1, 2, [TermChange("lyon", "Lyon", 5)], {"l": ["lyon"]}),
        Delta(2, 4, [TermChange("lima", "Lima", 7), TermChange("lyon", None, 0)], {}),
        Delta(4, 5, [TermChange("lyon", "Lyon", 9)], {"l": ["lyon", "lima"]}),
    ]
    for delta in changes:
        stream.append(delta.from_version, delta.to_version, encode(delta))
    assert len(stream.catch_up(2)) == 2  # two deltas: as they are
    (one,) = stream.catch_up(1)
    assert decode(one) == Delta(
        1,
        5,
        [TermChange("lima", "Lima", 7), TermChange("lyon", "Lyon", 9)],
        {"l": ["lyon", "lima"]},
    )
    assert stream.catch_up(1) == [one]  # kept for the next edge at v1
    snapshot, again = stream.catch_up(-1)
    assert snapshot == b"snapshot" and again == one
