"""Appending to and querying the audit log."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.orm import Session

from audit import chain, merkle, tree
from audit.models import AuditEntry, AuditHead, AuditNode
from audit.schemas import AuditDraft, Decision
from cornerstore.db import utcnow

HEAD_ID = 1
_COLUMNS = tuple(column.key for column in AuditEntry.__table__.columns)


def append(session: Session, draft: AuditDraft) -> AuditEntry:
    """Append one entry in the session's transaction (see :func:`append_many`)."""
    return append_many(session, [draft])[0]


def append_many(session: Session, drafts: Sequence[AuditDraft]) -> list[AuditEntry]:
    """Append entries in the session's transaction, in order, with gap-free sequence numbers.

    Taking the sequence numbers updates the head row first, which locks it (a
    row lock on PostgreSQL, the write lock on SQLite) until the transaction
    ends, so concurrent appenders in any number of processes form one
    gap-free, duplicate-free sequence. The same transaction stores each
    entry's chain hash and the Merkle tree's new nodes and frontier.
    """
    if not drafts:
        return []
    last, prev_hash, frontier = session.execute(
        update(AuditHead)
        .where(AuditHead.id == HEAD_ID)
        .values(seq=AuditHead.seq + len(drafts))
        .returning(AuditHead.seq, AuditHead.entry_hash, AuditHead.frontier)
    ).one()
    first = last - len(drafts) + 1
    now = utcnow()
    entries: list[AuditEntry] = []
    leaves: list[bytes] = []
    chained = bytes(prev_hash)
    for seq, draft in enumerate(drafts, start=first):
        entry = AuditEntry(seq=seq, recorded_at=now, prev_hash=chained, **draft.model_dump())
        encoded = chain.canonical_bytes(_fields(entry))
        entry.entry_hash = chained = chain.link(chained, encoded)
        leaves.append(merkle.leaf_hash(encoded))
        entries.append(entry)
    session.execute(
        insert(AuditEntry),
        [{column: getattr(entry, column) for column in _COLUMNS} for entry in entries],
    )
    new_frontier = tree.extend(session, first - 1, frontier, leaves)
    session.execute(
        update(AuditHead)
        .where(AuditHead.id == HEAD_ID)
        .values(entry_hash=chained, frontier=new_frontier)
    )
    return entries


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


def _stored_entries(session: Session, up_to: int | None, batch: int) -> Iterator[dict[str, object]]:
    """Stored entries in seq order from the lowest, even one below 1, up to ``up_to``."""
    after: int | None = None
    while True:
        stmt = select(AuditEntry).order_by(AuditEntry.seq).limit(batch)
        if after is not None:
            stmt = stmt.where(AuditEntry.seq > after)
        if up_to is not None:
            stmt = stmt.where(AuditEntry.seq <= up_to)
        rows = session.scalars(stmt).all()
        if not rows:
            return
        for row in rows:
            fields = _fields(row)
            fields["prev_hash"] = row.prev_hash
            fields["entry_hash"] = row.entry_hash
            yield fields
        after = rows[-1].seq
        session.expunge_all()


def _head(session: Session) -> chain.ChainHead | None:
    row = session.execute(
        select(AuditHead.seq, AuditHead.entry_hash).where(AuditHead.id == HEAD_ID)
    ).one_or_none()
    return chain.ChainHead(row.seq, bytes(row.entry_hash)) if row else None


def verify(session: Session, *, batch: int = 5000) -> chain.ChainReport:
    """Verify the chain up to the head as read first; later appends are outside this run.

    A running hub keeps appending, so entries after that head are not read.
    Still, no stored entry may lie beyond the head: an entry is committed
    with the head that covers it, so the newest entry, read before the head
    is read again, cannot be newer than it unless the head was wound back.
    """
    head = _head(session)
    report = chain.verify_chain(
        _stored_entries(session, head.seq if head else None, batch), head=head
    )
    if not report.ok or head is None:
        return report
    newest = session.scalar(select(func.max(AuditEntry.seq)))
    now = _head(session)
    if newest is not None and now is not None and newest > now.seq:
        beyond = head.seq + 1
        return chain.ChainReport(
            report.entries_checked, beyond, f"entry {beyond} is not in the chain's head"
        )
    return report


def build_tree_for_existing_entries(session: Session) -> None:
    """Give a log written before the Merkle tree existed its nodes and frontier."""
    if session.scalar(select(func.count()).select_from(AuditNode)):
        return
    encoded = (chain.canonical_bytes(fields) for fields in _stored_entries(session, None, 5000))
    frontier = tree.rebuild(session, encoded)
    session.execute(update(AuditHead).where(AuditHead.id == HEAD_ID).values(frontier=frontier))
