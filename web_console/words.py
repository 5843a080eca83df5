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
    "catalogue": N_("product catalogue"),
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
    "name_zh": N_("product name (Chinese)"),
    "name_en": N_("product name (English)"),
    "gtin": N_("barcode"),
    "category": N_("product group"),
    "case_pack": N_("units per case"),
    "unit": N_("unit"),
    "updated_at": N_("last updated"),
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


PAYMENT_METHODS = {
    "qr": N_("QR code"),
    "cash": N_("cash"),
    "card": N_("card"),
}
#: Why a read was refused, as the gate records it.
REASONS = {
    "no_consent": N_("no consent"),
    "consent_not_active": N_("consent paused or ended"),
    "consent_not_valid_now": N_("consent not valid at that time"),
    "category_not_consented": N_("that data is not in the consent"),
    "aggregate_only": N_("only totals are allowed"),
    "outside_data_range": N_("outside the dates allowed"),
    "frequency_limit": N_("daily limit reached"),
    "no_purpose": N_("no purpose given"),
    "policy": N_("not allowed by the rules"),
}
#: What each kind of entry did, besides reads.
ACTIONS = {
    "ingest": N_("sent records from the till"),
    "export": N_("downloaded the shop's data"),
    "shop.create": N_("created the shop"),
    "principal.create": N_("created an account"),
    "principal.disable": N_("disabled an account"),
    "principal.rotate-key": N_("changed a key"),
    "principal.add-signing-key": N_("added a key the till signs its messages with"),
    "principal.revoke-signing-key": N_("revoked a key the till signed its messages with"),
    "principal.sign-in-link": N_("made a sign-in link"),
    "consent.request": N_("asked for consent"),
    "consent.approve": N_("approved a request"),
    "consent.refuse": N_("refused a request"),
    "consent.grant": N_("granted consent"),
    "consent.pause": N_("paused a consent"),
    "consent.resume": N_("resumed a consent"),
    "consent.revoke": N_("revoked a consent"),
    "consent.expire": N_("a consent expired"),
    "consent.supersede": N_("a consent was replaced by newer terms"),
    "shop.write": N_("changed the shop's time zone"),
    "analytics.query": N_("included the shop in totals across many shops, with noise added"),
}
