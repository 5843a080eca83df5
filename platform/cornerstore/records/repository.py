"""The only queries over shop data. Used by the access gate and the ingestion service."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, tuple_
from sqlalchemy import insert as insert_stmt
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cornerstore.records.models import QuarantinedRecord, ShopRecord

_KEY_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Window:
    shop_id: uuid.UUID
    category: str
    since: datetime | None
    until: datetime | None
    after: tuple[datetime, int] | None
    limit: int


def read_window(session: Session, window: Window) -> Sequence[Row[int, datetime, bytes, bytes]]:
    """Records of one shop and category in time order, from a keyset cursor on."""
    stmt = select(
        ShopRecord.id, ShopRecord.occurred_at, ShopRecord.record_key, ShopRecord.sealed
    ).where(ShopRecord.shop_id == window.shop_id, ShopRecord.category == window.category)
    if window.since is not None:
        stmt = stmt.where(ShopRecord.occurred_at >= window.since)
    if window.until is not None:
        stmt = stmt.where(ShopRecord.occurred_at < window.until)
    if window.after is not None:
        stmt = stmt.where(tuple_(ShopRecord.occurred_at, ShopRecord.id) > tuple_(*window.after))
    stmt = stmt.order_by(ShopRecord.occurred_at, ShopRecord.id).limit(window.limit)
    return session.execute(stmt).all()


def existing_keys(
    session: Session, shop_id: uuid.UUID, category: str, keys: Sequence[bytes]
) -> set[bytes]:
    found: set[bytes] = set()
    for start in range(0, len(keys), _KEY_CHUNK):
        chunk = keys[start : start + _KEY_CHUNK]
        found.update(
            bytes(k)
            for k in session.scalars(
                select(ShopRecord.record_key).where(
                    ShopRecord.shop_id == shop_id,
                    ShopRecord.category == category,
                    ShopRecord.record_key.in_(chunk),
                )
            )
        )
    return found


def insert_new(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert rows, skipping any whose natural key is already stored; return how many went in.

    ``ON CONFLICT DO NOTHING`` makes a concurrent re-send of the same records
    store nothing twice even when both batches passed the duplicate check.
    """
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(ShopRecord).on_conflict_do_nothing().returning(ShopRecord.id)
    return len(session.execute(stmt, rows).all())


def quarantine(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert_stmt(QuarantinedRecord), rows)
