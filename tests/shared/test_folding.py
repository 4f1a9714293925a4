"""Case and accent folding (the matching key) and tidying (the display form)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from shared.folding import fold, tidy


def test_sao_paulo_spellings_fold_to_one_key() -> None:
    """Accents, case and runs of spaces do not matter: all spellings give "sao paulo"."""
    assert fold("São Paulo") == fold("SAO  PAULO") == fold("sao paulo") == "sao paulo"


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
        ("Đà Nẵng", "da nang"),
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


def test_white_space_is_trimmed_and_collapsed() -> None:
    """Leading/trailing white space goes; any inner run (tabs, newlines, NBSP) is one space."""
    assert fold("  new\t\tyork \n city\u00a0 ") == "new york city"


@pytest.mark.parametrize("text", ["", "   ", "\t\n", "\u0301\u0308", " \u0301 "])
def test_nothing_but_marks_or_space_folds_to_empty(text: str) -> None:
    """When only combining marks or white space are left, the key is empty."""
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
    assert fold(tidy(" Ærø  Købing ")) == fold(" Ærø  Købing ") == "aero kobing"


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=30))
def test_fold_is_idempotent(text: str) -> None:
    """Folding a folded key changes nothing."""
    once = fold(text)
    assert fold(once) == once


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=30))
def test_fold_has_no_outer_or_double_space(text: str) -> None:
    """A key never starts or ends with a space and has no two spaces in a row."""
    key = fold(text)
    assert key == key.strip()
    assert "  " not in key


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=30))
def test_tidy_is_idempotent(text: str) -> None:
    """Tidying a tidy display form changes nothing."""
    once = tidy(text)
    assert tidy(once) == once
