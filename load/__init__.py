"""Benchmarks and load generators (not tests): figures go to docs/BENCHMARKS.md.

Entry points and what they use:

- ``lightcone bench`` / ``python -m load.bench``: the locust comparison. :mod:`.plan` (options,
  scenarios), :mod:`.topology` (``lightcone up``, flags, calibration), :mod:`.cpu_meter`;
  locust runs ``locustfile.py`` with the users of :mod:`.users`.
- ``python -m load.report DIR``: its ``report.md`` and plots, from the package
  :mod:`.report` (the folder loaded, tables, reading, markdown, plots).
- ``python -m load.bench_serving``: suggestion serving against echo baselines
  (:mod:`.echo_app`); its parts are in :mod:`.serving`.
- ``python -m load.bench_cursors``: cursor fan-out, same edge and cross edge.
- ``python -m load.bench_quality``: suggestion quality (recall@1, recall@5, p99 per query
  class) of the edge's index against a RapidFuzz reference, on the labelled query set of
  :mod:`.quality` (``python -m load.quality.generate`` makes it).
- ``python -m load.reliability SCENARIO``: fault injection (core ``kill -9``, link cuts, a
  reconnect storm, a soak) and the promises each one checks; its parts are in
  :mod:`.reliability`, its figures in docs/RELIABILITY.md.

Shared by the benchmarks: :mod:`.machine` (CPU, memory, load, versions, git state) and
:mod:`.histogram` (the nodes' Prometheus histograms).
"""
