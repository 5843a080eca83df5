"""Connectors: how shops send data in (JSON batches, POS CSV exports)."""
