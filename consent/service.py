"""Granting, revoking and checking consents. Checks read the database every time,
so a revocation takes effect on the very next request.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, bindparam, select, update
from sqlalchemy.orm import Session

from audit import service as audit
from audit.schemas import AuditDraft, Decision
from consent.models import Consent, ConsentStatus
from consent.schemas import ConsentIn, ConsentOut
from cornerstore.db import UTCDateTime, utcnow
from cornerstore.errors import Conflict, FieldError, NotFound, ValidationFailed
from cornerstore.principals.auth import Caller
from cornerstore.principals.models import Principal, Role

#: Built once: the gate runs this on every governed read, and building the
#: statement cost more than running it.
_ACTIVE_CONSENTS = (
    select(Consent.id, Consent.categories)
    .where(
        Consent.shop_id == bindparam("shop_id"),
        Consent.consumer_id == bindparam("consumer_id"),
        Consent.purpose == bindparam("purpose"),
        Consent.status == ConsentStatus.active,
        Consent.expires_at > bindparam("at", type_=UTCDateTime),
    )
    .order_by(Consent.expires_at.desc())
)


def find_active(
    session: Session,
    *,
    shop_id: uuid.UUID,
    consumer_id: uuid.UUID,
    purpose: str,
    category: str,
    at: datetime,
) -> uuid.UUID | None:
    """The id of the consent that lets this consumer read this category for this purpose now."""
    candidates = session.execute(
        _ACTIVE_CONSENTS,
        {"shop_id": shop_id, "consumer_id": consumer_id, "purpose": purpose, "at": at},
    )
    return next(
        (consent_id for consent_id, categories in candidates if category in categories), None
    )


def to_out(consent: Consent, now: datetime) -> ConsentOut:
    out = ConsentOut.model_validate(consent)
    if consent.status == ConsentStatus.active and consent.expires_at <= now:
        # Expiry needs no job to run: an expired consent simply reads as expired.
        out = out.model_copy(update={"status": ConsentStatus.expired})
    return out


def list_for_shop(session: Session, shop_id: uuid.UUID) -> list[ConsentOut]:
    now = utcnow()
    rows = session.scalars(
        select(Consent).where(Consent.shop_id == shop_id).order_by(Consent.granted_at, Consent.id)
    )
    return [to_out(c, now) for c in rows]


def grant(
    session: Session,
    caller: Caller,
    shop_id: uuid.UUID,
    body: ConsentIn,
    *,
    allowed_categories: frozenset[str],
    policy_version: str,
) -> ConsentOut:
    now = utcnow()
    problems: list[FieldError] = []
    consumer = session.get(Principal, body.consumer_id)
    if consumer is None or consumer.role != Role.consumer:
        problems.append(FieldError(field="body.consumer_id", reason="no consumer with this id"))
    refused = sorted(set(body.categories) - allowed_categories)
    if refused:
        problems.append(
            FieldError(
                field="body.categories",
                reason=f"purpose {body.purpose.value} never covers {', '.join(refused)}",
            )
        )
    if body.expires_at <= now:
        problems.append(FieldError(field="body.expires_at", reason="must be in the future"))
    if problems:
        raise ValidationFailed("the consent cannot be granted as asked", problems)

    consent = Consent(
        id=uuid.uuid4(),
        shop_id=shop_id,
        consumer_id=body.consumer_id,
        purpose=body.purpose.value,
        categories=sorted(c.value for c in set(body.categories)),
        status=ConsentStatus.active,
        granted_by=caller.id,
        granted_at=now,
        expires_at=body.expires_at,
    )
    session.add(consent)
    session.flush()
    _audit(session, caller, consent, "consent.grant", policy_version)
    return to_out(consent, now)


def revoke(
    session: Session,
    caller: Caller,
    shop_id: uuid.UUID,
    consent_id: uuid.UUID,
    *,
    policy_version: str,
) -> ConsentOut:
    now = utcnow()
    # A guarded update, so two revocations racing cannot both succeed.
    result = session.execute(
        update(Consent)
        .where(
            Consent.id == consent_id,
            Consent.shop_id == shop_id,
            Consent.status == ConsentStatus.active,
        )
        .values(status=ConsentStatus.revoked, revoked_at=now, revoked_by=caller.id)
        .execution_options(synchronize_session=False)
    )
    changed = cast(CursorResult[Any], result).rowcount
    consent = session.scalar(
        select(Consent)
        .where(Consent.id == consent_id, Consent.shop_id == shop_id)
        .execution_options(populate_existing=True)
    )
    if consent is None:
        raise NotFound()
    if not changed:
        raise Conflict(f"consent {consent_id} is already {consent.status}")
    _audit(session, caller, consent, "consent.revoke", policy_version)
    return to_out(consent, now)


def _audit(
    session: Session, caller: Caller, consent: Consent, action: str, policy_version: str
) -> None:
    audit.append(
        session,
        AuditDraft(
            action=action,
            decision=Decision.allow,
            reason="changed",
            principal_id=caller.id,
            principal_role=caller.role,
            shop_id=consent.shop_id,
            purpose=consent.purpose,
            policy_version=policy_version,
            details={
                "consent_id": str(consent.id),
                "consumer_id": str(consent.consumer_id),
                "categories": list(consent.categories),
                "expires_at": consent.expires_at.isoformat(),
            },
        ),
    )
