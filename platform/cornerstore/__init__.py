"""Cornerstore: a governed data hub for neighbourhood shops.

The shop owns its data. Every read of it passes one access gate
(:mod:`cornerstore.gate`), which fails closed and writes an audit record
before any data leaves.
"""

__version__ = "0.1.0"
