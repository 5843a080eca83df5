"""A quarantine the shop can fix: its refused records, read, resubmitted corrected, or discarded.

Only the shop's own principals (its shopkeeper, its connectors) see what
arrived, opened from its seal; every read and every change is audited. A
resubmitted record goes through the same validation and storage as a batch
(:func:`connectors.service.ingest`): stored, it leaves the quarantine in
the same transaction; still refused, it stays, and the answer names each
fault.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy.orm import Session

from audit import service as audit
from connectors import service
from connectors.schemas import BatchResult, QuarantinedOut, QuarantineOut
from cornerstore.categories import Category
from cornerstore.errors import FieldError, NotFound, ValidationFailed
from cornerstore.gate import open_quarantined
from cornerstore.identity import Caller
from cornerstore.keys.ring import KeyRing
from cornerstore.ports import AuditAction, AuditDraft
from cornerstore.records import repository


def page(
    session: Session,
    keyring: KeyRing,
    caller: Caller,
    shop_id: uuid.UUID,
    *,
    category: Category | None,
    after: int,
    limit: int,
    policy_version: str,
) -> QuarantineOut:
    rows = repository.read_quarantine(
        session, shop_id, after, limit + 1, None if category is None else category.value
    )
    more, rows = len(rows) > limit, rows[:limit]
    records = [
        QuarantinedOut(
            id=row.id,
            category=row.category,
            reason=row.reason,
            field=row.field,
            line=row.line,
            batch_id=row.batch_id,
            received_at=row.received_at,
            values=json.loads(open_quarantined(keyring, session, row)),
        )
        for row in rows
    ]
    audit.append(
        session,
        AuditDraft.of(
            caller,
            AuditAction.quarantine_read,
            "read",
            shop_id=shop_id,
            category=None if category is None else category.value,
            policy_version=policy_version,
            details={"records": len(records)},
        ),
    )
    return QuarantineOut(records=records, next=str(rows[-1].id) if more else None)


def resubmit(
    session: Session,
    keyring: KeyRing,
    caller: Caller,
    shop_id: uuid.UUID,
    qid: int,
    record: Any,
    *,
    policy_version: str,
) -> BatchResult:
    """Store the corrected record and let the quarantined one go; or say why it is refused."""
    # The shop's row first, as every writer that holds it takes it (the lock order).
    repository.lock_shop(session, shop_id)
    row = repository.quarantined(session, shop_id, qid)
    if row is None:
        raise NotFound("no such quarantined record")
    category = Category(row.category)
    faults = service.faults(category, record)
    if faults:
        raise ValidationFailed(
            "the corrected record is refused too; it stays in quarantine",
            [
                FieldError(field=f"body.{f.field}" if f.field else "body", reason=f.reason)
                for f in faults
            ],
        )
    cipher = keyring.cipher(session, shop_id)
    stored = service.resubmit(
        session, cipher, caller, category, record, policy_version=policy_version
    )
    session.delete(row)
    session.flush()
    _audit(
        session, caller, AuditAction.quarantine_resubmit, row.category, shop_id, qid, policy_version
    )
    return stored


def discard(
    session: Session, caller: Caller, shop_id: uuid.UUID, qid: int, *, policy_version: str
) -> None:
    repository.lock_shop(session, shop_id)
    row = repository.quarantined(session, shop_id, qid)
    if row is None:
        raise NotFound("no such quarantined record")
    session.delete(row)
    session.flush()
    _audit(
        session, caller, AuditAction.quarantine_discard, row.category, shop_id, qid, policy_version
    )


def _audit(
    session: Session,
    caller: Caller,
    action: AuditAction,
    category: str,
    shop_id: uuid.UUID,
    qid: int,
    policy_version: str,
) -> None:
    audit.append(
        session,
        AuditDraft.of(
            caller,
            action,
            "changed",
            shop_id=shop_id,
            category=category,
            policy_version=policy_version,
            details={"quarantined_id": qid},
        ),
    )
