"""The local multi-node deployment: ``lightcone up``, ``partition`` and ``heal``.

Real ``lightcone core`` / ``lightcone edge`` processes on loopback, with simulated distance
between them. Its parts, each one concept:

- :mod:`.cli`: the three commands' arguments (imported only when one of them runs);
- :mod:`.up`: starts the core, the edges and the latency proxies, and stops them;
- :mod:`.supervisor`: starts, watches and stops the node processes (also used by the tests and
  the benchmarks);
- :mod:`.latency`: the TCP proxy that adds one-way delay and cuts links on command;
- :mod:`.geography`: regions, their measured RTTs (``data/``) and the fiber floor;
- :mod:`.control`: the control API (partitions, flags, room tokens) for ``lightcone partition``
  and the demo page, with its OpenAPI document.

Nothing here is imported by a node: the Fly.io image does not ship this package.
"""
