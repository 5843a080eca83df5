from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from cornerstore.shops.keys import KeyRing
from cornerstore.shops.models import Shop
from cornerstore.shops.schemas import ShopIn, ShopOut


def create(session: Session, keyring: KeyRing, body: ShopIn) -> ShopOut:
    """A shop and its first data key are created together, so a shop never lacks a key."""
    shop = Shop(id=uuid.uuid4(), name=body.name, district=body.district)
    session.add(shop)
    session.flush()
    keyring.create_first_key(session, shop.id)
    session.flush()
    return ShopOut.model_validate(shop)
