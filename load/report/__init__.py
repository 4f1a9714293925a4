"""The report of a ``lightcone bench`` folder: ``report.md`` and ``plots/*.png``.

Run again on a finished folder with ``python -m load.report DIR``. Every number comes from the
folder: ``results.json`` (plan, topology, environment, CPU) and each run's ``raw.csv.gz``
(every request's exact time, as :class:`load.users.RawRecorder` wrote it). Percentiles are
computed from the raw times (linear interpolation between order statistics), pooled over the
repeats of a scenario; locust's own tables round to 1 ms below 100 ms and 10 ms above.

What "expected" means, per user city (simulated RTTs from the topology; ``tick`` is the
edges' cursor tick, ``link`` an edge's simulated RTT to the core):

* suggestions, tolerant, bounded and session: the RTT of the entry (user → edge, or user →
  central node) — on a healthy link the edge answers bounded and session reads from memory;
* suggestions, strict: that plus one ``link`` round trip (the edge syncs with the core);
* through the PoP at tolerant or bounded, and device keystrokes at tolerant: none (a mix of
  cache hits, or of the device's answers, and the edge's); the report gives each rung's
  share and latency instead;
* cursors: the mover's one-way leg + the receiver's one-way leg + half a tick (a move waits
  for the next tick: uniform in [0, tick)) + for strict, or between two edges, the legs
  from the edges to the core and back.

Its parts: :mod:`.data` (the folder, loaded; the expectations), :mod:`.tables`,
:mod:`.reading` (the method and the interpretation), :mod:`.markdown` (the page),
:mod:`.plots`, and :mod:`.writer` (:func:`build`, which ``lightcone bench`` calls at its end).
"""

from load.report.writer import build

__all__ = ["build"]
