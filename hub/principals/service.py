from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit import service as audit
from cornerstore.errors import FieldError, ValidationFailed
from cornerstore.identity import Caller, hash_api_key, new_api_key
from cornerstore.models.principals import Principal, PrincipalShop, Role
from cornerstore.models.shops import Shop
from cornerstore.ports import AuditDraft
from hub.principals.schemas import PrincipalCreated, PrincipalIn


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
        api_key_hash=hash_api_key(api_key),
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
