"""NEAT benchmark suite: AlgoPerf-style steps- and time-to-target against AdamW and peers.

Run from the repository root: ``python -m benchmarks --help``.
"""
