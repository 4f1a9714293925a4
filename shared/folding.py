"""Folding: the one definition of "the same text" for matching.

Both tiers fold with this function: the core when it builds the index keys, the edge when
it reads a query. "São Paulo", "SAO  PAULO", "sao-paulo" and "saopaulo" all fold to
``"saopaulo"``; "St. Petersburg", "st petersburg" and "Saint-Petersburg" to
``"saintpetersburg"``.

**The rules** (version :data:`FOLD_VERSION`; docs/protocol.md, "Folding"), in order:

1. Decompose (NFKD): ligatures, full-width and superscript forms become plain letters.
2. Drop combining marks and code points that are not text (unassigned, private-use, lone
   surrogates).
3. Case-fold, and map the few Latin letters that carry no mark to decompose (ø, ł, æ, ...).
4. Separators split the text into words: white space and punctuation (Unicode categories
   ``P*``: apostrophes, hyphens, periods, commas, brackets, ``&``, ...). Symbols (``S*``: ``+``,
   ``=``, ``$``) and digits are part of words.
5. A word of :data:`ABBREVIATIONS` followed by a separator expands to its full word
   ("st. louis", "st louis", "st-louis" and "st.louis" all give "saintlouis"). A final
   word with nothing after it is being typed and stays as it is: "st" is a prefix of
   "stockholm" and "stuttgart". A final abbreviation with a separator after it ("st.",
   "st ") is finished, and expands: it suggests the saints.
6. The words are joined with nothing between them: separators do not count, so "xian"
   finds "Xi'an", "newyork" "New York City", "winstonsalem" "Winston-Salem".

A key therefore never holds white space or punctuation, and folding a key changes nothing.

Text from outside reaches these functions only through :mod:`shared.text` (the door), which
bounds its length first: NFKD can turn one character into 18, so folding is linear in the
input but not bounded by the display limit alone (the door also bounds the folded key).
"""

from __future__ import annotations

import functools
import unicodedata
from fractions import Fraction

FOLD_VERSION = 2
"""The version of the rules above. Keys made by one version are only comparable with keys of
the same version: the core re-keys a store made by an older one when it opens it
(:mod:`core_region.rekey`), a snapshot says which version made its keys, and an edge refuses a
snapshot of another. Version 1 kept single spaces and punctuation and had no abbreviations."""

ABBREVIATIONS: dict[str, str] = {
    "st": "saint",
    "ste": "sainte",
    "mt": "mount",
    "ft": "fort",
}
"""Abbreviations of place names and the word each stands for (rule 5). Those that occur in the
shipped corpus (St. 95 times, Ste. 3, Mt. 2) and Ft. (Ft. Worth, Ft. Lauderdale). Not "Pt"
(in Indian names it means "Part": "Ambicapur Pt VIII"), "Col" or "Brgy", which are rare and
ambiguous."""

MAX_ASCII_GROWTH = max(Fraction(len(full), len(short) + 1) for short, full in ABBREVIATIONS.items())
"""Most an ASCII text grows when folded, per character: only an abbreviation and the separator
after it grow ("st " is 3 characters, "saint" 5), so ``n`` ASCII characters fold to at most
``n * 5 / 3`` (the text door relies on it to skip folding short ASCII queries)."""

# Latin letters that carry no combining mark in Unicode, so NFKD leaves them alone.
_EXTRA = str.maketrans(
    {
        "ø": "o",
        "đ": "d",
        "ð": "d",
        "ł": "l",
        "ħ": "h",
        "ı": "i",
        "æ": "ae",
        "œ": "oe",
        "þ": "th",
    }
)


_ABBREVIATED = frozenset(ABBREVIATIONS)


def _is_separator(char: str) -> bool:
    return char.isspace() or unicodedata.category(char).startswith("P")


_ASCII_SEPARATORS = str.maketrans({c: " " for c in map(chr, range(128)) if _is_separator(c)})
"""ASCII text's separators as spaces: the fast path of :func:`fold` (most queries are ASCII;
for ASCII, NFKD changes nothing, nothing is a mark or unassigned and case-folding is
``lower``)."""


def fold(text: str) -> str:
    """Fold ``text`` for matching, by the rules of the module docstring.

    Args:
        text: any string.

    Returns:
        The folded key, with no white space or punctuation; ``""`` when nothing but marks,
        white space or punctuation is left.
    """
    spaced = spaced_text(text)
    words = spaced.split()
    if _ABBREVIATED.isdisjoint(words):  # most text: no abbreviation to expand
        return "".join(words)
    finished = spaced[-1:].isspace()  # a separator after the last word
    last = len(words) - (0 if finished else 1)
    return "".join(
        ABBREVIATIONS.get(word, word) if i < last else word for i, word in enumerate(words)
    )


def spaced_text(text: str) -> str:
    """``text`` after rules 1 to 3, its separators as spaces: what :func:`fold` splits into
    words (rule 4) and joins (rules 5 and 6).

    Character by character: ``spaced_text(a + b) == spaced_text(a) + spaced_text(b)`` (NFKD
    decomposes each character alone and reorders only combining marks, which are dropped;
    case-folding and the extra letters map one character at a time), so a table of
    ``spaced_text(c)`` for some characters folds any text made of them
    (:mod:`edge_node.suggest.pack`: the demo page folds with one).
    """
    if text.isascii():
        return text.translate(_ASCII_SEPARATORS).lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(map(_spaced_cached, decomposed)).casefold().translate(_EXTRA)


def _spaced(char: str) -> str:
    """``char`` as folding reads it: ``""`` for a mark or a code point that is not text,
    ``" "`` for a separator, else itself."""
    if unicodedata.combining(char):
        return ""
    category = unicodedata.category(char)
    # Unassigned code points and noncharacters (U+10FFFF among them), private-use and lone
    # surrogates are not text anyone searches for; dropping them also keeps U+10FFFF free to
    # serve as the "after every key" bound of prefix ranges.
    if category in ("Cn", "Co", "Cs"):
        return ""
    if category[0] == "P" or char.isspace():
        return " "
    return char


_spaced_cached = functools.lru_cache(maxsize=4096)(_spaced)
""":func:`_spaced` of the 4,096 characters used last (a few hundred in a corpus of place
names): a lookup in C per character, not two Unicode database calls in Python (a second
less for a million-line corpus)."""


def tidy(text: str) -> str:
    """Collapse white space in a display form, keeping case and accents."""
    return " ".join(unicodedata.normalize("NFC", text).split())
