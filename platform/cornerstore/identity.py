"""Who calls the hub: an API key in ``Authorization: Bearer`` becomes a checked :class:`Caller`."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from cornerstore.db import utcnow
from cornerstore.errors import Unauthenticated
from cornerstore.models.principals import (
    Principal,
    PrincipalKey,
    PrincipalShop,
    Role,
    SigningKey,
)

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
_BY_KEY_HASH = (
    select(
        Principal.id, Principal.name, Principal.role, Principal.disabled_at, PrincipalKey.expires_at
    )
    .join(PrincipalKey, PrincipalKey.principal_id == Principal.id)
    .where(PrincipalKey.key_hash == bindparam("key_hash"))
)
_SHOPS_OF = select(PrincipalShop.shop_id).where(PrincipalShop.principal_id == bindparam("id"))
_SHOP_SCOPED_ROLES = frozenset({Role.shopkeeper, Role.connector})


def caller_from_api_key(session: Session, api_key: str | None) -> Caller:
    if not api_key or not api_key.startswith(_KEY_PREFIX):
        raise Unauthenticated()
    row = session.execute(_BY_KEY_HASH, {"key_hash": hash_api_key(api_key)}).first()
    if row is None or row.disabled_at is not None:
        raise Unauthenticated()
    # Nothing is cached: a key that expires or a principal disabled in any
    # worker is refused by every worker from that instant.
    if row.expires_at is not None and row.expires_at <= utcnow():
        raise Unauthenticated()
    return _caller(session, row.id, row.name, row.role)


_BY_SIGNING_KEY = (
    select(
        Principal.id, Principal.name, Principal.role, Principal.disabled_at, SigningKey.public_key
    )
    .join(SigningKey, SigningKey.principal_id == Principal.id)
    .where(SigningKey.key_id == bindparam("key_id"), SigningKey.revoked_at.is_(None))
)


def signing_key_id(public_key: bytes) -> str:
    """The name a message gives the key it was signed with."""
    return "sk_" + hashlib.sha256(public_key).digest()[:16].hex()


def caller_from_signature(session: Session, key_id: str, signed: bytes, signature: bytes) -> Caller:
    """The principal whose registered Ed25519 key made ``signature`` over ``signed``.

    As with API keys nothing is cached: a key revoked, or a principal
    disabled, stops verifying at once, even for messages signed before.
    """
    row = session.execute(_BY_SIGNING_KEY, {"key_id": key_id}).first()
    if row is None or row.disabled_at is not None:
        raise Unauthenticated()
    try:
        Ed25519PublicKey.from_public_bytes(row.public_key).verify(signature, signed)
    except InvalidSignature:
        raise Unauthenticated() from None
    return _caller(session, row.id, row.name, row.role)


def caller_of(session: Session, principal: Principal) -> Caller:
    """The caller a principal is, once something else (a web session) has vouched for it."""
    return _caller(session, principal.id, principal.name, principal.role)


def _caller(session: Session, principal_id: uuid.UUID, name: str, role: str) -> Caller:
    shop_ids = (
        frozenset(session.scalars(_SHOPS_OF, {"id": principal_id}))
        if role in _SHOP_SCOPED_ROLES
        else frozenset()
    )
    return Caller(id=principal_id, name=name, role=role, shop_ids=shop_ids)


def names_of(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Principals' names by id, for answers that show people who did what."""
    if not ids:
        return {}
    rows = session.execute(select(Principal.id, Principal.name).where(Principal.id.in_(ids)))
    return {principal_id: name for principal_id, name in rows}


def keeps_principal(session: Session, caller: Caller, principal_id: uuid.UUID) -> bool:
    """Whether ``principal_id`` is the caller, or a connector of a shop the caller keeps.

    A shopkeeper answers for their own key and their shop's connectors' keys.
    """
    if principal_id == caller.id:
        return True
    if caller.role != Role.shopkeeper or not caller.shop_ids:
        return False
    connector = session.execute(
        select(Principal.id)
        .join(PrincipalShop, PrincipalShop.principal_id == Principal.id)
        .where(
            Principal.id == principal_id,
            Principal.role == Role.connector,
            PrincipalShop.shop_id.in_(caller.shop_ids),
        )
    ).first()
    return connector is not None
