"""Shops and their data keys."""
