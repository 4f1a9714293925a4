"""Fault-injection benchmarks (``python -m load.reliability SCENARIO``); see docs/RELIABILITY.md."""
