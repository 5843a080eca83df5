"""Who calls the hub: an API key in ``Authorization: Bearer`` becomes a checked :class:`Caller`."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Collection
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


def signing_key_id(public_key: bytes) -> str:
    """The name a message gives the key it was signed with."""
    return "sk_" + hashlib.sha256(public_key).digest()[:16].hex()


@dataclass(frozen=True, slots=True)
class Signer:
    """A principal's registered signing key, as found for the messages at hand."""

    caller: Caller
    public_key: Ed25519PublicKey

    def verify(self, signed: bytes, signature: bytes) -> Caller:
        """The caller, if it made ``signature`` over ``signed``; else 401."""
        try:
            self.public_key.verify(signature, signed)
        except InvalidSignature:
            raise Unauthenticated() from None
        return self.caller


def signers(session: Session, key_ids: Collection[str]) -> dict[str, Signer]:
    """The live signing keys among ``key_ids``, each with its principal, in two queries.

    As with API keys nothing is cached between calls: a key revoked, or a
    principal disabled, stops verifying from the next call, even for messages
    signed before. Unknown, revoked and disabled keys are simply absent.
    """
    if not key_ids:
        return {}
    rows = session.execute(
        select(
            SigningKey.key_id, SigningKey.public_key, Principal.id, Principal.name, Principal.role
        )
        .join(Principal, SigningKey.principal_id == Principal.id)
        .where(
            SigningKey.key_id.in_(set(key_ids)),
            SigningKey.revoked_at.is_(None),
            Principal.disabled_at.is_(None),
        )
    ).all()
    shops: dict[uuid.UUID, set[uuid.UUID]] = {}
    for principal_id, shop_id in session.execute(
        select(PrincipalShop.principal_id, PrincipalShop.shop_id).where(
            PrincipalShop.principal_id.in_({row.id for row in rows})
        )
    ):
        shops.setdefault(principal_id, set()).add(shop_id)
    return {
        row.key_id: Signer(
            Caller(
                id=row.id,
                name=row.name,
                role=row.role,
                shop_ids=frozenset(shops.get(row.id, ()))
                if row.role in _SHOP_SCOPED_ROLES
                else frozenset(),
            ),
            Ed25519PublicKey.from_public_bytes(row.public_key),
        )
        for row in rows
    }


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
