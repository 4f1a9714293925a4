"""What the serving benchmark asks: the prefixes people type, as HTTP paths and as frames."""

from __future__ import annotations

import urllib.parse

from shared.protocol import Suggest, encode

PREFIXES: tuple[str, ...] = (
    # What people type into a city search box, keystroke by keystroke: short (hot, served from
    # precomputed top lists) and longer (ranked from the trie), accents and capitals included.
    *("p", "pa", "par", "pari", "paris"),
    *("l", "lo", "lon", "lond", "London"),
    *("new", "new y", "New Yo", "new york"),
    *("san", "san f", "san fr", "São", "São P", "sao pa"),
    *("tok", "toky", "ber", "berl", "mün", "munc", "mum", "mumb"),
    *("del", "delh", "bei", "beij", "sha", "shan", "ist", "ista"),
    *("mos", "mosc", "los", "los a", "Los An", "chi", "chic", "chica"),
    *("bue", "buenos", "mex", "mexi", "ca", "cai", "cair", "lag", "lago"),
    *("kra", "krak", "Kraków", "zü", "züri", "ham", "hamb", "bar", "barc"),
    *("mad", "madr", "rom", "rome", "wien", "wro", "göt", "göte", "Reykj"),
    *("ho chi", "kuala l", "rio de", "st. p", "saint", "fort", "port", "springf", "xyzq"),
)


LIMIT = 10


def paths(route: str) -> list[str]:
    """``route?q=<prefix>&limit=…`` for every prefix."""
    return [f"{route}?q={urllib.parse.quote(p)}&limit={LIMIT}" for p in PREFIXES]


def frames() -> list[bytes]:
    """A msgpack ``suggest`` message for every prefix."""
    return [encode(Suggest(i, p, LIMIT)) for i, p in enumerate(PREFIXES)]
