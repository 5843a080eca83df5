"""Consent: a shop's permission for a named consumer, purpose, data categories and window."""
