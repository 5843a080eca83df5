"""Opening a page of sealed records with the shop's data keys: steps 4 of the gate, and exports."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy.orm import Session

from cornerstore.categories import Category
from cornerstore.crypto import sealed_key_version
from cornerstore.keys.ring import KeyRing
from cornerstore.records.codec import VALUES_FIELD, decode_values
from cornerstore.records.repository import WindowRow


def open_rows(
    keyring: KeyRing,
    session: Session,
    shop_id: uuid.UUID,
    category: Category,
    rows: Sequence[WindowRow],
) -> Iterator[dict[str, Any]]:
    """Each row's values, decrypted under the data-key version that sealed it.

    A ciphertext that does not open raises (``DecryptionFailed`` or
    ``KeyMaterialError``): the caller fails closed.
    """
    if not rows:
        return
    # Nearly every row is sealed under the current version: look it up once.
    current = keyring.cipher(session, shop_id)
    for _row_id, occurred_at, record_key, sealed in rows:
        version = sealed_key_version(sealed)
        cipher = (
            current if version == current.version else keyring.cipher(session, shop_id, version)
        )
        plaintext = cipher.open(category, VALUES_FIELD, bytes(record_key), bytes(sealed))
        yield decode_values(category, occurred_at, plaintext)
