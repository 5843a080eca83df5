"""The full verification of the log, run in the background with its progress kept.

``cornerstore audit verify`` checks every entry against the chain, the tree
and the signed checkpoints (:func:`audit.service.verify`). On a large log
that takes minutes, longer than a request may wait, so the console and the
API start it here: the run works in a thread of the process that was asked,
writes its progress to ``audit_verifications`` as it goes, and any process
answers how far it has got. At most one run works at a time; asking again
while one works joins it. A run whose process died stops writing its
heartbeat and is reported interrupted, and the next request starts afresh.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from audit import service
from cornerstore.db import utcnow
from cornerstore.models.audit import AuditVerification

_log = logging.getLogger(__name__)

#: A running run writes its heartbeat at least this often while it works.
HEARTBEAT_EVERY = 0.5
#: A run whose heartbeat is older than this has lost the process that ran it.
STALE_AFTER = timedelta(seconds=60)
#: Why a run ended as ``interrupted``.
STOPPED = "the process running it stopped"


Phase = Literal["chain", "tree"]


class Status(StrEnum):
    running = "running"
    passed = "passed"
    failed = "failed"
    interrupted = "interrupted"


@dataclass(frozen=True)
class Run:
    """A verification as a reader sees it, whatever process runs it."""

    id: uuid.UUID
    status: Status
    entries: int
    checked: int
    started_at: datetime
    finished_at: datetime | None
    first_bad_seq: int | None
    problem: str | None

    @property
    def percent(self) -> int:
        """How far it has got, 0-100; a finished run is at 100 whatever it covered."""
        if self.status is not Status.running:
            return 100
        return min(99, self.checked * 100 // (2 * self.entries)) if self.entries else 0

    @property
    def phase(self) -> Phase:
        """Which pass it is in: ``chain`` (entry by entry), then ``tree`` (leaves, checkpoints)."""
        return "chain" if self.checked < self.entries else "tree"


def _run_of(row: AuditVerification, now: datetime) -> Run:
    if row.running and row.heartbeat_at < now - STALE_AFTER:
        status, problem = Status.interrupted, STOPPED
    elif row.running:
        status, problem = Status.running, None
    else:
        status, problem = Status(row.outcome or Status.interrupted), row.problem
    return Run(
        row.id,
        status,
        row.entries,
        row.checked,
        row.started_at,
        row.finished_at,
        row.first_bad_seq,
        problem,
    )


def get(session: Session, run_id: uuid.UUID) -> Run | None:
    row = session.get(AuditVerification, run_id)
    return _run_of(row, utcnow()) if row else None


def latest(session: Session) -> Run | None:
    """The newest run, working or finished."""
    row = session.scalar(
        select(AuditVerification).order_by(AuditVerification.started_at.desc()).limit(1)
    )
    return _run_of(row, utcnow()) if row else None


def start(session: Session, requested_by: uuid.UUID | None) -> tuple[Run, bool]:
    """Record a new run, or find the one working; say whether the caller must :func:`launch` it.

    Flushes only: the run is launched after the caller commits, so that its
    thread can see its row.
    """
    now = utcnow()
    _end_stale(session, now)
    working = session.scalar(select(AuditVerification).where(AuditVerification.running.is_(True)))
    if working is not None:
        return _run_of(working, now), False
    row = AuditVerification(
        id=uuid.uuid4(),
        requested_by=requested_by,
        entries=service.head_seq(session),
        checked=0,
        started_at=now,
        heartbeat_at=now,
        running=True,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # Another process started one between our look and our insert: join it.
        working = session.scalars(
            select(AuditVerification).where(AuditVerification.running.is_(True))
        ).one()
        return _run_of(working, now), False
    return _run_of(row, now), True


def _end_stale(session: Session, now: datetime) -> None:
    session.execute(
        update(AuditVerification)
        .where(
            AuditVerification.running.is_(True),
            AuditVerification.heartbeat_at < now - STALE_AFTER,
        )
        .values(
            running=None,
            finished_at=now,
            outcome=Status.interrupted,
            problem=STOPPED,
        )
    )


def launch(sessions: sessionmaker[Session], run_id: uuid.UUID) -> None:
    """Work through the run in a thread of this process; it outlives the request."""
    threading.Thread(
        target=work, args=(sessions, run_id), name="audit-verification", daemon=True
    ).start()


def work(sessions: sessionmaker[Session], run_id: uuid.UUID) -> None:
    """Verify the whole log, writing progress as it goes and the outcome at the end.

    Whatever fails is logged by its name only (a driver's message may quote
    values). A run that cannot even record its end stops writing its
    heartbeat, and is reported interrupted once that is stale.
    """
    try:
        with sessions() as session:
            report = service.verify(session, progress=_ProgressWriter(sessions, run_id))
        if report.ok:
            _finish(sessions, run_id, Status.passed, checked=2 * report.entries_checked)
        else:
            _finish(
                sessions,
                run_id,
                Status.failed,
                first_bad_seq=report.first_bad_seq,
                problem=report.problem,
            )
    except Exception as exc:
        _log.error("audit verification %s stopped: %s", run_id, type(exc).__name__)
        try:
            stopped = f"the check stopped: {type(exc).__name__}"
            _finish(sessions, run_id, Status.interrupted, problem=stopped)
        except Exception as again:
            _log.error("audit verification %s left unfinished: %s", run_id, type(again).__name__)


class _ProgressWriter:
    """Writes a run's progress and heartbeat, at most every :data:`HEARTBEAT_EVERY` seconds."""

    def __init__(self, sessions: sessionmaker[Session], run_id: uuid.UUID) -> None:
        self.sessions = sessions
        self.run_id = run_id
        self.written_at = 0.0

    def __call__(self, done: int, total: int) -> None:
        if time.monotonic() - self.written_at < HEARTBEAT_EVERY:
            return
        with self.sessions() as session, session.begin():
            session.execute(
                update(AuditVerification)
                .where(AuditVerification.id == self.run_id)
                .values(checked=done, entries=total // 2, heartbeat_at=utcnow())
            )
        self.written_at = time.monotonic()


def _finish(
    sessions: sessionmaker[Session],
    run_id: uuid.UUID,
    outcome: Status,
    *,
    checked: int | None = None,
    first_bad_seq: int | None = None,
    problem: str | None = None,
) -> None:
    values: dict[str, object] = {
        "running": None,
        "finished_at": utcnow(),
        "outcome": outcome,
        "first_bad_seq": first_bad_seq,
        "problem": problem,
    }
    if checked is not None:
        values["checked"] = checked
        values["entries"] = checked // 2
    with sessions() as session, session.begin():
        session.execute(
            update(AuditVerification).where(AuditVerification.id == run_id).values(**values)
        )
