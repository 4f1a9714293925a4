"""Prometheus histograms from a node's ``/metrics/`` scrape: parse, subtract, pool, quantile.

Pure functions on the text exposition format; each benchmark fetches the text itself. A
quantile is interpolated linearly within its bucket, as PromQL's ``histogram_quantile`` does:
bucket resolution, not the resolution of the numbers behind it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_BUCKET = re.compile(r"^(\w+)_bucket\{([^}]*)\} (\S+)$", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="([^"]*)"')

Buckets = list[tuple[float, float]]
"""A histogram as (upper bound, cumulative count), ascending, ``inf`` last."""


def parse_histogram(text: str, name: str, **labels: str) -> Buckets:
    """The buckets of histogram ``name`` in a scrape, of the series with these label values."""
    out: Buckets = []
    for match in _BUCKET.finditer(text):
        if match.group(1) != name:
            continue
        found = dict(_LABEL.findall(match.group(2)))
        if all(found.get(label) == value for label, value in labels.items()):
            out.append((float(found["le"]), float(match.group(3))))
    return sorted(out)


def parse_sum(text: str, name: str) -> float | None:
    """The ``_sum`` of the unlabelled histogram ``name`` in a scrape, ``None`` if absent."""
    match = re.search(rf"^{re.escape(name)}_sum (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


def bucket_delta(after: Buckets, before: Buckets) -> Buckets:
    """The observations between two scrapes of one histogram."""
    if not before:
        return after
    return [(le, a - b) for (le, a), (_, b) in zip(after, before, strict=True)]


def bucket_sum(parts: Sequence[Buckets]) -> Buckets:
    """Histograms with the same buckets, pooled."""
    parts = [p for p in parts if p]
    if not parts:
        return []
    return [(le, sum(p[i][1] for p in parts)) for i, (le, _) in enumerate(parts[0])]


def bucket_quantile(buckets: Buckets, q: float) -> float | None:
    """Quantile ``q`` interpolated linearly within its bucket (as PromQL's histogram_quantile).

    ``None`` without observations; the largest finite bound if it falls in the ``+Inf`` bucket.
    """
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_le, lower_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return lower_le
            if count == lower_count:
                return le
            return lower_le + (le - lower_le) * (rank - lower_count) / (count - lower_count)
        lower_le, lower_count = le, count
    return lower_le
