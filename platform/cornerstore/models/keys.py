from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from cornerstore.db import Base, UTCDateTime, utcnow


class MasterKeyState(StrEnum):
    active = "active"  # New data keys are wrapped with it.
    retiring = "retiring"  # A rotation is moving data keys off it.


class MasterKeyRecord(Base):
    """A master key the stored data keys depend on. The key itself lives in the provider."""

    __tablename__ = "master_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    state: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ShopKey(Base):
    """A version of a shop's data key, wrapped by its key-encryption key, then the master key."""

    __tablename__ = "shop_keys"

    shop_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    master_key_id: Mapped[str] = mapped_column(String(16), index=True)
    #: 2: master(shop key(data key)); 1: master(data key), written before shop keys existed.
    wrap_format: Mapped[int] = mapped_column(Integer, default=2)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
