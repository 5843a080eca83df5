"""Analytics across shops: sealed per-shop rollups, and the privacy budget's ledger."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from cornerstore.db import Base, UTCDateTime


class AnalyticsRollup(Base):
    """One shop's records of one category and week, added up per day and key, sealed.

    Sealed with the shop's data key like its records, so erasing the shop's
    key defeats every backup of these too. Rebuilt from the records whenever
    the week changes (``changed_weeks``); never holds a value in the clear.
    """

    __tablename__ = "analytics_rollups"

    shop_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True
    )
    category: Mapped[str] = mapped_column(String(16), primary_key=True)
    #: The Monday (UTC) the week begins.
    week_start: Mapped[date] = mapped_column(Date, primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    key_version: Mapped[int] = mapped_column(Integer)
    #: When it was built: a process's cache refreshes what was built since it last looked.
    built_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class PrivacyBudget(Base):
    """What one consumer has spent for one purpose in one period: the row queries lock in turn."""

    __tablename__ = "privacy_budgets"

    consumer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("principals.id", ondelete="CASCADE"), primary_key=True
    )
    purpose: Mapped[str] = mapped_column(String(40), primary_key=True)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    epsilon_spent: Mapped[float] = mapped_column(Float)


class PrivacySpend(Base):
    """One query's charge to a budget, in the transaction of the query's audit entry."""

    __tablename__ = "privacy_spends"
    __table_args__ = (Index("ix_privacy_spends_consumer", "consumer_id", "purpose", "spent_at"),)

    audit_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    consumer_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    purpose: Mapped[str] = mapped_column(String(40))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    epsilon: Mapped[float] = mapped_column(Float)
    delta: Mapped[float] = mapped_column(Float)
    shops: Mapped[int] = mapped_column(Integer)
    spent_at: Mapped[datetime] = mapped_column(UTCDateTime)
