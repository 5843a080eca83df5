from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from cornerstore.db import Base, UTCDateTime, utcnow


class ConsentStatus(StrEnum):
    active = "active"
    revoked = "revoked"
    #: Never stored: an active consent past its expiry reads as expired.
    expired = "expired"


class Consent(Base):
    __tablename__ = "consents"
    __table_args__ = (
        # The gate's lookup: this shop, this consumer, this purpose, still active.
        Index("ix_consents_lookup", "shop_id", "consumer_id", "purpose", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    shop_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    consumer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(40))
    categories: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=ConsentStatus.active)
    granted_by: Mapped[uuid.UUID] = mapped_column(Uuid)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
