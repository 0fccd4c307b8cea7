"""`make bench`: pictrain against the obvious alternative, in one process, into docs/benchmarks.md.

Run from the repository root: `python -m scripts.bench --help`.
"""
