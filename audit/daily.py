"""Entries per UTC day and kind: what the console's charts draw, kept as the log grows.

Grouping a fortnight of entries at each view reads millions of rows on a
busy hub. The log only ever grows, so the counts are kept instead: a
background round (:func:`counter`) adds the entries after the newest one
counted (``audit_daily_count_mark``) to ``audit_daily_counts``, and a reader
adds the few entries newer than that mark (:func:`daily_counts`), so a chart
is exact up to its last entry however far the rounds lag. A round takes the
mark's row lock, so rounds in several processes never count an entry twice.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from audit import service
from cornerstore.models.audit import AuditDailyCount, AuditDailyCountMark, AuditEntry
from cornerstore.poller import Poller

MARK_ID = 1
#: Entries one round counts at most, so a round after a long pause stays short.
ROUND_LIMIT = 100_000


@dataclass(frozen=True)
class DailyCount:
    day: str
    action: str
    decision: str
    purpose: str | None
    #: The refusal's reason; empty for what was allowed.
    reason: str
    #: Who read, for allowed reads only.
    principal_id: uuid.UUID | None
    count: int


def _kind() -> list[ColumnElement[Any]]:
    """What the charts tell entries apart by, as SQL over ``audit_entries``."""
    entry = AuditEntry.__table__.c
    allowed_read = and_(entry.action == "read", entry.decision == "allow")
    return [
        func.date(entry.recorded_at),
        entry.action,
        entry.decision,
        func.coalesce(entry.purpose, literal("")),
        case((entry.decision == "deny", entry.reason), else_=literal("")),
        case((allowed_read, entry.principal_id), else_=None),
    ]


def _grouped(session: Session, after_seq: int, up_to: int | None = None) -> list[DailyCount]:
    kind = _kind()
    stmt = select(*kind, func.count()).where(AuditEntry.seq > after_seq)
    if up_to is not None:
        stmt = stmt.where(AuditEntry.seq <= up_to)
    return [
        DailyCount(str(row[0]), row[1], row[2], row[3] or None, row[4], row[5], int(row[6]))
        for row in session.execute(stmt.group_by(*kind))
    ]


def count_new(session: Session, *, limit: int = ROUND_LIMIT) -> int:
    """Add up to ``limit`` entries after the mark to the counts; return how many. Flushes only.

    Waits for no other round: if one holds the mark, this one has nothing to do.
    """
    if session.get_bind().dialect.name == "sqlite":
        # No row locks: take the database's write lock before reading the mark.
        session.execute(
            update(AuditDailyCountMark)
            .where(AuditDailyCountMark.id == MARK_ID)
            .values(seq=AuditDailyCountMark.seq)
        )
    mark = session.get(AuditDailyCountMark, MARK_ID, with_for_update={"skip_locked": True})
    if mark is None:
        return 0
    up_to = min(mark.seq + limit, service.head_seq(session))
    if up_to <= mark.seq:
        return 0
    rows = [
        {
            "day": date.fromisoformat(c.day),
            "action": c.action,
            "decision": c.decision,
            "purpose": c.purpose or "",
            "reason": c.reason,
            "principal_id": str(c.principal_id) if c.principal_id else "",
            "count": c.count,
        }
        for c in _grouped(session, mark.seq, up_to)
    ]
    _add(session, rows)
    counted = up_to - mark.seq
    mark.seq = up_to
    session.flush()
    return counted


def _add(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(AuditDailyCount)
    key = ["day", "action", "decision", "purpose", "reason", "principal_id"]
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=key, set_={"count": AuditDailyCount.count + stmt.excluded["count"]}
        ),
        rows,
    )


def window_start(now: datetime, days: int) -> datetime:
    """The start of the UTC day ``days - 1`` days before ``now``'s: a window of ``days`` days."""
    return now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)


@dataclass(frozen=True)
class Counts:
    """What the charts draw from ``since``'s UTC day on."""

    #: Entries per day and kind, summed over who acted.
    days: list[DailyCount]
    #: Allowed reads, by who read and for what purpose.
    readers: dict[tuple[uuid.UUID, str | None], int]


def counts_since(session: Session, since: datetime) -> Counts:
    """The counts kept from ``since``'s day on, plus the entries newer than the mark.

    The mark is read before and after the kept counts; if a round moved it in
    between, they are read again, so no entry is counted twice or missed.
    """
    first: date = since.date()
    kept = AuditDailyCount
    kind = (kept.day, kept.action, kept.decision, kept.purpose, kept.reason)
    for _attempt in range(5):
        mark = _mark(session)
        days = session.execute(
            select(*kind, func.sum(kept.count)).where(kept.day >= first).group_by(*kind)
        ).all()
        readers = session.execute(
            select(kept.principal_id, kept.purpose, func.sum(kept.count))
            .where(kept.day >= first, kept.principal_id != "")
            .group_by(kept.principal_id, kept.purpose)
        ).all()
        if _mark(session) == mark:
            break
    counts = Counts(
        [
            DailyCount(str(row[0]), row[1], row[2], row[3] or None, row[4], None, int(row[5]))
            for row in days
        ],
        {(uuid.UUID(row[0]), row[1] or None): int(row[2]) for row in readers},
    )
    for newer in _grouped(session, mark):
        if newer.day < first.isoformat():
            continue
        counts.days.append(replace(newer, principal_id=None))
        if newer.principal_id is not None:
            reader = (newer.principal_id, newer.purpose)
            counts.readers[reader] = counts.readers.get(reader, 0) + newer.count
    return counts


def _mark(session: Session) -> int:
    seq = session.scalar(select(AuditDailyCountMark.seq).where(AuditDailyCountMark.id == MARK_ID))
    return int(seq or 0)


def counter(sessions: sessionmaker[Session], *, interval: float) -> Poller:
    """Counts the new entries every ``interval`` seconds, until none is left."""

    def count(stopping: threading.Event) -> None:
        while not stopping.is_set():
            with sessions() as session, session.begin():
                if count_new(session) < ROUND_LIMIT:
                    return

    return Poller("daily-counter", count, interval=interval)
