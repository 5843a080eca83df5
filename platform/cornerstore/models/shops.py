from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from cornerstore.db import Base, UTCDateTime, utcnow


class Shop(Base):
    __tablename__ = "shops"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    district: Mapped[str | None] = mapped_column(String(200), default=None)
    #: The IANA time zone the shop keeps its days in; the portal shows UTC without one.
    time_zone: Mapped[str | None] = mapped_column(String(64), default=None)
    #: The profile its POS's CSV exports are read with (connectors/profiles/); None: generic.
    pos_profile: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ShopErasure(Base):
    """A shop erased at its owner's request: no values, only that it happened.

    The row is written in the transaction that deletes the shop's data; the
    shop's key-encryption key is destroyed right after it commits, and
    ``keys_destroyed_at`` records that. A row still without it names an
    erasure to finish (the hub retries at start and ``cornerstore keys
    finish-erasures`` retries on demand).
    """

    __tablename__ = "shop_erasures"

    shop_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    requested_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    keys_destroyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
