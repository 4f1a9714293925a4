"""Fault-injection benchmarks: ``python -m load.reliability {kill9,link-cuts,storm,soak}``.

Benchmarks, not tests (the suite runs one small smoke): each starts real nodes on 127.0.0.1,
breaks something under load, checks the promises of docs/RELIABILITY.md and exits 1 if one
was broken. Its parts: :mod:`.cluster` (the nodes, their proxies, the core's database),
:mod:`.clients` (writers that keep what is not acknowledged, readers, cursor members),
:mod:`.checks` (deadlines, the drain and the write promise), :mod:`.run` (progress, promises,
results), and one module per scenario: :mod:`.kill9`, :mod:`.link_cuts`, :mod:`.storm`,
:mod:`.soak`.
"""
