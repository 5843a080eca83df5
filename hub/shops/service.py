from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from audit import service as audit
from cornerstore.identity import Caller
from cornerstore.keys.ring import KeyRing
from cornerstore.models.shops import Shop
from cornerstore.ports import AuditDraft
from hub.shops.schemas import ShopChange, ShopIn, ShopOut


def create(
    session: Session,
    keyring: KeyRing,
    body: ShopIn,
    *,
    by: Caller | None = None,
    policy_version: str | None = None,
) -> ShopOut:
    """A shop and its first data key are created together, so a shop never lacks a key."""
    shop = Shop(
        id=uuid.uuid4(),
        name=body.name,
        district=body.district,
        time_zone=body.time_zone,
        pos_profile=body.pos_profile,
    )
    session.add(shop)
    session.flush()
    keyring.create_first_key(session, shop.id)
    session.flush()
    audit.append(
        session,
        AuditDraft.of(by, "shop.create", "created", shop_id=shop.id, policy_version=policy_version),
    )
    return ShopOut.model_validate(shop)


def get(session: Session, shop_id: uuid.UUID) -> ShopOut | None:
    shop = session.get(Shop, shop_id)
    return ShopOut.model_validate(shop) if shop else None


def change(
    session: Session,
    shop_id: uuid.UUID,
    body: ShopChange,
    *,
    by: Caller,
    policy_version: str,
) -> ShopOut | None:
    """Change the shop's own details; the log names what changed, not to what."""
    shop = session.get(Shop, shop_id)
    if shop is None:
        return None
    for name in body.model_fields_set:
        setattr(shop, name, getattr(body, name))
    session.flush()
    audit.append(
        session,
        AuditDraft.of(
            by,
            "shop.write",
            "changed",
            shop_id=shop_id,
            policy_version=policy_version,
            details={"changed": sorted(body.model_fields_set)},
        ),
    )
    return ShopOut.model_validate(shop)
