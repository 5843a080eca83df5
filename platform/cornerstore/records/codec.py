"""How a record's values are laid out inside its ciphertext.

A record is sealed as the compact JSON of its validated values without its
event time (``model_dump_json`` in the ingestion service); the gate opens it
with :func:`decode_values`, which puts the event time back from the clear
column.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from cornerstore.models.records import Category

#: A record's values are sealed together, as one field of this name (bound into its AAD).
VALUES_FIELD = "values"
#: A quarantined record keeps what arrived, sealed as one field of this name.
QUARANTINE_KIND = "quarantine"
RAW_FIELD = "raw"


def quarantine_record_key(batch_id: uuid.UUID, position: int) -> bytes:
    """What a quarantined record's ciphertext is bound to: its batch and its place in it."""
    return batch_id.bytes + position.to_bytes(4)


#: The field of each category that holds its event time (stored in the clear).
TIME_FIELD: dict[Category, str] = {
    Category.sales: "occurred_at",
    Category.inventory: "counted_at",
    Category.payments: "occurred_at",
}


#: Every field of each category, in the order the API returns them.
FIELDS: dict[Category, tuple[str, ...]] = {
    Category.sales: ("event_id", "occurred_at", "sku", "quantity", "unit_price_cents", "currency"),
    Category.inventory: ("sku", "on_hand", "counted_at"),
    Category.payments: ("event_id", "occurred_at", "amount_cents", "method", "payer_ref"),
}


def decode_values(
    category: Category, occurred_at: datetime, sealed_plaintext: bytes
) -> dict[str, Any]:
    values: dict[str, Any] = json.loads(sealed_plaintext)
    values[TIME_FIELD[category]] = format_time(occurred_at)
    return values


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a Z, as every time the API returns."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
