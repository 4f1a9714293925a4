"""The parts of the serving benchmark, :mod:`load.bench_serving`.

:mod:`.servers` (the processes under test), :mod:`.workload` (what the load asks),
:mod:`.http_client`, :mod:`.wrk` and :mod:`.ws_client` (the closed-loop load generators, each
returning a :class:`.result.LoadResult`), :mod:`.phases` (one measured phase),
:mod:`.handler` (the handler timed in-process) and :mod:`.summary` (``summary.md``).
"""

__all__ = ["BenchError"]


class BenchError(Exception):
    """The benchmark could not run (a server did not start, a client failed)."""
