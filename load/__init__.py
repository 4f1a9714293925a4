"""Benchmarks and load generators (not tests): figures go to docs/BENCHMARKS.md."""
