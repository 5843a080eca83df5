"""The recorded versions of consents: their history, and each version's signed receipt."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from consent.schemas import ConsentVersionOut
from cornerstore.errors import NotFound
from cornerstore.identity import Caller
from cornerstore.models.consent import Consent, ConsentVersion


def history(
    session: Session, *, shop_id: uuid.UUID | None, page: int = 1000
) -> Iterator[ConsentVersionOut]:
    """Versions in the order they happened, for one shop or every shop, a page at a time."""
    order = (ConsentVersion.changed_at, ConsentVersion.consent_id, ConsentVersion.version)
    after: tuple[datetime, uuid.UUID, int] | None = None
    while True:
        stmt = select(ConsentVersion)
        if shop_id is not None:
            stmt = stmt.where(ConsentVersion.shop_id == shop_id)
        if after is not None:
            stmt = stmt.where(tuple_(*order) > tuple_(*after))
        rows = session.scalars(stmt.order_by(*order).limit(page)).all()
        for row in rows:
            yield ConsentVersionOut(
                consent_id=row.consent_id,
                version=row.version,
                status=row.status,
                change=row.change,
                changed_by=row.changed_by,
                changed_by_role=row.changed_by_role,
                changed_at=row.changed_at,
                artefact=row.artefact,
                receipt=row.receipt,
            )
        if len(rows) < page:
            return
        last = rows[-1]
        after = (last.changed_at, last.consent_id, last.version)
        session.expunge_all()


def receipt(
    session: Session,
    caller: Caller,
    shop_id: uuid.UUID,
    consent_id: uuid.UUID,
    version: int | None,
) -> str:
    """A version's receipt (the newest by default), for the shop's keeper or its consumer."""
    consent = session.scalar(
        select(Consent).where(Consent.id == consent_id, Consent.shop_id == shop_id)
    )
    if consent is None or (shop_id not in caller.shop_ids and consent.consumer_id != caller.id):
        raise NotFound()
    row = session.scalar(
        select(ConsentVersion.receipt).where(
            ConsentVersion.consent_id == consent_id,
            ConsentVersion.version == (version if version is not None else consent.version),
        )
    )
    if row is None:
        raise NotFound("no receipt for that version")
    return row
