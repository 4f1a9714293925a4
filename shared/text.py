"""The one door for text from outside: what a string must be before anything else reads it.

Every string that arrives from outside the process passes here before a handler, the
folding, the store or an encoder sees it: every ``str`` field of every wire message, both
codecs, client and link (:mod:`shared.protocol` calls :func:`is_text` in its decoder); every
string in an HTTP JSON body (:func:`shared.http.json_body`); query parameters, admin path
parameters, corpus lines and logged searches (:func:`clean` and :func:`term`).

**The text rule.** A string is text when none of its code points is refused. Refused:

- lone surrogates, U+D800..U+DFFF: not Unicode scalar values, so no UTF-8 encoder (msgpack,
  SQLite, a log line, a websocket text frame) can write them;
- control characters, U+0000..U+001F, U+007F..U+009F (C0, DEL, C1), tab and newlines
  included: nothing lightcone carries is multi-line, and they forge log lines;
- the line and paragraph separators U+2028, U+2029 (line breaks by another name);
- the bidirectional embeddings, overrides and isolates U+202A..U+202E and U+2066..U+2069: they
  reorder how the text around them is shown (spoofed names, "Trojan source"); right-to-left
  text needs none of them, and the marks U+200E, U+200F and U+061C stay allowed;
- the byte order mark U+FEFF (an invisible zero-width no-break space inside text);
- noncharacters, U+FDD0..U+FDEF and the last two code points of every plane (U+FFFE, U+FFFF,
  ..., U+10FFFF): reserved for a program's internal use (the core uses U+10FFFF as the bound
  after every key), never for interchange.

Everything else is allowed, including private-use and not yet assigned code points, zero
width (non-)joiners (needed by emoji and by Persian and Indic scripts) and soft hyphens.

**Limits**, each defined here once (docs/protocol.md §7 lists them):

- :data:`MAX_TERM_CHARS` bounds a term's display form (queries, logged searches, admin terms,
  corpus lines); the edge's ``LIGHTCONE_MAX_QUERY_CHARS`` may only lower it.
- :data:`MAX_KEY_CHARS` bounds its folded key. Folding decomposes (NFKD): one character can
  become up to 15 (U+FDFA), so the display limit alone lets a 100-character term carry a
  1,500-character key, and everything the core does per key prefix grows with the key.
- :data:`MAX_ID_CHARS` bounds a client-made search id.
- :data:`MAX_NAMES` bounds the other names of one term (each one a display form as above).

Refusals are :class:`~shared.errors.BadRequest` (HTTP 400, a websocket ``error``) with a stable
code: ``bad_text`` for a string that is not text, ``key_too_long`` for a key over its limit,
and the caller's code for a display form over its limit (``query_too_long``, ``bad_id``, ...).
The decoder raises :class:`~shared.errors.ProtocolError` with ``bad_text`` instead.
"""

from __future__ import annotations

import re

from shared.errors import BadRequest
from shared.folding import MAX_ASCII_GROWTH, fold, tidy

MAX_TERM_CHARS = 100
"""Longest display form of a term: a query, a logged search, an admin term, a corpus line."""

MAX_KEY_CHARS = MAX_TERM_CHARS
"""Longest folded key: no longer than the longest display form. Real names fold to about their
own length or less (folding drops spaces and punctuation; "St." becomes "saint": the longest
key of the shipped corpus has 72 characters, its longest display form 79). The core's work
per change, and the size of the delta it publishes, grow with the number of hot prefixes of a
key times its length (every prefix of 80 keys sharing a long prefix is hot): this bound keeps
both where 100 ASCII characters already put them (one change of such a key: 0.2 MB of delta in
ASCII, 0.4 MB in a 2-byte script; with twice the bound, 0.8 and 1.5 MB)."""

MAX_ID_CHARS = 128
"""Longest client-made search id."""

MAX_NAMES = 32
"""Most other names one term carries (:mod:`shared.names`; corpus lines, the admin API): big
cities have hundreds in GeoNames; a term's names travel whole in every delta that changes it
(32 names of 100 characters: 3.2 k characters) and a snapshot keeps a name's place in one
byte."""

MAX_FOLD_GROWTH = 15
"""Most characters one code point folds to (U+FDFA, 18 characters once decomposed, 3 of them
spaces; tests/shared/test_text.py checks every code point). A string of ``n`` characters folds
to at most ``15 n`` (abbreviations grow less: "ﬆ " is 2 code points, "saint" 5): a query
short enough for that to fit the key limit needs no fold to be checked, which keeps folding
off the hot path."""

_NONCHARACTERS = "".join(rf"\U{plane:04x}fffe-\U{plane:04x}ffff" for plane in range(0x0001, 0x0011))
_REFUSED = re.compile(
    r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028-\u202e\u2066-\u2069\ufeff\ufdd0-\ufdef\ufffe\uffff"
    + _NONCHARACTERS
    + "]"
)
"""One refused code point (see the module docstring for the rule and why)."""


def is_text(value: str) -> bool:
    """Whether ``value`` follows the text rule (no refused code point).

    The decoder calls this on every string of every message, so it is made for speed: ASCII
    (most of what clients send) is answered by two C-level checks, in tens of nanoseconds;
    only other strings pay a regular-expression scan, linear in their length.
    """
    if value.isascii():
        return value.isprintable()  # for ASCII: false exactly on U+0000..U+001F and U+007F
    return _REFUSED.search(value) is None


def refused(value: str) -> str | None:
    """The first refused code point of ``value`` as ``U+XXXX``, or ``None`` if it is text."""
    found = _REFUSED.search(value)
    return None if found is None else f"U+{ord(found.group()):04X}"


def not_text_message(field: str, value: str) -> str:
    """The message of a ``bad_text`` refusal: names the field and the code point, never
    repeats the value (it may not be encodable)."""
    return (
        f"{field} is not text: it contains {refused(value)} (lone surrogates, control "
        "characters, line separators, bidi overrides, byte order marks and noncharacters "
        "are refused)"
    )


def clean(
    value: str,
    *,
    field: str,
    max_chars: int,
    max_key_chars: int | None = None,
    code: str = "too_long",
) -> str:
    """``value`` itself, once it is known to be text within its limits.

    Args:
        value: a string from outside.
        field: its name, for the error message.
        max_chars: most characters ``value`` may have.
        max_key_chars: if given, most characters its folded key may have.
        code: the error code when ``value`` is over ``max_chars``.

    Raises:
        BadRequest: ``bad_text`` if it is not text; ``code`` if it is over ``max_chars``;
            ``key_too_long`` if it folds to more than ``max_key_chars``.
    """
    if not (value.isascii() and value.isprintable()) and not is_text(value):  # is_text, inlined
        raise BadRequest(not_text_message(field, value), code="bad_text")
    if len(value) > max_chars:
        raise BadRequest(f"{field} is longer than {max_chars} characters", code=code)
    # Only a value that could fold over the limit is folded: not one short enough that even
    # the greatest growth fits, and not ASCII short enough that its greatest growth fits
    # (5/3: only abbreviations lengthen ASCII, "st " → "saint").
    if (
        max_key_chars is not None
        and len(value) * MAX_FOLD_GROWTH > max_key_chars
        and (len(value) * MAX_ASCII_GROWTH > max_key_chars or not value.isascii())
    ):
        _check_key(field, fold(value), max_key_chars)
    return value


def term(
    value: str, *, field: str, max_chars: int = MAX_TERM_CHARS, code: str = "too_long"
) -> tuple[str, str]:
    """The display form and folded key of a term from outside.

    ``value`` must be text; its display form (:func:`~shared.folding.tidy`: NFC, white space
    collapsed) must fit ``max_chars`` (never more than :data:`MAX_TERM_CHARS`), and only then
    is it folded, so folding only ever sees bounded text; its key must fit
    :data:`MAX_KEY_CHARS`. The key may be ``""`` (white space or marks only): each caller
    refuses that with its own code.

    Raises:
        BadRequest: ``bad_text``, ``code`` or ``key_too_long``, as :func:`clean`.
    """
    max_chars = min(max_chars, MAX_TERM_CHARS)
    if not is_text(value):
        raise BadRequest(not_text_message(field, value), code="bad_text")
    display = tidy(value)
    if len(display) > max_chars:
        raise BadRequest(f"{field} is longer than {max_chars} characters", code=code)
    key = fold(display)
    _check_key(field, key, MAX_KEY_CHARS)
    return display, key


def _check_key(field: str, key: str, max_key_chars: int) -> None:
    if len(key) > max_key_chars:
        raise BadRequest(
            f"{field} folds to {len(key)} characters, over the limit of {max_key_chars} "
            "(some characters decompose into many)",
            code="key_too_long",
        )
