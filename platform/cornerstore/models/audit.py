from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    Uuid,
)
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
    """The log's tip. Appenders lock this one row, which orders all appends.

    Besides the chain's newest hash it keeps the Merkle tree's right frontier
    (the roots of the perfect subtrees that make up the tree, largest first,
    concatenated), so an append never reads the tree to extend it.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    entry_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    frontier: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)


class AuditNode(Base):
    """A perfect subtree of the Merkle tree: (level L, index i) covers leaves [i·2^L, (i+1)·2^L).

    Level 0 holds the leaf hashes. Every node is written in the transaction
    that appends its last leaf, so proofs are read from here, never rebuilt.
    """

    __tablename__ = "audit_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditCheckpoint(Base):
    """A signed checkpoint (C2SP tlog-checkpoint in a signed note) of the tree at ``size``."""

    __tablename__ = "audit_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditSigningKey(Base):
    """A public key that has signed checkpoints, kept after rotation so old ones still verify."""

    __tablename__ = "audit_signing_keys"

    key_id: Mapped[str] = mapped_column(String(8), primary_key=True)
    verifier_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class AuditorCheckpoint(Base):
    """The newest checkpoint each auditor was shown, so the next can be proved to extend it."""

    __tablename__ = "auditor_checkpoints"

    principal_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("principals.id", ondelete="CASCADE"), primary_key=True
    )
    size: Mapped[int] = mapped_column(BigInteger)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditVerification(Base):
    """One run of the full verification an auditor started from the console or the API.

    The run works in the background; its progress is kept here so that any
    server process can show it. ``running`` is true while it works and null
    after, and is unique, so at most one run works at a time.
    """

    __tablename__ = "audit_verifications"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    #: Who started it. No foreign key, as in the log: the record outlives the principal.
    requested_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    #: How many entries the run covers: the log's size when it started.
    entries: Mapped[int] = mapped_column(BigInteger)
    #: Work done so far, of ``2 * entries``: the hash chain first, then the tree.
    checked: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Written with each step of progress; a run silent for long has lost its process.
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    running: Mapped[bool | None] = mapped_column(Boolean, unique=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    #: passed, failed or interrupted, once it has finished.
    outcome: Mapped[str | None] = mapped_column(String(12), default=None)
    first_bad_seq: Mapped[int | None] = mapped_column(BigInteger, default=None)
    problem: Mapped[str | None] = mapped_column(Text, default=None)


class AuditDailyCount(Base):
    """How many entries of one kind each UTC day holds: what the console's charts draw.

    Kept up to date in the background from the entries (``audit.daily``), so a
    chart of a fortnight reads a few thousand rows, not millions of entries.
    A kind keeps only what the charts tell apart, so days stay small: the
    principal only for allowed reads (reads by consumer), the reason only for
    refusals. An empty string stands for none, so every column can be a key.
    """

    __tablename__ = "audit_daily_counts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    action: Mapped[str] = mapped_column(String(40), primary_key=True)
    decision: Mapped[str] = mapped_column(String(8), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(40), primary_key=True)
    reason: Mapped[str] = mapped_column(String(80), primary_key=True)
    principal_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


class AuditDailyCountMark(Base):
    """The newest entry the daily counts include: one row."""

    __tablename__ = "audit_daily_count_mark"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)


class AuditEntryShop(Base):
    """A shop an entry concerns beside its own ``shop_id``: the shops an aggregate counted.

    One entry about a query across shops names them here, so that each shop
    finds the entry in its access log. The entry itself chains their number
    and a digest of their sorted ids.
    """

    __tablename__ = "audit_entry_shops"
    __table_args__ = (Index("ix_audit_entry_shops_shop", "shop_id", "seq"),)

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    shop_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
