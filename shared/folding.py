"""Case and accent folding: the one definition of "the same text" for matching.

Both tiers fold with this function: the core when it builds the index keys, the edge when
it reads a query. "São Paulo", "SAO  PAULO" and "sao paulo" all fold to ``"sao paulo"``.

Text from outside reaches these functions only through :mod:`shared.text` (the door), which
bounds its length first: NFKD can turn one character into 18, so folding is linear in the
input but not bounded by the display limit alone (the door also bounds the folded key).
"""

from __future__ import annotations

import unicodedata

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


def fold(text: str) -> str:
    """Fold ``text`` for matching.

    Decomposes (NFKD), drops combining marks and code points that are not text (unassigned,
    private-use, surrogates), case-folds, maps the few Latin letters that do not decompose
    (ø, ł, æ, ...) and collapses runs of white space into one space.

    Args:
        text: any string.

    Returns:
        The folded form; ``""`` when nothing but marks or white space is left.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c) and _is_text(c))
    return " ".join(bare.casefold().translate(_EXTRA).split())


def _is_text(char: str) -> bool:
    # Unassigned code points and noncharacters (U+10FFFF among them), private-use and lone
    # surrogates are not text anyone searches for; dropping them also keeps U+10FFFF free to
    # serve as the "after every key" bound of prefix ranges.
    return unicodedata.category(char) not in ("Cn", "Co", "Cs")


def tidy(text: str) -> str:
    """Collapse white space in a display form, keeping case and accents."""
    return " ".join(unicodedata.normalize("NFC", text).split())
