"""Who calls the hub: an API key in ``Authorization: Bearer`` becomes a checked :class:`Caller`."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from cornerstore.errors import Unauthenticated
from cornerstore.models.principals import Principal, PrincipalShop, Role

_KEY_PREFIX = "cs_"


@dataclass(frozen=True, slots=True)
class Caller:
    """The verified identity of a request. Everything the hub decides starts here."""

    id: uuid.UUID
    name: str
    role: str
    shop_ids: frozenset[uuid.UUID]


def new_api_key() -> str:
    return _KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(api_key: str) -> bytes:
    return hashlib.sha256(api_key.encode()).digest()


#: Built once: every request runs these, and building them cost more than running them.
_BY_KEY_HASH = select(Principal.id, Principal.name, Principal.role, Principal.disabled_at).where(
    Principal.api_key_hash == bindparam("key_hash")
)
_SHOPS_OF = select(PrincipalShop.shop_id).where(PrincipalShop.principal_id == bindparam("id"))
_SHOP_SCOPED_ROLES = frozenset({Role.shopkeeper, Role.connector})


def caller_from_api_key(session: Session, api_key: str | None) -> Caller:
    if not api_key or not api_key.startswith(_KEY_PREFIX):
        raise Unauthenticated()
    row = session.execute(_BY_KEY_HASH, {"key_hash": hash_api_key(api_key)}).first()
    if row is None or row.disabled_at is not None:
        raise Unauthenticated()
    shop_ids = (
        frozenset(session.scalars(_SHOPS_OF, {"id": row.id}))
        if row.role in _SHOP_SCOPED_ROLES
        else frozenset()
    )
    return Caller(id=row.id, name=row.name, role=row.role, shop_ids=shop_ids)


def names_of(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Principals' names by id, for answers that show people who did what."""
    if not ids:
        return {}
    rows = session.execute(select(Principal.id, Principal.name).where(Principal.id.in_(ids)))
    return {principal_id: name for principal_id, name in rows}
