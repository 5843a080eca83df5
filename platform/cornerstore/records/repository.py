"""The only queries over shop data. Used by the access gate and the ingestion service."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

import psycopg
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from sqlalchemy import Row, delete, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cornerstore.models.records import ChangedWeek, QuarantinedRecord, ShopRecord
from cornerstore.models.shops import Shop
from cornerstore.records.codec import (
    QUARANTINE_KIND,
    RAW_FIELD,
    VALUES_FIELD,
    quarantine_record_key,
)

_tracer = trace.get_tracer("cornerstore.records")


@dataclass(frozen=True, slots=True)
class Window:
    shop_id: uuid.UUID
    category: str
    since: datetime | None
    until: datetime | None
    after: tuple[datetime, int] | None
    limit: int


#: A row of a window: its id, event time, record key and sealed values.
WindowRow = Row[int, datetime, bytes, bytes]


def read_window(session: Session, window: Window) -> Sequence[WindowRow]:
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


class NewRecord(NamedTuple):
    """A row of ``shop_records`` to insert, in the order COPY sends its columns.

    A tuple rather than a dict: ingest builds one per record, and COPY writes
    them as they are.
    """

    shop_id: uuid.UUID
    category: str
    record_key: bytes
    occurred_at: datetime
    sealed: bytes
    key_version: int
    batch_id: uuid.UUID
    ingested_at: datetime


def insert_new(session: Session, rows: list[NewRecord]) -> int:
    """Insert rows, skipping any whose natural key is already stored; return how many went in.

    Conflicts are resolved by the database (``ON CONFLICT DO NOTHING``), so a
    concurrent re-send of the same records stores nothing twice. On
    PostgreSQL the rows travel by binary COPY into a temporary table and are
    inserted from there: a multi-row INSERT of thousands of rows costs more
    to build and parse than the rows cost to store.
    """
    if not rows:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        inserted = _insert_new_by_copy(session, rows)
    else:
        stmt = sqlite.insert(ShopRecord).on_conflict_do_nothing().returning(ShopRecord.id)
        inserted = len(session.execute(stmt, [row._asdict() for row in rows]).all())
    if inserted:
        _mark_changed_weeks(session, rows)
    return inserted


def week_start(moment: datetime) -> date:
    """The Monday (UTC) of the week ``moment`` falls in."""
    day = moment.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def _mark_changed_weeks(session: Session, rows: list[NewRecord]) -> None:
    """Note, in the records' transaction, which weeks of which shops changed.

    In key order, so that batches marking the same weeks take their row locks
    in one order and never wait on each other in a circle.
    """
    weeks = sorted({(row.shop_id, row.category, week_start(row.occurred_at)) for row in rows})
    now = rows[0].ingested_at
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(ChangedWeek)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["shop_id", "category", "week_start"],
            set_={"changed_at": stmt.excluded.changed_at},
        ),
        [
            {"shop_id": shop, "category": category, "week_start": start, "changed_at": now}
            for shop, category, start in weeks
        ],
    )


_COPY_COLUMNS = NewRecord._fields
_COPY_TYPES = ("uuid", "text", "bytea", "timestamptz", "bytea", "int4", "uuid", "timestamptz")
_COLUMN_LIST = ", ".join(_COPY_COLUMNS)


def _insert_new_by_copy(session: Session, tuples: list[NewRecord]) -> int:
    driver = session.connection().connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    # The driver is used directly, so the engine's tracing does not see this.
    # The span carries the row count only: an exception's message can hold values.
    with _tracer.start_as_current_span(
        "db.copy shop_records",
        kind=SpanKind.CLIENT,
        attributes={"db.system": "postgresql", "cornerstore.records": len(tuples)},
        record_exception=False,
        set_status_on_exception=False,
    ):
        # New records are the common case and one COPY is the cheapest way in.
        # If any record is stored already, the savepoint undoes the COPY and the
        # batch goes through a staging table and ON CONFLICT DO NOTHING instead.
        try:
            with driver.transaction(), driver.cursor() as cursor:
                _copy(cursor, "shop_records", tuples)
            return len(tuples)
        except psycopg.errors.UniqueViolation:
            pass
        with driver.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS incoming_records ("
                "shop_id uuid, category text, record_key bytea, occurred_at timestamptz, "
                "sealed bytea, key_version int, batch_id uuid, ingested_at timestamptz) "
                "ON COMMIT DELETE ROWS"
            )
            _copy(cursor, "incoming_records", tuples)
            cursor.execute(
                f"INSERT INTO shop_records ({_COLUMN_LIST}) "  # noqa: S608 (constant column names)
                f"SELECT {_COLUMN_LIST} FROM incoming_records "
                "ON CONFLICT (shop_id, category, record_key) DO NOTHING"
            )
            inserted = cursor.rowcount
            cursor.execute("DELETE FROM incoming_records")
        return int(inserted)


def _copy(cursor: psycopg.Cursor[Any], table: str, tuples: Sequence[tuple[Any, ...]]) -> None:
    with cursor.copy(f"COPY {table} ({_COLUMN_LIST}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(_COPY_TYPES)
        for row in tuples:
            copy.write_row(row)


def quarantine(session: Session, rows: list[dict[str, Any]]) -> None:
    """Keep refused records; one kept before (the same fingerprint) is not kept twice."""
    if rows:
        insert = (
            postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        )
        session.execute(insert(QuarantinedRecord).on_conflict_do_nothing(), rows)


def quarantined(session: Session, shop_id: uuid.UUID, qid: int) -> QuarantinedRecord | None:
    """One of the shop's quarantined records, locked for a change; None if not the shop's."""
    return session.scalars(
        select(QuarantinedRecord)
        .where(QuarantinedRecord.id == qid, QuarantinedRecord.shop_id == shop_id)
        .with_for_update()
    ).first()


def lock_shop(session: Session, shop_id: uuid.UUID) -> None:
    """Hold the shop's row until the transaction ends: its writers that must not mix queue."""
    session.execute(select(Shop.id).where(Shop.id == shop_id).with_for_update())


def delete_record(session: Session, shop_id: uuid.UUID, category: str, record_key: bytes) -> None:
    """Delete one record by its keyed natural id (a catalogue item replaced on its own)."""
    session.execute(
        delete(ShopRecord).where(
            ShopRecord.shop_id == shop_id,
            ShopRecord.category == category,
            ShopRecord.record_key == record_key,
        )
    )


def delete_category(session: Session, shop_id: uuid.UUID, category: str) -> int:
    """Delete a shop's records of one category (a catalogue replaced whole); how many went."""
    result = session.execute(
        delete(ShopRecord).where(ShopRecord.shop_id == shop_id, ShopRecord.category == category)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def delete_shop(session: Session, shop_id: uuid.UUID) -> tuple[dict[str, int], int]:
    """Delete every record and quarantined record of a shop; return what went, by category."""
    counts = {
        category: int(n)
        for category, n in session.execute(
            select(ShopRecord.category, func.count())
            .where(ShopRecord.shop_id == shop_id)
            .group_by(ShopRecord.category)
        )
    }
    quarantined = session.scalar(select(func.count()).where(QuarantinedRecord.shop_id == shop_id))
    session.execute(delete(QuarantinedRecord).where(QuarantinedRecord.shop_id == shop_id))
    session.execute(delete(ShopRecord).where(ShopRecord.shop_id == shop_id))
    return counts, int(quarantined or 0)


def read_quarantine(
    session: Session,
    shop_id: uuid.UUID,
    after_id: int,
    limit: int,
    category: str | None = None,
) -> Sequence[QuarantinedRecord]:
    """A shop's quarantined records (of one category) in arrival order, from a keyset cursor on."""
    query = select(QuarantinedRecord).where(
        QuarantinedRecord.shop_id == shop_id, QuarantinedRecord.id > after_id
    )
    if category is not None:
        query = query.where(QuarantinedRecord.category == category)
    return session.scalars(query.order_by(QuarantinedRecord.id).limit(limit)).all()


#: Re-seals one ciphertext: (kind, field, record key, sealed, its key version) -> new sealed.
Resealer = Callable[[str, str, bytes, bytes, int], bytes]


def count_below_version(session: Session, shop_id: uuid.UUID, version: int) -> int:
    """How many of the shop's records and quarantined records are sealed under older keys."""
    total = 0
    for table in (ShopRecord, QuarantinedRecord):
        total += int(
            session.scalar(
                select(func.count()).where(table.shop_id == shop_id, table.key_version < version)
            )
            or 0
        )
    return total


def reseal_batch(
    session: Session, shop_id: uuid.UUID, version: int, limit: int, reseal: Resealer
) -> int:
    """Re-seal up to ``limit`` of the shop's rows sealed under keys older than ``version``."""
    records = session.scalars(
        select(ShopRecord)
        .where(ShopRecord.shop_id == shop_id, ShopRecord.key_version < version)
        .order_by(ShopRecord.id)
        .limit(limit)
        .with_for_update()
    ).all()
    for record in records:
        record.sealed = reseal(
            record.category,
            VALUES_FIELD,
            bytes(record.record_key),
            bytes(record.sealed),
            record.key_version,
        )
        record.key_version = version
    left = limit - len(records)
    if left <= 0:
        return len(records)
    refused = session.scalars(
        select(QuarantinedRecord)
        .where(QuarantinedRecord.shop_id == shop_id, QuarantinedRecord.key_version < version)
        .order_by(QuarantinedRecord.id)
        .limit(left)
        .with_for_update()
    ).all()
    for row in refused:
        row.sealed = reseal(
            QUARANTINE_KIND,
            RAW_FIELD,
            quarantine_record_key(row.batch_id, row.position),
            bytes(row.sealed),
            row.key_version,
        )
        row.key_version = version
    return len(records) + len(refused)
