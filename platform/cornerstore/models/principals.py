from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cornerstore.db import Base, UTCDateTime, utcnow


class Role(StrEnum):
    admin = "admin"
    shopkeeper = "shopkeeper"
    connector = "connector"
    consumer = "consumer"
    auditor = "auditor"


class Principal(Base):
    __tablename__ = "principals"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    #: What a consumer does with shop data, in a line a shopkeeper understands.
    description: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    shop_links: Mapped[list[PrincipalShop]] = relationship(
        back_populates="principal", cascade="all, delete-orphan", lazy="selectin"
    )
    keys: Mapped[list[PrincipalKey]] = relationship(
        back_populates="principal", cascade="all, delete-orphan", lazy="raise"
    )


class PrincipalKey(Base):
    """One API key of a principal. A rotated key keeps working until ``expires_at``."""

    __tablename__ = "principal_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    principal_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("principals.id", ondelete="CASCADE"), index=True
    )
    # SHA-256 of the API key. The key has 256 bits of entropy, so a fast hash
    # is enough; the key itself is shown once and never stored.
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: None: until the key is rotated (or its principal disabled).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    principal: Mapped[Principal] = relationship(back_populates="keys")


class SigningKey(Base):
    """A connector's Ed25519 public key: what its messages on the ingest stream are signed with.

    Only the public key is kept; the connector made the pair and keeps the
    private half. A key stops verifying the moment it is revoked, or its
    principal disabled.
    """

    __tablename__ = "signing_keys"

    #: ``sk_`` and the first 16 bytes of the public key's SHA-256, in hex: named in each message.
    key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    principal_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("principals.id", ondelete="CASCADE"), index=True
    )
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class PrincipalShop(Base):
    """Which shops a shopkeeper keeps, or which one shop a connector writes for."""

    __tablename__ = "principal_shops"

    principal_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("principals.id", ondelete="CASCADE"), primary_key=True
    )
    shop_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True, index=True
    )

    principal: Mapped[Principal] = relationship(back_populates="shop_links")


class SignInLink(Base):
    """A one-time link into the web console, minted for a shopkeeper or an auditor.

    Only the SHA-256 of its token is kept; the link is shown once, to whoever minted it.
    """

    __tablename__ = "sign_in_links"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    principal_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("principals.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Set when the link is opened: a link starts one session, once.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class WebSession(Base):
    """A signed-in browser. Kept on the server, so that it can be ended at any time."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    principal_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("principals.id", ondelete="CASCADE"), index=True
    )
    #: Sent back by every form and htmx request that changes something.
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The absolute timeout: no use of the session extends it.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
