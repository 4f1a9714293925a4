"""Where things are, and how long light takes between them: the demo's model of distance.

Two tables ship with the package (``deploy/local/data``, see its README for sources): the 18
Fly.io regions with coordinates, and the measured median round-trip time between every pair
of them. From these:

* **fiber floor** — great-circle km / 100 ms of RTT (light in fiber, 200,000 km/s): the
  physical limit no code can beat.
* **backbone RTT** between two regions — the measured median (1 ms within one region).
* **user RTT** from a user in a region's metro to a target region — an access term (the
  last mile, ``access_rtt_ms``, 5 ms by default: fixed broadband) plus the backbone RTT to
  the target. A user next to an edge pays the access term only; a user reaching the central
  region pays the ocean too.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import IO

INTRA_REGION_RTT_MS = 1.0
ACCESS_RTT_MS = 5.0
EARTH_RADIUS_KM = 6371.0


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    city: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Link:
    """RTT between two regions: measured median and P95 (ms)."""

    p50_ms: float
    p95_ms: float
    measured: bool


@cache
def regions() -> dict[str, Region]:
    """Every region we know, by code."""
    with _open("regions.csv") as f:
        return {
            r["code"]: Region(r["code"], r["city"], float(r["lat"]), float(r["lon"]))
            for r in csv.DictReader(f)
        }


@cache
def _links() -> dict[frozenset[str], Link]:
    with _open("rtt_ms.csv") as f:
        return {
            frozenset((r["a"], r["b"])): Link(
                float(r["rtt_p50_ms"]),
                float(r["rtt_p95_ms"] or r["rtt_p50_ms"]),
                r["kind"] == "measured",
            )
            for r in csv.DictReader(f)
        }


def _open(name: str) -> IO[str]:
    path = resources.files("deploy.local") / "data" / name
    return io.StringIO(path.read_text(encoding="utf-8"), newline="")


def region(code: str) -> Region:
    """The region ``code``.

    Raises:
        ValueError: if ``code`` is not one of the known regions.
    """
    known = regions()
    if code not in known:
        raise ValueError(f"unknown region {code!r}; known: {', '.join(sorted(known))}")
    return known[code]


def great_circle_km(a: Region, b: Region) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def fiber_floor_ms(a: str, b: str) -> float:
    """Round trip at the speed of light in fiber: great-circle km / 100."""
    return great_circle_km(region(a), region(b)) / 100


def link(a: str, b: str) -> Link:
    """Backbone RTT between regions ``a`` and ``b`` (1 ms within one region)."""
    region(a), region(b)
    if a == b:
        return Link(INTRA_REGION_RTT_MS, INTRA_REGION_RTT_MS, True)
    return _links()[frozenset((a, b))]


def user_rtt_ms(user: str, target: str, access_rtt_ms: float = ACCESS_RTT_MS) -> float:
    """RTT for a user in region ``user``'s metro reaching region ``target``."""
    backbone = 0.0 if user == target else link(user, target).p50_ms
    return access_rtt_ms + backbone


def nearest(user: str, candidates: list[str]) -> str:
    """The candidate region with the lowest backbone RTT from ``user`` (ties: first listed)."""
    return min(candidates, key=lambda c: 0.0 if c == user else link(user, c).p50_ms)
