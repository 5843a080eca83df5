"""Authentication: an API key in ``Authorization: Bearer`` becomes a checked :class:`Caller`."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cornerstore.errors import Unauthenticated
from cornerstore.principals.models import Principal

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


def caller_from_api_key(session: Session, api_key: str | None) -> Caller:
    if not api_key or not api_key.startswith(_KEY_PREFIX):
        raise Unauthenticated()
    principal = session.scalar(
        select(Principal).where(Principal.api_key_hash == hash_api_key(api_key))
    )
    if principal is None or principal.disabled_at is not None:
        raise Unauthenticated()
    return Caller(
        id=principal.id,
        name=principal.name,
        role=principal.role,
        shop_ids=frozenset(link.shop_id for link in principal.shop_links),
    )
