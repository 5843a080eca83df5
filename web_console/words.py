"""The words pages use for the hub's codes: categories, fields, statuses, audit outcomes.

Marked with ``N_`` so that Babel extracts them; each page translates them as it
renders, in its own language.
"""

from __future__ import annotations

from collections.abc import Mapping

from cornerstore.authz import Purpose


def N_(message: str) -> str:
    return message


CATEGORIES = {
    "sales": N_("sales"),
    "inventory": N_("stock counts"),
    "payments": N_("payments"),
}
FIELDS = {
    "event_id": N_("receipt number"),
    "occurred_at": N_("time"),
    "sku": N_("product code"),
    "quantity": N_("quantity"),
    "unit_price_cents": N_("unit price"),
    "currency": N_("currency"),
    "on_hand": N_("stock on hand"),
    "counted_at": N_("count time"),
    "amount_cents": N_("amount"),
    "method": N_("payment method"),
    "payer_ref": N_("payer"),
    "payer_pseudonym": N_("payer code (not who they are)"),
}
STATUSES = {
    "requested": N_("waiting for you"),
    "active": N_("sharing"),
    "paused": N_("paused"),
    "revoked": N_("revoked"),
    "refused": N_("refused"),
    "expired": N_("expired"),
    "superseded": N_("replaced by newer terms"),
}


def purpose_title(purpose: Purpose, tag: str) -> str:
    return _in(purpose.title, tag)


def purpose_description(purpose: Purpose, tag: str) -> str:
    return _in(purpose.description, tag)


def _in(texts: Mapping[str, str], tag: str) -> str:
    """The catalogue's text in the page's language ("zh-Hans" reads the "zh" entry)."""
    return texts.get(tag.split("-")[0], texts.get("en", ""))
