"""What the users read from ``LIGHTCONE_*`` environment variables, and which target each gets."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from locust.exception import StopUser

from load.plan import MODES, ZIPF_S


def _range_ms(value: str, default: tuple[float, float]) -> tuple[float, float]:
    """``"120-280"`` → (0.12, 0.28) seconds; a single number is a fixed time."""
    if not value.strip():
        return default[0] / 1000, default[1] / 1000
    low, _, high = value.partition("-")
    a, b = float(low), float(high or low)
    if a < 0 or b < a:
        raise ValueError(f"bad range {value!r}: want MIN-MAX in ms, 0 <= MIN <= MAX")
    return a / 1000, b / 1000


def parse_targets(text: str) -> list[tuple[str, str]]:
    """``"syd=http://a,lhr=http://b"`` → [("syd", "http://a"), ("lhr", "http://b")]."""
    targets = []
    for item in text.split(","):
        if not item.strip():
            continue
        city, sep, url = item.partition("=")
        if not sep or not city.strip() or not url.strip():
            raise ValueError(f"LIGHTCONE_TARGETS: want city=url, got {item!r}")
        targets.append((city.strip(), url.strip().rstrip("/")))
    return targets


@dataclass(frozen=True)
class Settings:
    """What the users read from ``LIGHTCONE_*`` environment variables (see the module doc)."""

    targets: list[tuple[str, str]]
    city: str
    scenario: str
    expect_mode: str | None
    codec: str
    key_s: tuple[float, float]
    pause_s: tuple[float, float]
    move_hz: float
    room_size: int
    room_prefix: str
    prefer_region: str | None
    out_dir: Path | None
    limit: int
    session: bool
    """Suggest users keep the newest bookmark they were given and present it, and some of
    their queries end in a search (``LIGHTCONE_SESSION=1``)."""
    search_share: float
    """Share of the HTTP user's typed queries that end in a search and a read-your-writes read
    (``LIGHTCONE_SEARCH_SHARE``; none by default: a run against a deployment writes nothing
    unless asked)."""
    zipf_s: float
    """Exponent of the query mix (``LIGHTCONE_ZIPF_S``; 0: every name alike)."""
    cache_tag: str
    """Added to every ``GET /suggest`` as ``&run=`` (``LIGHTCONE_CACHE_TAG``), so that a PoP
    starts each run cold and never serves one run an answer cached under another's level."""

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        codec = env.get("LIGHTCONE_CODEC", "msgpack") or "msgpack"
        if codec not in ("msgpack", "json"):
            raise ValueError(f"LIGHTCONE_CODEC: msgpack or json, not {codec!r}")
        expect = env.get("LIGHTCONE_EXPECT_MODE") or None
        if expect is not None and expect not in MODES:
            raise ValueError(f"LIGHTCONE_EXPECT_MODE: one of {', '.join(MODES)}, not {expect!r}")
        share = float(env.get("LIGHTCONE_SEARCH_SHARE") or 0)
        zipf_s = float(env.get("LIGHTCONE_ZIPF_S") or ZIPF_S)
        if not 0 <= share <= 1 or zipf_s < 0:
            raise ValueError("LIGHTCONE_SEARCH_SHARE must be in 0..1, LIGHTCONE_ZIPF_S >= 0")
        out = env.get("LIGHTCONE_OUT_DIR")
        room_size = int(env.get("LIGHTCONE_ROOM_SIZE") or 8)
        move_hz = float(env.get("LIGHTCONE_MOVE_HZ") or 30)
        if room_size < 2 or move_hz <= 0:
            raise ValueError("LIGHTCONE_ROOM_SIZE must be >= 2 and LIGHTCONE_MOVE_HZ > 0")
        return cls(
            targets=parse_targets(env.get("LIGHTCONE_TARGETS", "")),
            city=env.get("LIGHTCONE_CITY") or "here",
            scenario=env.get("LIGHTCONE_SCENARIO") or "",
            expect_mode=expect,
            codec=codec,
            key_s=_range_ms(env.get("LIGHTCONE_KEY_MS", ""), (120, 280)),
            pause_s=_range_ms(env.get("LIGHTCONE_PAUSE_MS", ""), (500, 1500)),
            move_hz=move_hz,
            room_size=room_size,
            room_prefix=env.get("LIGHTCONE_ROOM_PREFIX")
            or f"bench-{os.getpid()}-{time.time():.0f}",
            prefer_region=env.get("LIGHTCONE_PREFER_REGION") or None,
            out_dir=Path(out) if out else None,
            limit=int(env.get("LIGHTCONE_LIMIT") or 10),
            session=env.get("LIGHTCONE_SESSION") == "1",
            search_share=share,
            zipf_s=zipf_s,
            cache_tag=env.get("LIGHTCONE_CACHE_TAG") or "",
        )


SETTINGS = Settings.from_environ()


START_SPREAD_S = 0.5
"""Users start within this long of each other, not in lockstep."""


def assign(counter: Iterator[int], host: str | None) -> tuple[int, str, str]:
    """The next user's index, city and base URL (round-robin over the targets)."""
    n = next(counter)
    targets = SETTINGS.targets or [(SETTINGS.city, (host or "").rstrip("/"))]
    city, url = targets[n % len(targets)]
    if not url:
        raise StopUser("no target: pass --host (with LIGHTCONE_CITY) or LIGHTCONE_TARGETS")
    return n, city, url
