"""Consent artefacts: the current state of each consent, and every version it had.

A consent is an immutable artefact: a change (approval, pause, revocation...)
makes a new version that links to the one before it by its receipt's digest.
``consents`` holds each consent's newest version in columns the gate can
query; ``consent_versions`` keeps every version as the document its receipt
signs. Use counts live on the current row: they change on every read and are
not part of any version.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cornerstore.db import Base, UTCDateTime, utcnow
from cornerstore.models.principals import Principal


class ConsentStatus(StrEnum):
    requested = "requested"
    active = "active"
    paused = "paused"
    revoked = "revoked"
    refused = "refused"
    #: A consent past its validity reads as expired at that instant; the hub
    #: also stores it shortly after, as a version of its own (consent.expiry).
    expired = "expired"
    #: Replaced by a newer consent of the same consumer for the same purpose.
    superseded = "superseded"


#: Statuses from which nothing can move on.
FINAL_STATUSES = frozenset({ConsentStatus.revoked, ConsentStatus.refused})


class AccessMode(StrEnum):
    #: The consumer may read the shop's records (cut down to the purpose's fields).
    rows = "rows"
    #: The shop's data may only feed privacy-thresholded aggregates; no row leaves.
    aggregate_only = "aggregate-only"


class Consent(Base):
    __tablename__ = "consents"
    __table_args__ = (
        # The gate's lookup: this shop, this consumer, this purpose, still active.
        Index("ix_consents_lookup", "shop_id", "consumer_id", "purpose", "status"),
        Index("ix_consents_consumer", "consumer_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    shop_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    consumer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"))
    #: Loaded with the consent, so that a shopkeeper sees who it is by name.
    consumer: Mapped[Principal] = relationship(lazy="selectin", viewonly=True)
    purpose: Mapped[str] = mapped_column(String(40))
    categories: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=ConsentStatus.active)
    version: Mapped[int] = mapped_column(Integer, default=1)
    access_mode: Mapped[str] = mapped_column(String(16), default=AccessMode.rows)
    #: Data range: fixed bounds (either may be open), or a rolling window of days.
    range_from: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    range_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    range_last_days: Mapped[int | None] = mapped_column(Integer, default=None)
    #: None: no limit beyond the purpose's.
    max_reads_per_day: Mapped[int | None] = mapped_column(Integer, default=None)
    data_life_seconds: Mapped[int] = mapped_column(BigInteger)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Valid until (exclusive). Named as the foundation named it.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    requested_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    granted_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    granted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Paused by the shop's pause-sharing, so resume-sharing resumes it (and no other).
    paused_by_shop: Mapped[bool] = mapped_column(Boolean, default=False)
    uses: Mapped[int] = mapped_column(BigInteger, default=0)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    #: The UTC day (YYYY-MM-DD) ``day_uses`` counts, for the frequency limit.
    use_day: Mapped[str | None] = mapped_column(String(10), default=None)
    day_uses: Mapped[int] = mapped_column(Integer, default=0)


class ConsentVersion(Base):
    """One version of a consent artefact, as its receipt signs it. Never updated."""

    __tablename__ = "consent_versions"
    __table_args__ = (Index("ix_consent_versions_shop", "shop_id", "changed_at"),)

    consent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("consents.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    shop_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(16))
    #: What happened: requested, approved, refused, granted, paused, resumed, revoked.
    change: Mapped[str] = mapped_column(String(16))
    changed_by: Mapped[uuid.UUID] = mapped_column(Uuid)
    changed_by_role: Mapped[str] = mapped_column(String(20))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The artefact as signed: every term of the consent at this version.
    artefact: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: The receipt (JWS compact serialisation); None for versions from before receipts.
    receipt: Mapped[str | None] = mapped_column(Text, default=None)


class ReceiptKey(Base):
    """A public key that has signed consent receipts, kept after rotation so old receipts verify."""

    __tablename__ = "consent_receipt_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The public key as a JWK (RFC 8037 OKP, Ed25519).
    jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class ConsumerWebhook(Base):
    """Where a consumer is told about changes to its consents, and the secret that signs them."""

    __tablename__ = "consumer_webhooks"

    consumer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("principals.id", ondelete="CASCADE"), primary_key=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    #: The signing secret is derived from this salt and the hub's webhook key
    #: file, so the database never holds it; a new salt is a new secret.
    secret_salt: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookDelivery(Base):
    """One event for one consumer, and how delivering it went (the consumer can read this)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_consumer", "consumer_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    consumer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("principals.id", ondelete="CASCADE"))
    #: Loaded with the consent, so that a shopkeeper sees who it is by name.
    consumer: Mapped[Principal] = relationship(lazy="selectin", viewonly=True)
    event_type: Mapped[str] = mapped_column(String(40))
    #: The event as sent (JSON); it names consents and statuses, never shop data.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: pending, delivered or failed (gave up after the last retry).
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_status: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
