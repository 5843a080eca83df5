"""Principals: who calls the hub, with which role, for which shops."""
