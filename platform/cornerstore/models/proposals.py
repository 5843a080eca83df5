"""What consumers propose to a shop (an order to place, a credit line), and the shop's answer."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cornerstore.db import Base, UTCDateTime


class ProposalKind(StrEnum):
    #: Lines to order from a warehouse; the shopkeeper may change the quantities.
    purchase_order = "purchase-order"
    #: A credit line with its reasons; taken or left as it is.
    credit_offer = "credit-offer"


class ProposalStatus(StrEnum):
    pending = "pending"
    accepted = "accepted"
    declined = "declined"


class Proposal(Base):
    """One proposal of a consumer to a shop, under a consent of that shop for its purpose.

    Its content (and the shop's answer) is about the shop's business, so it is
    sealed with the shop's data key like the shop's records: erasing the shop
    defeats every backup of it too. The consumer and the shop read it through
    the hub, which opens it for them alone.
    """

    __tablename__ = "proposals"
    __table_args__ = (
        Index("ix_proposals_shop", "shop_id", "status", "created_at"),
        # A consumer's key names one proposal: sending it again answers that one.
        UniqueConstraint(
            "consumer_id", "idempotency_key", name="uq_proposals_consumer_idempotency_key"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    shop_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    consumer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("principals.id", ondelete="CASCADE"), index=True
    )
    consent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("consents.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(12))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    answer: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    key_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The consumer's ``Idempotency-Key``, when it sent one.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
