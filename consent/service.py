"""The consent lifecycle: requests, grants, approvals, pauses and revocations, each a new version.

Every change happens in the request's transaction and, with it, records the
new version with its signed receipt, an audit entry and a webhook event for
the consumer: either all of them are stored or none is. A change races no
other: it applies only to the version it read (compare-and-set on
``version``), and a loser gets 409.

Lock order: a grant or approval locks its shop's row first; every change locks
the consent rows it will change before its first audit entry. The audit log's
head is the one row every writer locks (ingest, reads, every change), so it
must come last; a change that held the head while it waited for a consent row
could deadlock with one that held the row while it waited for the head, and
the database would abort one of them as a 503.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import ColumnElement, CursorResult, select, update
from sqlalchemy.orm import Session

from audit import service as audit
from consent import receipts, terms, webhooks
from consent.schemas import (
    ConsentIn,
    ConsentOut,
    ConsentRequestIn,
    NarrowingIn,
)
from cornerstore.authz import Purpose
from cornerstore.categories import Category
from cornerstore.errors import Conflict, FieldError, NotFound, ValidationFailed
from cornerstore.identity import Caller
from cornerstore.models.consent import AccessMode, Consent, ConsentStatus, ConsentVersion
from cornerstore.models.principals import Principal, Role
from cornerstore.models.shops import Shop
from cornerstore.ports import AuditDraft

if TYPE_CHECKING:
    from consent.deps import ConsentCore

#: Audit actions for each kind of change (grant and revoke as the foundation named them).
AUDIT_ACTIONS = {
    "requested": "consent.request",
    "approved": "consent.approve",
    "refused": "consent.refuse",
    "granted": "consent.grant",
    "paused": "consent.pause",
    "resumed": "consent.resume",
    "revoked": "consent.revoke",
    "expired": "consent.expire",
    "superseded": "consent.supersede",
}


@dataclass(frozen=True)
class Context:
    """What a change needs besides the session: who acts, when, the catalogue, the receipt key."""

    caller: Caller
    #: The change's time: every timestamp it writes, and what "now" means for its checks.
    now: datetime
    purposes: Mapping[str, Purpose]
    #: Whether Casbin lets any consumer read (purpose, category) at all.
    purpose_allows: Callable[[str, str], bool]
    signer: receipts.ReceiptSigner
    issuer: str
    policy_version: str

    def allowed_categories(self, purpose: str) -> frozenset[str]:
        return frozenset(c.value for c in Category if self.purpose_allows(purpose, c.value))


def context(hub: ConsentCore, caller: Caller, policy_version: str, now: datetime) -> Context:
    """The context of a change made by ``caller`` on ``hub`` at ``now``."""
    return Context(
        caller=caller,
        now=now,
        purposes=hub.authorizer.purposes,
        purpose_allows=hub.authorizer.purpose_allows,
        signer=hub.receipt_signer,
        issuer=hub.settings.receipt_issuer,
        policy_version=policy_version,
    )


def effective_status(consent: Consent, now: datetime) -> ConsentStatus:
    """Expiry needs no job to run: a consent past its validity reads as expired at that instant."""
    status = ConsentStatus(consent.status)
    if status in (ConsentStatus.active, ConsentStatus.paused) and consent.expires_at <= now:
        return ConsentStatus.expired
    return status


def to_out(consent: Consent, now: datetime) -> ConsentOut:
    t = terms.Terms.of(consent)
    return ConsentOut(
        id=consent.id,
        shop_id=consent.shop_id,
        consumer_id=consent.consumer_id,
        consumer_name=consent.consumer.name,
        consumer_description=consent.consumer.description,
        purpose=consent.purpose,
        categories=list(consent.categories),
        status=effective_status(consent, now),
        version=consent.version,
        access_mode=AccessMode(consent.access_mode),
        data_range=t.data_range(),
        max_reads_per_day=consent.max_reads_per_day,
        valid_from=consent.valid_from,
        expires_at=consent.expires_at,
        data_life=t.data_life,
        created_at=consent.created_at,
        granted_at=consent.granted_at,
        revoked_at=consent.revoked_at,
        updated_at=consent.updated_at,
        uses=consent.uses,
        last_used_at=consent.last_used_at,
    )


def list_for_shop(
    session: Session,
    shop_id: uuid.UUID,
    now: datetime,
    status: ConsentStatus | None = None,
) -> list[ConsentOut]:
    """The shop's consents, oldest first; only those ``status`` now, if given."""
    rows = session.scalars(
        select(Consent).where(Consent.shop_id == shop_id).order_by(Consent.created_at, Consent.id)
    )
    # Filtered on the status each has now: one past its validity is expired
    # whether or not the lapse has been recorded yet.
    return [out for out in (to_out(c, now) for c in rows) if status in (None, out.status)]


def list_for_consumer(session: Session, consumer_id: uuid.UUID, now: datetime) -> list[ConsentOut]:
    rows = session.scalars(
        select(Consent)
        .where(Consent.consumer_id == consumer_id)
        .order_by(Consent.created_at, Consent.id)
    )
    return [to_out(c, now) for c in rows]


def _purpose(ctx: Context, code: str) -> Purpose:
    purpose = ctx.purposes.get(code)
    if purpose is None:  # PurposeName and the catalogue are pinned equal by a policy test.
        raise ValidationFailed(
            "unknown purpose", [FieldError(field="body.purpose", reason="not in the catalogue")]
        )
    return purpose


def _new(
    session: Session,
    ctx: Context,
    shop_id: uuid.UUID,
    consumer_id: uuid.UUID,
    body: ConsentIn | ConsentRequestIn,
    *,
    status: ConsentStatus,
    change: str,
) -> ConsentOut:
    now = ctx.now
    purpose = _purpose(ctx, body.purpose.value)
    problems: list[FieldError] = []
    consumer = session.get(Principal, consumer_id)
    if consumer is None or consumer.role != Role.consumer:
        problems.append(FieldError(field="body.consumer_id", reason="no consumer with this id"))
    try:
        asked = terms.build(
            purpose,
            categories=[c.value for c in body.categories],
            access_mode=body.access_mode,
            data_range=body.data_range,
            max_reads_per_day=body.max_reads_per_day,
            valid_from=body.valid_from,
            valid_until=body.expires_at,
            data_life=body.data_life,
            allowed_categories=ctx.allowed_categories(purpose.code),
            now=now,
        )
    except ValidationFailed as exc:
        problems.extend(exc.fields or [])
    if problems:
        raise ValidationFailed("the consent cannot be given as asked", problems)
    granted = status is ConsentStatus.active
    consent = Consent(
        id=uuid.uuid4(),
        shop_id=shop_id,
        consumer_id=consumer_id,
        status=status,
        version=1,
        created_at=now,
        updated_at=now,
        requested_by=None if granted else ctx.caller.id,
        granted_by=ctx.caller.id if granted else None,
        granted_at=now if granted else None,
        paused_by_shop=False,
        uses=0,
        day_uses=0,
        **asked.columns(),
    )
    session.add(consent)
    session.flush()
    replaced = _lock_live_others(session, consent) if granted else []
    _record_version(session, ctx, consent, change, now)
    _supersede(session, ctx, replaced)
    return to_out(consent, now)


def request(
    session: Session,
    ctx: Context,
    shop_id: uuid.UUID,
    body: ConsentRequestIn,
) -> ConsentOut:
    """A consumer asks a shop for consent; it waits, ``requested``, for the shopkeeper."""
    return _new(
        session,
        ctx,
        shop_id,
        ctx.caller.id,
        body,
        status=ConsentStatus.requested,
        change="requested",
    )


def grant(
    session: Session,
    ctx: Context,
    shop_id: uuid.UUID,
    body: ConsentIn,
) -> ConsentOut:
    """A shopkeeper grants a consent directly, active at once."""
    return _new(
        session,
        ctx,
        shop_id,
        body.consumer_id,
        body,
        status=ConsentStatus.active,
        change="granted",
    )


def _load(session: Session, shop_id: uuid.UUID, consent_id: uuid.UUID) -> Consent:
    consent = session.scalar(
        select(Consent)
        .where(Consent.id == consent_id, Consent.shop_id == shop_id)
        .execution_options(populate_existing=True)
    )
    if consent is None:
        raise NotFound()
    return consent


def _transition(
    session: Session,
    ctx: Context,
    consent: Consent,
    *,
    to: ConsentStatus,
    change: str,
    allowed_from: Sequence[ConsentStatus],
    now: datetime,
    values: Mapping[str, Any] | None = None,
) -> ConsentOut:
    current = effective_status(consent, now)
    if current not in allowed_from:
        raise Conflict(f"consent {consent.id} is {_already(current, to)}{current}")
    version = consent.version
    result = session.execute(
        update(Consent)
        .where(Consent.id == consent.id, Consent.version == version)
        .values(status=to, version=version + 1, updated_at=now, **(values or {}))
        .execution_options(synchronize_session=False)
    )
    if not cast(CursorResult[Any], result).rowcount:
        raise Conflict(f"consent {consent.id} changed meanwhile; read it again")
    session.refresh(consent)
    _record_version(session, ctx, consent, change, now)
    return to_out(consent, now)


def _already(current: ConsentStatus, to: ConsentStatus) -> str:
    return "already " if current == to else ""


def approve(
    session: Session,
    ctx: Context,
    shop_id: uuid.UUID,
    request_id: uuid.UUID,
    body: NarrowingIn | None,
) -> ConsentOut:
    """The shopkeeper approves a request, as asked or narrowed; it becomes active."""
    now = ctx.now
    consent = _load(session, shop_id, request_id)
    if consent.status != ConsentStatus.requested:
        raise Conflict(f"consent {request_id} is {consent.status}, not a pending request")
    asked = terms.Terms.of(consent)
    approved = terms.narrow(asked, body) if body is not None else asked
    # A request may wait for days: it is valid from its approval at the earliest.
    approved = replace(approved, valid_from=max(approved.valid_from, now))
    terms.check(
        _purpose(ctx, consent.purpose),
        approved,
        allowed_categories=ctx.allowed_categories(consent.purpose),
        now=now,
    )
    replaced = _lock_live_others(session, consent)
    out = _transition(
        session,
        ctx,
        consent,
        to=ConsentStatus.active,
        change="approved",
        allowed_from=[ConsentStatus.requested],
        now=now,
        values={**approved.columns(), "granted_by": ctx.caller.id, "granted_at": now},
    )
    _supersede(session, ctx, replaced)
    return out


def _lock_live_others(session: Session, consent: Consent) -> Sequence[Consent]:
    """The other live consents of the same shop, consumer and purpose, locked for the change.

    The shop's row is locked first, so that grants and approvals of one shop
    take turns: two racing ones would each miss the consent the other has
    not yet committed, and both would stay live. Called before the change's
    first audit entry: see the lock order above. ``FOR NO KEY UPDATE``: it
    does not wait for, or hold up, the inserts whose foreign keys name the
    shop (this change's own, and every ingest's).
    """
    session.execute(
        select(Shop.id).where(Shop.id == consent.shop_id).with_for_update(key_share=True)
    )
    return session.scalars(
        select(Consent)
        .where(
            Consent.shop_id == consent.shop_id,
            Consent.consumer_id == consent.consumer_id,
            Consent.purpose == consent.purpose,
            Consent.id != consent.id,
            Consent.status.in_([ConsentStatus.active, ConsentStatus.paused]),
        )
        .order_by(Consent.created_at, Consent.id)
        .with_for_update()
    ).all()


def _supersede(session: Session, ctx: Context, others: Sequence[Consent]) -> None:
    """At most one live consent per shop, consumer and purpose: the newest terms replace the rest.

    So a limit the shopkeeper narrows binds: an older, wider consent of the
    same consumer for the same purpose does not keep allowing what the new
    one refuses. Each one replaced gets a version of its own, with its
    receipt, audit entry and webhook event.
    """
    for other in others:
        if effective_status(other, ctx.now) is ConsentStatus.expired:
            continue  # Lapsed already: it allows nothing, and its lapse is recorded apart.
        _transition(
            session,
            ctx,
            other,
            to=ConsentStatus.superseded,
            change="superseded",
            allowed_from=[ConsentStatus.active, ConsentStatus.paused],
            now=ctx.now,
            values={"paused_by_shop": False},
        )


def refuse(session: Session, ctx: Context, shop_id: uuid.UUID, request_id: uuid.UUID) -> ConsentOut:
    now = ctx.now
    consent = _load(session, shop_id, request_id)
    if consent.status != ConsentStatus.requested:
        raise Conflict(f"consent {request_id} is {consent.status}, not a pending request")
    return _transition(
        session,
        ctx,
        consent,
        to=ConsentStatus.refused,
        change="refused",
        allowed_from=[ConsentStatus.requested],
        now=now,
    )


def pause(session: Session, ctx: Context, shop_id: uuid.UUID, consent_id: uuid.UUID) -> ConsentOut:
    now = ctx.now
    return _transition(
        session,
        ctx,
        _load(session, shop_id, consent_id),
        to=ConsentStatus.paused,
        change="paused",
        allowed_from=[ConsentStatus.active],
        now=now,
    )


def resume(session: Session, ctx: Context, shop_id: uuid.UUID, consent_id: uuid.UUID) -> ConsentOut:
    now = ctx.now
    return _transition(
        session,
        ctx,
        _load(session, shop_id, consent_id),
        to=ConsentStatus.active,
        change="resumed",
        allowed_from=[ConsentStatus.paused],
        now=now,
        values={"paused_by_shop": False},
    )


def revoke(session: Session, ctx: Context, shop_id: uuid.UUID, consent_id: uuid.UUID) -> ConsentOut:
    """Revoke; the very next read under the consent is refused, in every worker."""
    now = ctx.now
    return _transition(
        session,
        ctx,
        _load(session, shop_id, consent_id),
        to=ConsentStatus.revoked,
        change="revoked",
        # Revoking needs no other condition: an expired consent may be revoked too.
        allowed_from=[ConsentStatus.active, ConsentStatus.paused, ConsentStatus.expired],
        now=now,
        values={"revoked_by": ctx.caller.id, "revoked_at": now, "paused_by_shop": False},
    )


def record_expiry(
    session: Session, ctx: Context, shop_id: uuid.UUID, consent_id: uuid.UUID
) -> ConsentOut:
    """Write down that a consent lapsed (see :mod:`consent.expiry`); reads stopped already."""
    return _transition(
        session,
        ctx,
        _load(session, shop_id, consent_id),
        to=ConsentStatus.expired,
        change="expired",
        allowed_from=[ConsentStatus.expired],
        now=ctx.now,
        values={"paused_by_shop": False},
    )


def pause_sharing(session: Session, ctx: Context, shop_id: uuid.UUID) -> list[ConsentOut]:
    """One action pauses every active consent of the shop; resume-sharing undoes exactly that."""
    return _change_shop(
        session,
        ctx,
        shop_id,
        Consent.status == ConsentStatus.active,
        to=ConsentStatus.paused,
        change="paused",
        paused_by_shop=True,
    )


def resume_sharing(session: Session, ctx: Context, shop_id: uuid.UUID) -> list[ConsentOut]:
    return _change_shop(
        session,
        ctx,
        shop_id,
        (Consent.status == ConsentStatus.paused) & Consent.paused_by_shop.is_(True),
        to=ConsentStatus.active,
        change="resumed",
        paused_by_shop=False,
    )


def _change_shop(
    session: Session,
    ctx: Context,
    shop_id: uuid.UUID,
    which: ColumnElement[bool],
    *,
    to: ConsentStatus,
    change: str,
    paused_by_shop: bool,
) -> list[ConsentOut]:
    """Change every unexpired consent of the shop that ``which`` picks."""
    now = ctx.now
    # Locked, so that a resume or approval racing this cannot slip past it.
    picked = session.scalars(
        select(Consent)
        .where(Consent.shop_id == shop_id, which, Consent.expires_at > now)
        .order_by(Consent.created_at, Consent.id)
        .with_for_update()
    ).all()
    source = ConsentStatus.paused if to is ConsentStatus.active else ConsentStatus.active
    return [
        _transition(
            session,
            ctx,
            consent,
            to=to,
            change=change,
            allowed_from=[source],
            now=now,
            values={"paused_by_shop": paused_by_shop},
        )
        for consent in picked
    ]


def _record_version(
    session: Session, ctx: Context, consent: Consent, change: str, now: datetime
) -> None:
    """The new version, its receipt, its audit entry and the consumer's webhook event."""
    doc = terms.artefact(
        consent,
        ctx.purposes.get(consent.purpose),
        change=change,
        changed_by=str(ctx.caller.id),
        changed_by_role=ctx.caller.role,
        changed_at=now,
    )
    previous = session.scalar(
        select(ConsentVersion.receipt).where(
            ConsentVersion.consent_id == consent.id,
            ConsentVersion.version == consent.version - 1,
        )
    )
    receipt = receipts.issue(ctx.signer, doc, previous_receipt=previous, issuer=ctx.issuer)
    session.add(
        ConsentVersion(
            consent_id=consent.id,
            version=consent.version,
            shop_id=consent.shop_id,
            status=consent.status,
            change=change,
            changed_by=ctx.caller.id,
            changed_by_role=ctx.caller.role,
            changed_at=now,
            artefact=doc,
            receipt=receipt,
        )
    )
    session.flush()
    audit.append(
        session,
        AuditDraft.of(
            ctx.caller,
            AUDIT_ACTIONS[change],
            "changed",
            shop_id=consent.shop_id,
            purpose=consent.purpose,
            policy_version=ctx.policy_version,
            details={
                "consent_id": str(consent.id),
                "version": consent.version,
                "status": consent.status,
                "consumer_id": str(consent.consumer_id),
                "categories": list(consent.categories),
                "expires_at": consent.expires_at.isoformat(),
            },
        ),
    )
    webhooks.enqueue(
        session,
        consent.consumer_id,
        webhooks.STATUS_EVENT,
        {
            "consent_id": str(consent.id),
            "shop_id": str(consent.shop_id),
            "version": consent.version,
            "status": consent.status,
            "change": change,
            "changed_at": terms.iso(now),
        },
    )
