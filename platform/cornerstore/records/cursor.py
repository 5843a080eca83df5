"""The ``cursor`` of a page of records: the last row's event time and id, opaque to callers."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from cornerstore.errors import FieldError, ValidationFailed


def encode_cursor(occurred_at: datetime, row_id: int) -> str:
    raw = f"{occurred_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, row_id = raw.partition("|")
        parsed = datetime.fromisoformat(when)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        parsed, row = parsed.astimezone(UTC), int(row_id)
        if not 0 <= row < 2**63:
            raise ValueError("row id out of range")
        return parsed, row
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed(
            "the cursor is not one this API returned",
            [FieldError(field="query.cursor", reason="malformed cursor")],
        ) from None
