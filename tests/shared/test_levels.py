"""Levels and bookmarks, pure: a bookmark reads back what made it and nothing else; a read
may ask only for a level weaker than its feature's; bounded keeps the larger bound."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from shared.errors import BadRequest
from shared.protocol import (
    BOUNDED,
    DEFAULT_MAX_AGE_MS,
    LEVELS,
    MAX_BOOKMARK_CHARS,
    MAX_MAX_AGE_MS,
    SESSION,
    STRICT,
    TOLERANT,
    Flags,
    Level,
    make_bookmark,
    read_bookmark,
    stronger,
)

epochs = st.from_regex(r"[A-Za-z0-9_-]{0,64}", fullmatch=True)


@given(epochs, st.integers(0, 2**63 - 1))
def test_a_bookmark_reads_back_its_epoch_and_version(epoch: str, version: int) -> None:
    text = make_bookmark(epoch, version)
    assert read_bookmark(text) == (epoch, version)
    assert len(text) <= MAX_BOOKMARK_CHARS and text.isascii()


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "12",
        "abc.",
        "abc.-1",
        "abc.+1",
        "abc.1e3",
        "abc. 1",
        "a b.1",
        "a/b.1",
        "épo.1",
        "abc.9223372036854775808",  # 2**63
        "abc.12345678901234567890",
        "a" * 65 + ".1",
        "a" * 200,
        "abc.1\n",
    ],
)
def test_anything_else_is_a_bad_bookmark(garbage: str) -> None:
    with pytest.raises(BadRequest) as refused:
        read_bookmark(garbage)
    assert refused.value.code == "bad_bookmark"


def test_only_the_core_s_epochs_make_bookmarks() -> None:
    with pytest.raises(ValueError):
        make_bookmark("a.b c", 1)
    with pytest.raises(ValueError):
        make_bookmark("db", -1)


def test_levels_are_ordered_strongest_first() -> None:
    assert LEVELS == (STRICT, BOUNDED, SESSION, TOLERANT)
    assert stronger(STRICT, BOUNDED) and stronger(BOUNDED, SESSION) and stronger(SESSION, TOLERANT)
    assert not stronger(TOLERANT, TOLERANT) and not stronger(TOLERANT, STRICT)


@pytest.mark.parametrize("flag", LEVELS)
@pytest.mark.parametrize("asked", LEVELS)
def test_a_read_may_ask_for_the_same_or_a_weaker_level_only(flag: str, asked: str) -> None:
    level = Level.bounded(500) if flag == BOUNDED else Level(flag)
    if stronger(asked, flag):
        with pytest.raises(BadRequest) as refused:
            level.serve(asked, None, 3000)
        assert refused.value.code == "consistency_too_strong"
    else:
        assert level.serve(asked, None, 3000).level == asked


def test_no_request_fields_keep_the_flag_itself() -> None:
    flag = Level.bounded(700)
    assert flag.serve(None, None, 3000) is flag


def test_a_bounded_read_keeps_the_larger_bound() -> None:
    """The feature's bound unless the read names a larger one; a strict feature's bound is
    the core's default."""
    assert Level.bounded(700).serve(BOUNDED, None, 3000).max_age_ms == 700
    assert Level.bounded(700).serve(BOUNDED, 200, 3000).max_age_ms == 700
    assert Level.bounded(700).serve(BOUNDED, 9000, 3000).max_age_ms == 9000
    assert Level(STRICT).serve(BOUNDED, None, 3000).max_age_ms == 3000
    assert Level(STRICT).serve(BOUNDED, 4000, 3000).max_age_ms == 4000
    assert Level(STRICT).serve(BOUNDED, 10, 3000).max_age_ms == 3000


@pytest.mark.parametrize(
    ("consistency", "max_age_ms", "code"),
    [
        ("eventual", None, "bad_consistency"),
        ("STRICT", None, "bad_consistency"),
        ("", None, "bad_consistency"),
        (None, 500, "bad_max_age_ms"),
        (TOLERANT, 500, "bad_max_age_ms"),
        (BOUNDED, 0, "bad_max_age_ms"),
        (BOUNDED, MAX_MAX_AGE_MS + 1, "bad_max_age_ms"),
        (BOUNDED, -5, "bad_max_age_ms"),
    ],
)
def test_bad_request_levels_are_refused_by_name(
    consistency: str | None, max_age_ms: int | None, code: str
) -> None:
    with pytest.raises(BadRequest) as refused:
        Level(STRICT).serve(consistency, max_age_ms, 3000)
    assert refused.value.code == code


def test_stale_ok_is_false_only_for_strict_and_max_age_ms_only_for_bounded() -> None:
    assert [Level(name).stale_ok for name in LEVELS] == [False, True, True, True]
    assert Level.bounded(900).as_json()["max_age_ms"] == 900
    assert Level(SESSION, {"max_age_ms": 900}).max_age_ms is None


def test_an_edge_reads_a_bounded_flag_without_a_valid_bound_with_the_core_s_default() -> None:
    flags = Flags.of({"a": Level(BOUNDED), "b": Level.bounded(10**9), "c": Level("newer")}, 2500)
    assert flags.read() == {"a": Level.bounded(2500), "b": Level.bounded(2500), "c": Level(STRICT)}
    assert Flags.of({"a": Level(BOUNDED)}).read()["a"].max_age_ms == DEFAULT_MAX_AGE_MS
    assert flags.flags == {"a": True, "b": True, "c": True}  # what an edge from before reads
