"""Erasure by crypto-shredding: delete the shop's rows, then destroy its key-encryption key.

Deleting rows alone would leave the shop's values in every database backup,
readable with the master key. Destroying the shop's key-encryption key (held
by the key provider, never in the database) makes every copy of its data
keys, and so every copy of its values, unreadable for good.

The two steps cannot share one transaction, so they run in this order:

1. one database transaction deletes the rows, writes a :class:`ShopErasure`
   row and the audit entry (which names the consents it ended, never a value);
2. after it commits, the key provider destroys the key, and the erasure row
   records when. An erasure whose second step failed is finished by
   :func:`finish_pending`, which the hub runs at start.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from audit import service as audit
from consent import webhooks
from consent.terms import iso
from cornerstore.db import utcnow
from cornerstore.identity import Caller
from cornerstore.keys.ring import KeyRing
from cornerstore.models.consent import Consent, ConsentStatus
from cornerstore.models.keys import ShopKey
from cornerstore.models.principals import PrincipalShop
from cornerstore.models.shops import Shop, ShopErasure
from cornerstore.ports import AuditDraft
from cornerstore.records import repository
from hub.principals import service as principals

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErasedRows:
    consents_ended: list[uuid.UUID]
    records_deleted: dict[str, int] = field(default_factory=dict)
    quarantined_deleted: int = 0


def delete_rows(
    session: Session, shop_id: uuid.UUID, *, by: Caller, policy_version: str
) -> ErasedRows | None:
    """Step 1, in the caller's transaction (flushed, not committed). None if no such shop."""
    if session.get(Shop, shop_id, with_for_update=True) is None:
        return None
    # Granted consents end with the shop (paused ones too); their consumers are told.
    granted = session.execute(
        select(Consent.id, Consent.consumer_id, Consent.version)
        .where(
            Consent.shop_id == shop_id,
            Consent.status.in_([ConsentStatus.active, ConsentStatus.paused]),
        )
        .order_by(Consent.granted_at, Consent.id)
    ).all()
    ended = [row.id for row in granted]
    now = utcnow()
    for row in granted:
        webhooks.enqueue(
            session,
            row.consumer_id,
            webhooks.STATUS_EVENT,
            {
                "consent_id": str(row.id),
                "shop_id": str(shop_id),
                # The version the consent would have had: the shop, and its
                # consents' history, are gone with the erasure.
                "version": row.version + 1,
                "status": ConsentStatus.revoked.value,
                "change": "erased",
                "changed_at": iso(now),
            },
            now=now,
        )
    # Its keeper's and connectors' keys stop working with it, unless they act for another shop.
    disabled = principals.disable_those_only_of(session, shop_id, now)
    counts, quarantined = repository.delete_shop(session, shop_id)
    for table in (Consent, ShopKey):
        session.execute(delete(table).where(table.shop_id == shop_id))
    session.execute(delete(PrincipalShop).where(PrincipalShop.shop_id == shop_id))
    session.execute(delete(Shop).where(Shop.id == shop_id))
    session.add(ShopErasure(shop_id=shop_id, requested_by=by.id))
    erased = ErasedRows(ended, counts, quarantined)
    audit.append(
        session,
        AuditDraft.of(
            by,
            "shop.erase",
            "erased",
            shop_id=shop_id,
            policy_version=policy_version,
            details={
                "consents_ended": [str(c) for c in ended],
                "principals_disabled": [str(p) for p in disabled],
                "records_deleted": counts,
                "quarantined_deleted": erased.quarantined_deleted,
            },
        ),
    )
    session.flush()
    return erased


def erase(
    session: Session,
    sessions: sessionmaker[Session],
    keyring: KeyRing,
    shop_id: uuid.UUID,
    *,
    by: Caller,
    policy_version: str,
) -> tuple[ErasedRows, bool] | None:
    """Both steps: delete and commit, then destroy the keys. None if no such shop.

    The deletion must be durable before the key goes, so this commits the
    caller's session; the second of the pair says whether the keys are gone.
    """
    erased = delete_rows(session, shop_id, by=by, policy_version=policy_version)
    if erased is None:
        return None
    session.commit()
    return erased, destroy_keys(sessions, keyring, shop_id)


def destroy_keys(sessions: sessionmaker[Session], keyring: KeyRing, shop_id: uuid.UUID) -> bool:
    """Step 2, after step 1 committed. True once the shop's key-encryption key is gone."""
    try:
        keyring.provider.destroy_shop_key(shop_id)
    except Exception as exc:
        _log.error("could not destroy the key of erased shop %s: %s", shop_id, type(exc).__name__)
        return False
    finally:
        keyring.forget(shop_id)
    with sessions() as session:
        session.execute(
            update(ShopErasure)
            .where(ShopErasure.shop_id == shop_id)
            .values(keys_destroyed_at=utcnow())
        )
        session.commit()
    return True


def finish_pending(sessions: sessionmaker[Session], keyring: KeyRing) -> list[uuid.UUID]:
    """Destroy the keys of erasures whose second step did not complete; return those left."""
    with sessions() as session:
        pending = list(
            session.scalars(
                select(ShopErasure.shop_id).where(ShopErasure.keys_destroyed_at.is_(None))
            )
        )
    return [shop_id for shop_id in pending if not destroy_keys(sessions, keyring, shop_id)]
