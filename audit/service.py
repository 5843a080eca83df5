"""Appending to and querying the audit log."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from audit import chain
from audit.models import AuditEntry, AuditHead
from audit.schemas import AuditDraft, Decision
from cornerstore.db import utcnow

HEAD_ID = 1


def append(session: Session, draft: AuditDraft) -> AuditEntry:
    """Append one entry in the session's transaction.

    Taking the next sequence number updates the head row first, which locks
    it (a row lock on PostgreSQL, the write lock on SQLite) until the
    transaction ends, so concurrent appenders form one gap-free chain.
    """
    seq, prev_hash = session.execute(
        update(AuditHead)
        .where(AuditHead.id == HEAD_ID)
        .values(seq=AuditHead.seq + 1)
        .returning(AuditHead.seq, AuditHead.entry_hash)
    ).one()
    entry = AuditEntry(
        seq=seq,
        recorded_at=utcnow(),
        prev_hash=bytes(prev_hash),
        **draft.model_dump(),
    )
    entry.entry_hash = chain.entry_hash(entry.prev_hash, _fields(entry))
    session.add(entry)
    session.execute(
        update(AuditHead).where(AuditHead.id == HEAD_ID).values(entry_hash=entry.entry_hash)
    )
    session.flush()
    return entry


def append_alone(session: Session, draft: AuditDraft) -> AuditEntry:
    """Commit one entry in a transaction of its own on the request's session.

    The gate uses this for every read decision: an allowed read's entry is
    committed before its data leaves, and a refusal's entry stays committed
    although the request then fails. Whatever the session held before is
    rolled back first; the gate calls this before anything was written, so
    that is only the read snapshot, and a refused request leaves nothing else.
    Using the request's own connection means a read never needs a second one
    from the pool.
    """
    session.rollback()
    entry = append(session, draft)
    session.commit()
    return entry


def _fields(entry: AuditEntry) -> dict[str, object]:
    return {name: getattr(entry, name) for name in chain.CHAINED_FIELDS}


@dataclass(frozen=True)
class AuditFilter:
    shop_id: uuid.UUID | None = None
    principal_id: uuid.UUID | None = None
    purpose: str | None = None
    decision: Decision | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def query(session: Session, where: AuditFilter, *, after_seq: int, limit: int) -> list[AuditEntry]:
    stmt: Select[AuditEntry] = select(AuditEntry).where(AuditEntry.seq > after_seq)
    if where.shop_id is not None:
        stmt = stmt.where(AuditEntry.shop_id == where.shop_id)
    if where.principal_id is not None:
        stmt = stmt.where(AuditEntry.principal_id == where.principal_id)
    if where.purpose is not None:
        stmt = stmt.where(AuditEntry.purpose == where.purpose)
    if where.decision is not None:
        stmt = stmt.where(AuditEntry.decision == where.decision)
    if where.action is not None:
        stmt = stmt.where(AuditEntry.action == where.action)
    if where.since is not None:
        stmt = stmt.where(AuditEntry.recorded_at >= where.since)
    if where.until is not None:
        stmt = stmt.where(AuditEntry.recorded_at < where.until)
    return list(session.scalars(stmt.order_by(AuditEntry.seq).limit(limit)))


def _stored_entries(session: Session, batch: int = 5000) -> Iterator[dict[str, object]]:
    after = 0
    while True:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.seq > after).order_by(AuditEntry.seq).limit(batch)
        ).all()
        if not rows:
            return
        for row in rows:
            fields = _fields(row)
            fields["prev_hash"] = row.prev_hash
            fields["entry_hash"] = row.entry_hash
            yield fields
        after = rows[-1].seq
        session.expunge_all()


def verify(session: Session) -> chain.ChainReport:
    head = session.get(AuditHead, HEAD_ID)
    return chain.verify_chain(
        _stored_entries(session),
        head_seq=head.seq if head else None,
        head_hash=head.entry_hash if head else None,
    )
