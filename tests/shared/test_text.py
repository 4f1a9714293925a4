"""The text door: what it refuses, what it lets through, and that nothing past it can break.

Generated text mixes ordinary letters with the characters the door exists for: NFKD expanders
(U+FDFA folds to 15 characters), lone surrogates, controls, separators, bidi overrides,
noncharacters.
"""

from __future__ import annotations

import json
import unicodedata

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings, strategies as st

from shared.errors import BadRequest
from shared.folding import fold, tidy
from shared.text import (
    MAX_FOLD_GROWTH,
    MAX_ID_CHARS,
    MAX_KEY_CHARS,
    MAX_TERM_CHARS,
    clean,
    is_text,
    term,
)

EXPANDERS = ["\ufdfa", "\ufdfb", "\u3392", "\u2474", "\ufb03", "\u00df", "\u1100"]
"""Characters whose folded form is longer: U+FDFA (15), U+FDFB (7), ㎒, ⑵, ﬃ, ß, Hangul."""

REFUSED = [
    "\x00",
    "\t",
    "\n",
    "\r",
    "\x1f",
    "\x7f",
    "\x85",
    "\x9f",
    "\ud800",
    "\udfff",
    "\u2028",
    "\u2029",
    "\u202a",
    "\u202e",
    "\u2066",
    "\u2069",
    "\ufeff",
    "\ufdd0",
    "\ufdef",
    "\ufffe",
    "\uffff",
    "\U0001fffe",
    "\U0010ffff",
]

ALLOWED = ["a", " ", "é", "e\u0301", "ß", "\u200b", "\u200c", "\u200d", "\u200e", "\u200f"]
ALLOWED += ["\u061c", "\u00ad", "\ue000", "\U000f0000", "\U0001f600", "\ufdfa", "서울", "\u0378"]

hostile_text = st.text(
    alphabet=st.one_of(
        st.characters(codec=None),  # any code point, surrogates included
        st.sampled_from(EXPANDERS + REFUSED),
    ),
    max_size=120,
)


def encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
        msgpack.packb(value)
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError):
        return False
    return True


@pytest.mark.parametrize("char", REFUSED)
def test_each_refused_code_point_is_not_text(char: str) -> None:
    """Every documented refusal is refused, alone and inside other text."""
    assert not is_text(char)
    assert not is_text(f"abc{char}def")
    assert not is_text(f"São{char}Paulo")


@pytest.mark.parametrize("char", ALLOWED)
def test_ordinary_and_joining_characters_are_text(char: str) -> None:
    """Letters, marks, joiners, RTL marks, private use, emoji and unassigned code points pass."""
    assert is_text(char)
    assert is_text(f"abc{char}def")


@settings(max_examples=300, deadline=None, database=None)
@given(hostile_text)
def test_is_text_matches_the_documented_rule(value: str) -> None:
    """The fast path (ASCII) and the scan agree with the rule written out code point by code
    point: no surrogate, no Cc, no separator, no bidi override, no BOM, no noncharacter."""

    def refused(c: str) -> bool:
        o = ord(c)
        return (
            unicodedata.category(c) in ("Cc", "Cs")
            or c in "\u2028\u2029\ufeff"
            or 0x202A <= o <= 0x202E
            or 0x2066 <= o <= 0x2069
            or 0xFDD0 <= o <= 0xFDEF
            or (o & 0xFFFE) == 0xFFFE
        )

    assert is_text(value) == (not any(refused(c) for c in value))


@settings(max_examples=300, deadline=None, database=None)
@given(hostile_text)
def test_whatever_passes_is_encodable_and_folds_within_the_key_limit(value: str) -> None:
    """Past the door a term encodes in every codec and its key is bounded."""
    try:
        display, key = term(value, field="q")
    except BadRequest as exc:
        assert exc.code in ("bad_text", "too_long", "key_too_long")
        return
    assert is_text(value) and encodable(display) and encodable(key)
    assert len(display) <= MAX_TERM_CHARS
    assert len(key) <= MAX_KEY_CHARS
    assert key == fold(value)


@settings(max_examples=300, deadline=None, database=None)
@given(hostile_text)
def test_clean_refuses_exactly_what_is_not_text_or_over_a_limit(value: str) -> None:
    """``clean`` returns the value untouched, or refuses with the right code."""
    try:
        assert clean(value, field="q", max_chars=50, max_key_chars=60) is value
    except BadRequest as exc:
        if not is_text(value):
            assert exc.code == "bad_text"
        elif len(value) > 50:
            assert exc.code == "too_long"
        else:
            assert exc.code == "key_too_long"
            assert len(fold(value)) > 60
    else:
        assert is_text(value) and len(value) <= 50 and len(fold(value)) <= 60


def test_the_issue_s_expander_is_refused_by_its_key_not_its_display() -> None:
    """ "\\ufdfa" × 98 + 2 letters is 100 characters on screen and 1,472 once folded."""
    q = "\ufdfa" * 98 + "ab"
    assert len(q) == MAX_TERM_CHARS and len(fold(q)) == 98 * 15 + 2
    with pytest.raises(BadRequest) as info:
        term(q, field="q", code="query_too_long")
    assert info.value.code == "key_too_long"
    with pytest.raises(BadRequest) as info:
        clean(q, field="q", max_chars=MAX_TERM_CHARS, max_key_chars=MAX_KEY_CHARS)
    assert info.value.code == "key_too_long"


def test_a_few_expanders_fit() -> None:
    """Six U+FDFA fold to 90 characters: within the key limit; seven do not."""
    display, key = term("\ufdfa" * 6, field="q")
    assert display == "\ufdfa" * 6 and len(key) == 90
    with pytest.raises(BadRequest) as info:
        term("\ufdfa" * 7, field="q")
    assert info.value.code == "key_too_long"


def test_ascii_skips_the_fold_and_still_counts_right() -> None:
    """Short ASCII skips the fold (it grows at most 5/3); longer ASCII is folded and counted."""
    clean("A" * 200, field="q", max_chars=300, max_key_chars=200)
    with pytest.raises(BadRequest) as info:
        clean("A" * 201, field="q", max_chars=300, max_key_chars=200)
    assert info.value.code == "key_too_long"
    clean("st " * 20, field="q", max_chars=MAX_TERM_CHARS, max_key_chars=MAX_KEY_CHARS)
    with pytest.raises(BadRequest) as info:  # 63 characters that fold to 105
        clean("st " * 21, field="q", max_chars=MAX_TERM_CHARS, max_key_chars=MAX_KEY_CHARS)
    assert info.value.code == "key_too_long"


def test_abbreviations_can_take_a_term_over_the_key_limit() -> None:
    """ "St " × 33 + "x" is 100 characters on screen and 166 once folded: the door refuses it
    by its key."""
    with pytest.raises(BadRequest) as info:
        term("St " * 33 + "x", field="term", code="bad_term")
    assert info.value.code == "key_too_long"


@pytest.mark.parametrize("value", ["...", " - ", "'", "«»"])
def test_punctuation_alone_is_an_empty_key_left_to_the_caller(value: str) -> None:
    """Only separators: the key is empty (searches refuse it as ``empty_query``, admin terms
    as ``bad_term``), and a query of them is the empty query."""
    assert term(value, field="q")[1] == ""


def test_display_length_counts_the_tidied_form() -> None:
    """A decomposed "é" × 100 (200 code points) is 100 characters once tidied."""
    display, key = term("e\u0301" * MAX_TERM_CHARS, field="term")
    assert display == "é" * MAX_TERM_CHARS and key == "e" * MAX_TERM_CHARS
    with pytest.raises(BadRequest) as info:
        term("é" * (MAX_TERM_CHARS + 1), field="term", code="bad_term")
    assert info.value.code == "bad_term"


def test_term_never_allows_more_than_the_term_limit() -> None:
    """A caller's ``max_chars`` can only lower the limit."""
    with pytest.raises(BadRequest):
        term("a" * (MAX_TERM_CHARS + 1), field="q", max_chars=10 * MAX_TERM_CHARS)


def test_refusal_names_the_field_and_code_point_never_the_value() -> None:
    """The message must itself be encodable: it shows ``U+DFFF``, not the surrogate."""
    with pytest.raises(BadRequest) as info:
        clean("\udfff-1", field="id", max_chars=MAX_ID_CHARS)
    assert info.value.code == "bad_text"
    assert "id" in info.value.message and "U+DFFF" in info.value.message
    assert encodable(info.value.message)


def test_empty_terms_are_left_to_the_caller() -> None:
    """White space or marks only: the key is empty and each caller refuses with its code."""
    assert term("  \u0301 ", field="q") == ("\u0301", "")
    assert tidy("  \u0301 ") == "\u0301"


def test_no_code_point_folds_to_more_than_max_fold_growth() -> None:
    """The bound ``clean`` relies on to skip folding short values, checked over all of Unicode
    (folding works code point by code point before white space collapses, so a string grows
    at most this many times)."""
    grows = ((len(fold(f"a{chr(c)}a")) - 2, c) for c in range(0x110000) if chr(c) not in " \t")
    assert max(grows) == (MAX_FOLD_GROWTH, 0xFDFA)
