"""Benchmarks: each `bench_*.py` module has `run() -> list[Figure]`; `python -m bench` runs all."""
