"""Repair tasks: one record used everywhere, builders for the benchmarks, parsing and metrics."""
