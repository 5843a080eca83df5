"""Data portability: a shop's whole holding as one streamed zip of CSV and JSON files."""
