"""Benchmarks, run on demand: ``python -m bench all`` (full) or ``--smoke`` (tiny, in CI).

Each prints its figure beside a baseline measured in the same run, and the ratio.
"""
