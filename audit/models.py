from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from cornerstore.db import Base, UTCDateTime


class AuditEntry(Base):
    """One audit entry. It names who did what to which shop, never a data value.

    ``shop_id`` and ``principal_id`` carry no foreign keys: the log outlives
    the shops and principals it speaks of.
    """

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_shop", "shop_id", "seq"),
        Index("ix_audit_entries_principal", "principal_id", "seq"),
        Index("ix_audit_entries_time", "recorded_at"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(String(40))
    decision: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(String(80))
    principal_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    principal_role: Mapped[str | None] = mapped_column(String(20))
    shop_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    category: Mapped[str | None] = mapped_column(String(16))
    purpose: Mapped[str | None] = mapped_column(String(40))
    policy_version: Mapped[str | None] = mapped_column(String(16))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    entry_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditHead(Base):
    """The chain's tip. Appenders lock this one row, which orders all appends."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    entry_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
