"""Folding (the matching key) and tidying (the display form)."""

from __future__ import annotations

import unicodedata
from fractions import Fraction

import pytest
from hypothesis import given, settings, strategies as st

from load.quality.generate import fold_v1
from shared.folding import ABBREVIATIONS, FOLD_VERSION, MAX_ASCII_GROWTH, fold, tidy
from shared.text import MAX_FOLD_GROWTH


def test_sao_paulo_spellings_fold_to_one_key() -> None:
    """Accents, case, spaces and hyphens do not matter: all spellings give "saopaulo"."""
    assert fold("São Paulo") == fold("SAO  PAULO") == fold("sao-paulo") == "saopaulo"
    assert fold("saopaulo") == "saopaulo"


def test_the_fold_version_is_2() -> None:
    assert FOLD_VERSION == 2


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Xi’an", "xian"),
        ("Xi'an", "xian"),
        ("xian", "xian"),
        ("New York City", "newyorkcity"),
        ("Winston-Salem", "winstonsalem"),
        ("St. John's", "saintjohns"),
        ("Washington, D.C.", "washingtondc"),
        ("Frankfurt (Oder)", "frankfurtoder"),
        ("Ust’-Kamenogorsk", "ustkamenogorsk"),
        ("東京・新宿", "東京新宿"),
        ("A+B = 5 $", "a+b=5$"),  # symbols (S*) and digits are part of words
    ],
)
def test_spaces_and_punctuation_do_not_count(text: str, folded: str) -> None:
    """White space and punctuation (P*) are dropped; symbols and digits stay."""
    assert fold(text) == folded


@pytest.mark.parametrize(
    "text",
    ["St. Petersburg", "st petersburg", "ST.PETERSBURG", "St-Petersburg", "Saint Petersburg"],
)
def test_st_followed_by_a_word_is_saint(text: str) -> None:
    assert fold(text) == "saintpetersburg"


def test_every_abbreviation_expands_before_another_word() -> None:
    assert fold("Sault Ste. Marie") == "saultsaintemarie"
    assert fold("Mt Pleasant") == "mountpleasant"
    assert fold("Ft. Worth") == "fortworth"
    assert fold("North St.James Town") == "northsaintjamestown"
    assert fold("ﬆ. Louis") == "saintlouis"  # the ligature decomposes to "st" first
    assert set(ABBREVIATIONS) == {"st", "ste", "mt", "ft"}


def test_a_final_word_being_typed_is_not_expanded() -> None:
    """ "st" is a prefix of Stockholm; only a separator after it says the word is done."""
    assert fold("st") == "st"
    assert fold("St") == "st"
    assert fold("Mt") == "mt"
    assert fold("Bury St") == "buryst"


@pytest.mark.parametrize("text", ["st.", "st ", "St. ", "st -"])
def test_a_finished_final_abbreviation_is_expanded(text: str) -> None:
    assert fold(text) == "saint"


def test_abbreviations_are_whole_words_only() -> None:
    assert fold("Stanford") == "stanford"
    assert fold("Ust Nera") == "ustnera"
    assert fold("Mtwara") == "mtwara"


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Zürich", "zurich"),
        ("Kraków", "krakow"),
        ("Ñuñoa", "nunoa"),
        ("Besançon", "besancon"),
        ("Ærøskøbing", "aeroskobing"),
        ("Łódź", "lodz"),
        ("Tromsø", "tromso"),
        ("Đà Nẵng", "danang"),
        ("Þórshöfn", "thorshofn"),
        ("Œuvre", "oeuvre"),
        ("İstanbul", "istanbul"),
        ("Diyarbakır", "diyarbakir"),
        ("Ħamrun", "hamrun"),
        ("Reykjavík", "reykjavik"),
    ],
)
def test_accented_and_special_latin_letters_fold_to_ascii(text: str, folded: str) -> None:
    """Marks are dropped and letters without a decomposition (ł, ø, æ, ...) are mapped."""
    assert fold(text) == folded


def test_sharp_s_folds_to_ss() -> None:
    """ß and ẞ case-fold to "ss", so "Straße" matches "strasse"."""
    assert fold("Straße") == fold("STRAẞE") == fold("Strasse") == "strasse"


def test_compatibility_forms_fold_to_plain_letters() -> None:
    """NFKD maps ligatures, full-width and superscript forms to plain letters."""
    assert fold("ﬁnd") == "find"
    assert fold("ＡＢＣ") == "abc"
    assert fold("x²") == "x2"


def test_non_latin_scripts_are_kept_but_case_folded() -> None:
    """Folding does not transliterate: Cyrillic stays Cyrillic, in lower case."""
    assert fold("МОСКВА") == "москва"
    assert fold("東京") == "東京"


def test_white_space_goes() -> None:
    """Any white space (tabs, newlines, NBSP) is dropped."""
    assert fold("  new\t\tyork \n city\u00a0 ") == "newyorkcity"


@pytest.mark.parametrize(
    "text", ["", "   ", "\t\n", "\u0301\u0308", " \u0301 ", "'", " - ", "...", "«»"]
)
def test_nothing_but_marks_space_or_punctuation_folds_to_empty(text: str) -> None:
    """When only combining marks, white space or punctuation are left, the key is empty."""
    assert fold(text) == ""


def test_tidy_keeps_case_and_accents() -> None:
    """tidy only collapses white space; the display form keeps its letters."""
    assert tidy("  São   Paulo\t") == "São Paulo"


def test_tidy_composes_to_nfc() -> None:
    """A decomposed display form is stored composed, so equal texts are equal strings."""
    assert tidy("Sa\u0303o") == "São"


def test_tidy_of_white_space_is_empty() -> None:
    """A display form of only white space tidies to the empty string."""
    assert tidy(" \t\n ") == ""


def test_fold_of_tidy_equals_fold() -> None:
    """Tidying first does not change the key."""
    assert fold(tidy(" Ærø  Købing ")) == fold(" Ærø  Købing ") == "aerokobing"


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=30))
def test_fold_is_idempotent(text: str) -> None:
    """Folding a folded key changes nothing."""
    once = fold(text)
    assert fold(once) == once


# Text with the separators and abbreviations the rules are about mixed in.
_WORDY = st.lists(
    st.one_of(
        st.text(max_size=6),
        st.sampled_from([" ", ".", "-", "'", "’", "\u00a0", "St", "st", "ste", "Mt", "ft", "ﬆ"]),
    ),
    max_size=12,
).map("".join)


@settings(max_examples=300, deadline=None, database=None)
@given(st.one_of(st.text(max_size=30), _WORDY))
def test_fold_is_idempotent_and_stable(text: str) -> None:
    """Folding a key changes nothing, and folding the same text twice gives the same key."""
    once = fold(text)
    assert fold(once) == once == fold(text)


@settings(max_examples=300, deadline=None, database=None)
@given(st.one_of(st.text(max_size=30), _WORDY))
def test_a_key_holds_no_separator(text: str) -> None:
    """No white space and no punctuation is left in a key."""
    key = fold(text)
    assert not any(c.isspace() or unicodedata.category(c).startswith("P") for c in key)


@settings(max_examples=300, deadline=None, database=None)
@given(st.one_of(st.text(max_size=30), _WORDY))
def test_growth_is_bounded(text: str) -> None:
    """A text folds to at most ``MAX_FOLD_GROWTH`` characters per character, ASCII to at
    most ``MAX_ASCII_GROWTH`` (the bounds the text door relies on)."""
    key = fold(text)
    assert len(key) <= MAX_FOLD_GROWTH * len(text)
    if text.isascii():
        assert len(key) <= MAX_ASCII_GROWTH * len(text)


def test_ascii_growth_is_reached_by_st() -> None:
    assert MAX_ASCII_GROWTH == Fraction(len("saint"), len("st "))
    assert len(fold("st " * 20)) == 100 == MAX_ASCII_GROWTH * 60


@settings(max_examples=300, deadline=None, database=None)
@given(st.one_of(st.text(max_size=30), _WORDY))
def test_the_fast_ascii_path_agrees_with_the_general_one(text: str) -> None:
    """ASCII text skips NFKD and the per-character checks; a non-ASCII character that folds
    to nothing (a combining mark) sends the same text down the general path."""
    assert fold(text + "\u0301") == fold(text) or not text.isascii() or text[-1:].isspace()


@settings(max_examples=300, deadline=None, database=None)
@given(st.one_of(st.text(max_size=30), _WORDY))
def test_refolding_a_version_1_key_gives_the_version_2_key(text: str) -> None:
    """What lets a store re-key its rows from their old keys alone (the searches have no
    display form): version 2 of a version-1 key is version 2 of the text. Stored keys are
    keys of tidy display forms (the door tidies first); version 1 dropped the trailing white
    space that finishes an abbreviation in version 2."""
    display = tidy(text)
    assert fold(fold_v1(display)) == fold(display)


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=30))
def test_tidy_is_idempotent(text: str) -> None:
    """Tidying a tidy display form changes nothing."""
    once = tidy(text)
    assert tidy(once) == once
