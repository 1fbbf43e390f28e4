"""Benchmarks: `make bench` (python -m bench) runs every bench/bench_*.py module's main().

Each benchmark measures its baseline in the same run and reports ratios, writing JSON to
bench/results/.
"""
