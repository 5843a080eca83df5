"""Reading the audit log: auditors see all of it, a shopkeeper sees their shop's access log."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Response, status
from sqlalchemy.orm import Session

from audit import daily, service, verification
from audit.deps import (
    AccessLogRead,
    AuditRead,
    VerificationRead,
    VerificationStart,
    start_verification,
)
from audit.schemas import (
    AuditCountsOut,
    AuditEventOut,
    AuditEventsOut,
    DayCountOut,
    ReaderCountOut,
    VerificationOut,
)
from cornerstore.authz import AuditedPurpose
from cornerstore.db import utcnow
from cornerstore.deps import CoreDep, DbSession
from cornerstore.errors import GLOBAL_ERRORS, SHOP_ERRORS, NotFound, error_responses
from cornerstore.fieldtypes import Timestamp
from cornerstore.identity import names_of
from cornerstore.models.audit import AuditEntry
from cornerstore.ports import AuditAction, Decision

router = APIRouter(tags=["audit"])

Limit = Annotated[int, Query(ge=1, le=1000)]
After = Annotated[
    int,
    Query(
        ge=0,
        le=2**63 - 1,
        description="Return entries after this sequence number (the `next` cursor)",
    ),
]


def _page(session: Session, entries: list[AuditEntry], limit: int) -> AuditEventsOut:
    # Names are looked up now, not chained into the log: an entry names its
    # principal by id, and the id is what the chain protects.
    names = names_of(session, {e.principal_id for e in entries if e.principal_id})
    return AuditEventsOut(
        events=[
            AuditEventOut.model_validate(e).model_copy(
                update={"principal_name": names.get(e.principal_id) if e.principal_id else None}
            )
            for e in entries
        ],
        next=str(entries[-1].seq) if len(entries) == limit else None,
    )


@router.get(
    "/v1/audit/events",
    response_model=AuditEventsOut,
    responses=GLOBAL_ERRORS,
    summary="Query the audit log",
)
def audit_events(
    permit: AuditRead,
    session: DbSession,
    shop_id: uuid.UUID | None = None,
    principal_id: uuid.UUID | None = None,
    purpose: AuditedPurpose | None = None,
    decision: Decision | None = None,
    action: AuditAction | None = None,
    since: Timestamp | None = None,
    until: Timestamp | None = None,
    after: After = 0,
    limit: Limit = 100,
) -> AuditEventsOut:
    where = service.AuditFilter(shop_id, principal_id, purpose, decision, action, since, until)
    return _page(session, service.query(session, where, after_seq=after, limit=limit), limit)


@router.get(
    "/v1/shops/{shop_id}/access-log",
    response_model=AuditEventsOut,
    responses=SHOP_ERRORS,
    summary="Who accessed this shop's data, when, for what purpose, and what was refused",
)
def access_log(
    permit: AccessLogRead,
    shop_id: uuid.UUID,
    session: DbSession,
    decision: Decision | None = None,
    since: Timestamp | None = None,
    until: Timestamp | None = None,
    after: After = 0,
    limit: Limit = 100,
) -> AuditEventsOut:
    where = service.AuditFilter(shop_id=shop_id, decision=decision, since=since, until=until)
    return _page(session, service.query(session, where, after_seq=after, limit=limit), limit)


@router.get(
    "/v1/audit/counts",
    response_model=AuditCountsOut,
    responses=GLOBAL_ERRORS,
    summary="Entries per UTC day by action, outcome, purpose and refusal reason, and reads by "
    "reader",
    description="What the audit console's charts draw, from the start of the UTC day `days - 1` "
    "days ago up to the newest entry.",
)
def audit_counts(
    permit: AuditRead, session: DbSession, days: Annotated[int, Query(ge=1, le=366)] = 14
) -> AuditCountsOut:
    counts = daily.counts_since(session, daily.window_start(utcnow(), days))
    return AuditCountsOut(
        days=[
            DayCountOut(
                day=date.fromisoformat(c.day),
                action=c.action,
                decision=Decision(c.decision),
                purpose=c.purpose,
                reason=c.reason,
                count=c.count,
            )
            for c in counts.days
        ],
        readers=[
            ReaderCountOut(principal_id=reader, purpose=purpose, count=n)
            for (reader, purpose), n in sorted(counts.readers.items(), key=lambda item: -item[1])
        ],
    )


def _verification_out(run: verification.Run) -> VerificationOut:
    return VerificationOut(
        id=run.id,
        status=run.status,
        entries=run.entries,
        percent=run.percent,
        phase=run.phase,
        started_at=run.started_at,
        finished_at=run.finished_at,
        first_bad_seq=run.first_bad_seq,
        problem=run.problem,
    )


@router.post(
    "/v1/audit/verifications",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=VerificationOut,
    responses=GLOBAL_ERRORS,
    summary="Verify the whole log in the background, as `cornerstore audit verify` does",
    description="Checks every entry against the hash chain, then every leaf against the "
    "Merkle tree and every signed checkpoint. One run works at a time: while one works, "
    "this answers that run. Follow it at the `Location` it names.",
)
def start_audit_verification(
    permit: VerificationStart,
    core: CoreDep,
    session: DbSession,
    response: Response,
    background: BackgroundTasks,
) -> VerificationOut:
    run = start_verification(session, core, permit, background)
    response.headers["Location"] = f"/v1/audit/verifications/{run.id}"
    return _verification_out(run)


@router.get(
    "/v1/audit/verifications/latest",
    response_model=VerificationOut,
    responses=GLOBAL_ERRORS | error_responses(NotFound),
    summary="The newest verification of the log, working or finished",
)
def latest_audit_verification(permit: VerificationRead, session: DbSession) -> VerificationOut:
    run = verification.latest(session)
    if run is None:
        raise NotFound("the log has not been verified yet")
    return _verification_out(run)


@router.get(
    "/v1/audit/verifications/{verification_id}",
    response_model=VerificationOut,
    responses=GLOBAL_ERRORS | error_responses(NotFound),
    summary="How far a verification of the log has got, and what it found",
)
def audit_verification(
    permit: VerificationRead, verification_id: uuid.UUID, session: DbSession
) -> VerificationOut:
    run = verification.get(session, verification_id)
    if run is None:
        raise NotFound("no such verification")
    return _verification_out(run)
