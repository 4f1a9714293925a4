"""Reading a corpus: term<TAB>weight lines, refused as a whole if any line is bad."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from core_region.suggest.corpus import (
    MAX_WEIGHT,
    CorpusError,
    _door_line,
    _line,
    load,
    parse,
)
from shared.text import MAX_TERM_CHARS


def lines(text: str) -> list[bytes]:
    return text.encode("utf-8").split(b"\n")


def problems(data: list[bytes]) -> list[tuple[int, str]]:
    with pytest.raises(CorpusError) as info:
        parse(data)
    return info.value.problems


def test_good_lines_give_key_term_and_weight() -> None:
    """Each line becomes (folded key, tidy display form, weight)."""
    assert parse(lines("São Paulo\t12000\nLyon\t500\n")) == [
        ("saopaulo", "São Paulo", 12000),
        ("lyon", "Lyon", 500),
    ]


def test_comments_and_blank_lines_are_ignored() -> None:
    """Lines starting with # and lines of only white space are skipped."""
    text = "# cities\n\n   \nLyon\t5\n#Paris\t9\n\t\n"
    assert parse(lines(text)) == [("lyon", "Lyon", 5)]


def test_display_form_is_tidied_and_weight_stripped() -> None:
    """White space runs in the term collapse; spaces and CR around the weight are fine."""
    assert parse([b"  New   York \t 42 \r"]) == [("newyork", "New York", 42)]


def test_empty_input_is_an_empty_corpus() -> None:
    """No lines, no terms."""
    assert parse([]) == []


def test_terms_folding_to_one_key_keep_the_heaviest() -> None:
    """Duplicates by folded key are one term: the heaviest display form wins."""
    text = "sao paulo\t10\nSão Paulo\t30\nSAO-PAULO\t20\n"
    assert parse(lines(text)) == [("saopaulo", "São Paulo", 30)]


def test_equal_weight_duplicates_keep_the_first() -> None:
    """On equal weights the first display form wins."""
    assert parse(lines("Zurich\t5\nZürich\t5\n")) == [("zurich", "Zurich", 5)]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"Lyon 5", "got 1 field(s)"),
        (b"Lyon\t5\t", "names[0] is empty after folding"),
        (b"Lyon\tfive", "'five' is not a whole number"),
        (b"Lyon\t5.0", "is not a whole number"),
        (b"Lyon\t-5", "'-5' is not a whole number"),
        (b"Lyon\t", "'' is not a whole number"),
        (b"Lyon\t\xd9\xa5", "is not a whole number"),  # Arabic-Indic digit five
        (b"Lyon\t0", "weight 0 is out of range"),
        (str.encode(f"Lyon\t{MAX_WEIGHT + 1}"), f"out of range 1..{MAX_WEIGHT}"),
        (b"Lyon\t" + b"9" * 40, "out of range"),
        (b"\t5", "empty term"),
        (b"   \t5", "empty term"),
        (b"\xcc\x81\t5", "empty term"),  # only a combining accent
        (b"x" * (MAX_TERM_CHARS + 1) + b"\t5", f"longer than {MAX_TERM_CHARS} characters"),
        (b"Ly\xffon\t5", "not valid UTF-8"),
        (b"Ly\xed\xbf\xbfon\t5", "not valid UTF-8"),  # an encoded lone surrogate
        (b"Ly\x00on\t5", "not text: it contains U+0000"),
        (b"Ly\x1b[2Jon\t5", "not text: it contains U+001B"),
        (b"Lyon\xe2\x80\xa8Nice\t5", "not text: it contains U+2028"),
        (b"\xe2\x80\xaeLyon\t5", "not text: it contains U+202E"),
        (b"\xef\xb7\xba" * 7 + b"\t5", "folds to 105 characters, over the limit of 100"),
        (b"... -\t5", "empty term"),  # only punctuation
        (b"Lyon\t5\xc3", "not valid UTF-8"),
    ],
)
def test_bad_line_is_reported_with_its_number_and_reason(line: bytes, reason: str) -> None:
    """A bad line refuses the load; its number and the reason are in the error."""
    found = problems([b"# header", b"Paris\t1", line, b"Nice\t2"])
    assert len(found) == 1
    number, why = found[0]
    assert number == 3
    assert reason in why


def test_boundary_weights_and_lengths_are_accepted() -> None:
    """Weight 1 and MAX_WEIGHT, and a term of exactly MAX_TERM_CHARS, are fine."""
    term = "x" * MAX_TERM_CHARS
    parsed = parse([b"a\t1", f"b\t{MAX_WEIGHT}".encode(), f"{term}\t3".encode()])
    assert parsed == [("a", "a", 1), ("b", "b", MAX_WEIGHT), (term, term, 3)]


def test_term_length_counts_characters_not_bytes() -> None:
    """A term of MAX_TERM_CHARS accented letters is not too long."""
    term = "é" * MAX_TERM_CHARS
    assert parse([f"{term}\t1".encode()]) == [("e" * MAX_TERM_CHARS, term, 1)]


def test_error_lists_every_bad_line_in_order() -> None:
    """All bad lines are collected, good ones are not mentioned, the message names the source."""
    data = lines("ok\t1\nbad\nalso bad\t0\nfine\t2\n\t3\n")
    with pytest.raises(CorpusError) as info:
        parse(data, "cities.tsv")
    error = info.value
    assert [n for n, _ in error.problems] == [2, 3, 5]
    assert error.source == "cities.tsv"
    message = str(error)
    assert message.startswith("cities.tsv: 3 bad line(s), load refused: line 2: ")
    assert "line 3: weight 0 is out of range" in message
    assert "line 5: empty term" in message
    assert "more)" not in message


def test_error_message_shows_ten_lines_and_counts_the_rest() -> None:
    """With 13 bad lines the message shows the first 10 and says 3 more."""
    data = [f"bad {i}".encode() for i in range(1, 14)]
    with pytest.raises(CorpusError) as info:
        parse(data)
    message = str(info.value)
    assert len(info.value.problems) == 13
    assert "13 bad line(s)" in message
    assert "line 10:" in message
    assert "line 11:" not in message
    assert message.endswith("(and 3 more)")


def test_error_with_exactly_ten_lines_has_no_more() -> None:
    """Ten bad lines are all shown, without an "and more" note."""
    message = str(CorpusError("c", [(i, "bad") for i in range(1, 11)]))
    assert "line 10: bad" in message
    assert "more" not in message


# --- load ------------------------------------------------------------------------------------

TEXT = b"# test corpus\nLyon\t5\nParis\t9\n"


def test_load_reads_a_plain_file(tmp_path: Path) -> None:
    """A plain UTF-8 file loads; the corpus id is the sha256 of its bytes."""
    path = tmp_path / "corpus.tsv"
    path.write_bytes(TEXT)
    corpus = load(path)
    assert corpus.entries == [("lyon", "Lyon", 5), ("paris", "Paris", 9)]
    assert corpus.corpus_id == hashlib.sha256(TEXT).hexdigest()


def test_load_reads_a_gzip_file(tmp_path: Path) -> None:
    """A gzip file (any name) is recognised by its magic bytes and gives the same entries."""
    path = tmp_path / "corpus.data"
    packed = gzip.compress(TEXT, mtime=0)
    path.write_bytes(packed)
    corpus = load(path)
    assert corpus.entries == [("lyon", "Lyon", 5), ("paris", "Paris", 9)]
    assert corpus.corpus_id == hashlib.sha256(packed).hexdigest()


def test_corpus_id_is_stable_and_follows_content(tmp_path: Path) -> None:
    """Loading the same bytes twice gives the same id; other bytes another one."""
    first, second, other = tmp_path / "a.tsv", tmp_path / "b.tsv", tmp_path / "c.tsv"
    first.write_bytes(TEXT)
    second.write_bytes(TEXT)
    other.write_bytes(TEXT + b"Nice\t1\n")
    assert load(first).corpus_id == load(second).corpus_id == load(first).corpus_id
    assert load(other).corpus_id != load(first).corpus_id


def test_load_of_a_bad_file_names_the_path(tmp_path: Path) -> None:
    """The error's source is the file path."""
    path = tmp_path / "bad.tsv"
    path.write_bytes(b"Lyon\t5\nParis\n")
    with pytest.raises(CorpusError) as info:
        load(path)
    assert info.value.source == str(path)
    assert info.value.problems == [(2, "expected 'term<TAB>weight[<TAB>name...]', got 1 field(s)")]


def test_load_of_a_missing_file_raises_os_error(tmp_path: Path) -> None:
    """A file that cannot be read is an OSError, not a CorpusError."""
    with pytest.raises(OSError):
        load(tmp_path / "missing.tsv")


def _outcome(read: Callable[[bytes], object], line: bytes) -> object:
    try:
        return read(line)
    except ValueError as exc:
        return ("refused", str(exc))


_ASCII_PIECES = st.sampled_from(
    [
        "a",
        "Z",
        "7",
        " ",
        "  ",
        "\t",
        "\r",
        "\n",
        "#",
        "-",
        ".",
        "'",
        "st",
        "St. ",
        "Mt ",
        "ft",
        "0",
        "9007199254740992",
        "9007199254740993",
        "\x00",
        "\x1f",
        "\x7f",
        "\x0b",
        "é",
    ]
)


@settings(max_examples=2000, deadline=None)
@given(
    st.one_of(
        st.lists(_ASCII_PIECES, max_size=12).map("".join),
        st.text(st.characters(max_codepoint=0x7F), max_size=120),
        st.builds(
            lambda term, weight: f"{term}\t{weight}",
            st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=110),
            st.integers(min_value=-1, max_value=MAX_WEIGHT + 1),
        ),
    )
)
def test_plain_ascii_lines_read_as_through_the_door(text: str) -> None:
    """The fast way for plain ASCII lines gives what the whole door gives: the same entry,
    or the same refusal."""
    line = text.encode("utf-8")
    assert _outcome(_line, line) == _outcome(_door_line, line)


def test_plain_ascii_lines_at_the_limits_read_as_through_the_door() -> None:
    """Terms and keys at and over their limits, abbreviations, weights at the bounds."""
    cases = [
        "x" * MAX_TERM_CHARS + "\t5",
        "x" * (MAX_TERM_CHARS + 1) + "\t5",
        "st " * 33 + "x\t5",  # a key over its limit from a term within its own
        "St. Louis\t1",
        f"Lyon\t{MAX_WEIGHT}",
        f"Lyon\t{MAX_WEIGHT + 1}",
        "Lyon\t0",
        "- . '\t5",
        "#Lyon\t5",
        " #Lyon\t5",
        "Lyon\t 5 ",
        "Lyon\t5\r",
    ]
    for text in cases:
        line = text.encode()
        assert _outcome(_line, line) == _outcome(_door_line, line), text
