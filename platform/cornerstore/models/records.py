from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from cornerstore.db import Base, BigIntPK, UTCDateTime, utcnow


class ShopRecord(Base):
    """One sales line, inventory count or payment. All its values are sealed.

    In the clear are only what is needed to find it: the shop, the category,
    the event time and a keyed digest of its natural id for de-duplication.
    """

    __tablename__ = "shop_records"
    __table_args__ = (
        UniqueConstraint("shop_id", "category", "record_key", name="uq_shop_records_natural"),
        Index("ix_shop_records_window", "shop_id", "category", "occurred_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    shop_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(String(16))
    record_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    #: The data-key version that sealed it (also in the ciphertext's header), for re-encryption.
    key_version: Mapped[int] = mapped_column(Integer, default=1)
    batch_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QuarantinedRecord(Base):
    """A record that failed validation, kept sealed with the reason it was refused."""

    __tablename__ = "quarantined_records"
    __table_args__ = (
        # The same bad record sent again (the same file uploaded twice) is kept once.
        UniqueConstraint("shop_id", "fingerprint", name="uq_quarantined_records_shop_fingerprint"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    shop_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), index=True
    )
    category: Mapped[str] = mapped_column(String(16))
    batch_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    position: Mapped[int] = mapped_column(Integer)
    field: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(500))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    key_version: Mapped[int] = mapped_column(Integer, default=1)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: For a CSV upload, the file line it came from.
    line: Mapped[int | None] = mapped_column(Integer, nullable=True, default=None)
    #: A keyed digest (the shop's MAC key) of its category and what arrived.
    fingerprint: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, default=None)


class ChangedWeek(Base):
    """A week of a shop's records that changed since what is derived from them was built.

    Written in the transaction that stores the records, so no change is missed
    whatever order concurrent batches commit in. The analytics rollups are
    rebuilt from the records of each changed week, then the mark is removed.
    """

    __tablename__ = "changed_weeks"

    shop_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True
    )
    category: Mapped[str] = mapped_column(String(16), primary_key=True)
    #: The Monday (UTC) the week begins.
    week_start: Mapped[date] = mapped_column(Date, primary_key=True)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
