from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from audit import service as audit
from cornerstore import websessions
from cornerstore.errors import Conflict, FieldError, NotFound, ValidationFailed
from cornerstore.identity import Caller, hash_api_key, new_api_key, signing_key_id
from cornerstore.models.principals import (
    Principal,
    PrincipalKey,
    PrincipalShop,
    Role,
    SigningKey,
)
from cornerstore.models.shops import Shop
from cornerstore.ports import AuditDraft
from hub.principals.schemas import (
    ConsumerOut,
    DisabledOut,
    KeyRotated,
    PrincipalCreated,
    PrincipalIn,
    PrincipalOut,
    PrincipalsOut,
    SigningKeyIn,
    SigningKeyOut,
    SigningKeysOut,
    SignInLinkOut,
)


def create(
    session: Session,
    body: PrincipalIn,
    *,
    by: Caller | None = None,
    policy_version: str | None = None,
) -> PrincipalCreated:
    """Create a principal and its API key. ``by`` is None for the operator's CLI.

    The creation is audited once for each shop it links, so that a shop's
    access log shows every new key that can act for it (an admin could
    otherwise mint a shopkeeper key and read a shop unseen).
    """
    shop_ids = list(dict.fromkeys(body.shop_ids))
    problem = _shop_scope_problem(body.role, len(shop_ids))
    if problem is None and shop_ids:
        known = set(session.scalars(select(Shop.id).where(Shop.id.in_(shop_ids))))
        unknown = [str(s) for s in shop_ids if s not in known]
        if unknown:
            problem = f"no such shop: {', '.join(unknown)}"
    if problem is not None:
        raise ValidationFailed(problem, [FieldError(field="body.shop_ids", reason=problem)])

    api_key = new_api_key()
    principal = Principal(
        id=uuid.uuid4(),
        name=body.name,
        role=body.role.value,
        description=body.description,
        keys=[PrincipalKey(key_hash=hash_api_key(api_key))],
        shop_links=[PrincipalShop(shop_id=s) for s in shop_ids],
    )
    session.add(principal)
    session.flush()
    linked: list[uuid.UUID | None] = list(shop_ids) or [None]
    for shop_id in linked:
        audit.append(
            session,
            AuditDraft.of(
                by,
                "principal.create",
                "created",
                shop_id=shop_id,
                policy_version=policy_version,
                details={"created_principal_id": str(principal.id), "role": body.role.value},
            ),
        )
    return PrincipalCreated(
        id=principal.id, name=principal.name, role=body.role, shop_ids=shop_ids, api_key=api_key
    )


def _shop_scope_problem(role: Role, count: int) -> str | None:
    if role is Role.shopkeeper and count < 1:
        return "a shopkeeper keeps at least one shop"
    if role is Role.connector and count != 1:
        return "a connector writes for exactly one shop"
    if role not in (Role.shopkeeper, Role.connector) and count:
        return f"a {role.value} is not tied to shops"
    return None


def describe(principal: Principal) -> PrincipalOut:
    return PrincipalOut(
        id=principal.id,
        name=principal.name,
        role=Role(principal.role),
        description=principal.description,
        shop_ids=sorted(link.shop_id for link in principal.shop_links),
        created_at=principal.created_at,
        disabled_at=principal.disabled_at,
    )


def get(session: Session, principal_id: uuid.UUID) -> PrincipalOut:
    principal = session.get(Principal, principal_id)
    if principal is None:
        raise NotFound()
    return describe(principal)


def list_page(
    session: Session,
    *,
    role: Role | None,
    shop_id: uuid.UUID | None,
    after: uuid.UUID | None,
    limit: int,
) -> PrincipalsOut:
    """Principals in id order, a page at a time; ``after`` is the last id of the page before."""
    stmt = select(Principal).order_by(Principal.id).limit(limit + 1)
    if role is not None:
        stmt = stmt.where(Principal.role == role.value)
    if shop_id is not None:
        stmt = stmt.where(
            Principal.id.in_(
                select(PrincipalShop.principal_id).where(PrincipalShop.shop_id == shop_id)
            )
        )
    if after is not None:
        stmt = stmt.where(Principal.id > after)
    rows = list(session.scalars(stmt))
    more = len(rows) > limit
    page = [describe(p) for p in rows[:limit]]
    return PrincipalsOut(principals=page, next=str(page[-1].id) if more else None)


def _audit_change(
    session: Session,
    principal: Principal,
    action: str,
    *,
    by: Caller | None,
    policy_version: str | None,
    now: datetime,
) -> None:
    """One entry for each shop the principal acts for, so each shop's access log shows it."""
    linked: list[uuid.UUID | None] = [link.shop_id for link in principal.shop_links] or [None]
    for shop_id in linked:
        audit.append(
            session,
            AuditDraft.of(
                by,
                action,
                "changed",
                shop_id=shop_id,
                policy_version=policy_version,
                details={"principal_id": str(principal.id), "at": now.isoformat()},
            ),
        )


#: How long a rotated key may keep working beside its successor: a leaked key
#: must not outlive its rotation for long.
MAX_GRACE = timedelta(days=30)


def _locked(session: Session, principal_id: uuid.UUID) -> Principal:
    """The principal, locked for the change (concurrent changes take turns), or a 404."""
    principal = session.get(Principal, principal_id, with_for_update=True)
    if principal is None:
        raise NotFound()
    return principal


def disable(
    session: Session,
    principal_id: uuid.UUID,
    *,
    by: Caller | None,
    policy_version: str | None,
    now: datetime,
) -> DisabledOut:
    """Every key of the principal answers 401 from ``now``, in every worker (nothing is cached)."""
    principal = _locked(session, principal_id)
    if principal.disabled_at is None:
        principal.disabled_at = now
        websessions.end_all(session, principal.id, now)
        session.flush()
        _audit_change(
            session, principal, "principal.disable", by=by, policy_version=policy_version, now=now
        )
    return DisabledOut(id=principal.id, disabled_at=principal.disabled_at)


def rotate_key(
    session: Session,
    principal_id: uuid.UUID,
    *,
    grace: timedelta,
    by: Caller | None,
    policy_version: str | None,
    now: datetime,
) -> KeyRotated:
    """A new key for the principal; its earlier keys keep working for ``grace``, then stop."""
    principal = _locked(session, principal_id)
    if principal.disabled_at is not None:
        raise Conflict("the principal is disabled; a disabled principal gets no new key")
    ends = now + grace
    session.execute(
        update(PrincipalKey)
        .where(
            PrincipalKey.principal_id == principal_id,
            or_(PrincipalKey.expires_at.is_(None), PrincipalKey.expires_at > ends),
        )
        .values(expires_at=ends)
    )
    api_key = new_api_key()
    session.add(
        PrincipalKey(principal_id=principal_id, key_hash=hash_api_key(api_key), created_at=now)
    )
    session.flush()
    _audit_change(
        session, principal, "principal.rotate-key", by=by, policy_version=policy_version, now=now
    )
    return KeyRotated(id=principal.id, api_key=api_key, previous_keys_expire_at=ends)


#: Who sends a shop's records, and so may sign messages on the ingest stream.
_SENDERS = frozenset({Role.connector, Role.shopkeeper})


def add_signing_key(
    session: Session,
    principal_id: uuid.UUID,
    body: SigningKeyIn,
    *,
    by: Caller,
    policy_version: str,
    now: datetime,
) -> SigningKeyOut:
    """Register a public key the principal's stream messages will be signed with."""
    principal = _locked(session, principal_id)
    if principal.disabled_at is not None:
        raise Conflict("the principal is disabled; a disabled principal gets no new key")
    if principal.role not in _SENDERS:
        raise Conflict("only a shop's connector or shopkeeper sends records on the stream")
    key_id = signing_key_id(body.raw)
    known = session.get(SigningKey, key_id)
    if known is not None:
        if known.principal_id != principal_id or known.revoked_at is not None:
            raise Conflict("this key is registered already; make a new pair")
        return _signing_key_out(known)
    key = SigningKey(key_id=key_id, principal_id=principal_id, public_key=body.raw, created_at=now)
    session.add(key)
    session.flush()
    _audit_change(
        session,
        principal,
        "principal.add-signing-key",
        by=by,
        policy_version=policy_version,
        now=now,
    )
    return _signing_key_out(key)


def revoke_signing_key(
    session: Session,
    principal_id: uuid.UUID,
    key_id: str,
    *,
    by: Caller,
    policy_version: str,
    now: datetime,
) -> SigningKeyOut:
    """Stop a key verifying: messages signed with it, even those already sent, are refused."""
    principal = _locked(session, principal_id)
    key = session.get(SigningKey, key_id, with_for_update=True)
    if key is None or key.principal_id != principal_id:
        raise NotFound()
    if key.revoked_at is None:
        key.revoked_at = now
        session.flush()
        _audit_change(
            session,
            principal,
            "principal.revoke-signing-key",
            by=by,
            policy_version=policy_version,
            now=now,
        )
    return _signing_key_out(key)


def signing_keys(session: Session, principal_id: uuid.UUID) -> SigningKeysOut:
    """A principal's stream-signing keys, so that one nobody knows can be found and revoked."""
    found = session.scalars(
        select(SigningKey)
        .where(SigningKey.principal_id == principal_id)
        .order_by(SigningKey.created_at.desc(), SigningKey.key_id)
    )
    return SigningKeysOut(keys=[_signing_key_out(key) for key in found])


def _signing_key_out(key: SigningKey) -> SigningKeyOut:
    return SigningKeyOut(
        key_id=key.key_id,
        principal_id=key.principal_id,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


def ids_named(session: Session, who: str) -> list[uuid.UUID]:
    """The principals a name (or an id) stands for; names need not be unique."""
    try:
        by_id = uuid.UUID(who)
    except ValueError:
        return list(
            session.scalars(
                select(Principal.id).where(Principal.name == who).order_by(Principal.id)
            )
        )
    return [by_id] if session.get(Principal, by_id) is not None else []


def sign_in_link(
    session: Session,
    principal_id: uuid.UUID,
    *,
    public_url: str,
    valid_for: timedelta,
    by: Caller | None,
    policy_version: str | None,
    now: datetime,
) -> SignInLinkOut:
    """A one-time link into the web console, for a shopkeeper or an auditor."""
    principal = _locked(session, principal_id)
    minted = websessions.mint_link(session, principal, valid_for=valid_for, now=now)
    _audit_change(
        session, principal, "principal.sign-in-link", by=by, policy_version=policy_version, now=now
    )
    return SignInLinkOut(
        url=f"{public_url.rstrip('/')}/sign-in?token={minted.token}",
        expires_at=minted.expires_at,
    )


def disable_those_only_of(session: Session, shop_id: uuid.UUID, now: datetime) -> list[uuid.UUID]:
    """Disable the principals that act for ``shop_id`` and no other shop (before it is erased)."""
    linked = select(PrincipalShop.principal_id).where(PrincipalShop.shop_id == shop_id)
    elsewhere = select(PrincipalShop.principal_id).where(PrincipalShop.shop_id != shop_id)
    ids = list(
        session.scalars(
            select(Principal.id)
            .where(Principal.id.in_(linked), Principal.id.not_in(elsewhere))
            .where(Principal.disabled_at.is_(None))
            .order_by(Principal.id)
        )
    )
    if ids:
        session.execute(update(Principal).where(Principal.id.in_(ids)).values(disabled_at=now))
        for principal_id in ids:
            websessions.end_all(session, principal_id, now)
    return ids


def consumer(session: Session, consumer_id: uuid.UUID) -> ConsumerOut:
    principal = session.get(Principal, consumer_id)
    if principal is None or principal.role != Role.consumer:
        raise NotFound()
    return ConsumerOut(id=principal.id, name=principal.name, description=principal.description)
