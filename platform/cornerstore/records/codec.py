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

from cornerstore.categories import CATEGORIES, Category

#: A record's values are sealed together, as one field of this name (bound into its AAD).
VALUES_FIELD = "values"
#: A quarantined record keeps what arrived, sealed as one field of this name.
QUARANTINE_KIND = "quarantine"
RAW_FIELD = "raw"


def quarantine_record_key(batch_id: uuid.UUID, position: int) -> bytes:
    """What a quarantined record's ciphertext is bound to: its batch and its place in it."""
    return batch_id.bytes + position.to_bytes(4)


def decode_values(
    category: Category, occurred_at: datetime, sealed_plaintext: bytes
) -> dict[str, Any]:
    values: dict[str, Any] = json.loads(sealed_plaintext)
    values[CATEGORIES[category].time_field] = format_time(occurred_at)
    return values


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with a Z, as every time the API returns."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
