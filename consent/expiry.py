"""Recording expiries: a consent past its validity gets a version, a receipt and an event.

Expiry itself needs no job: the gate compares ``expires_at`` with the time on
every read and refuses from that instant, whether or not this has run. This
only writes the change down, so the consumer is told through its webhook and
the shop's history shows when each consent lapsed. Several processes may run
it at once: each consent is changed by compare-and-set, and a loser moves on.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select

from consent import service
from consent.deps import ConsentCore
from cornerstore.db import utcnow
from cornerstore.errors import Conflict
from cornerstore.identity import Caller
from cornerstore.models.consent import Consent, ConsentStatus
from cornerstore.poller import Poller

#: Who the versions say made the change: the hub itself, not a person.
HUB = Caller(uuid.UUID(int=0), "hub", "hub", frozenset())


def record_expiries(hub: ConsentCore, *, now: datetime | None = None, limit: int = 500) -> int:
    """Record every consent that lapsed by ``now`` (up to ``limit``); return how many."""
    now = now or utcnow()
    with hub.sessions() as session:
        due = session.execute(
            select(Consent.id, Consent.shop_id)
            .where(
                Consent.status.in_([ConsentStatus.active, ConsentStatus.paused]),
                Consent.expires_at <= now,
            )
            .order_by(Consent.expires_at, Consent.id)
            .limit(limit)
        ).all()
    recorded = 0
    for consent_id, shop_id in due:
        with hub.sessions() as session:
            ctx = service.context(hub, HUB, hub.authorizer.policy_version, now)
            try:
                service.record_expiry(session, ctx, shop_id, consent_id)
                session.commit()
                recorded += 1
            except Conflict:
                session.rollback()  # Changed meanwhile (revoked, or recorded by another process).
    return recorded


def expiry_recorder(hub: ConsentCore, *, interval: float) -> Poller:
    """Records lapsed consents every ``interval`` seconds, in the background."""
    return Poller("expiry-recorder", lambda _stopping: record_expiries(hub), interval=interval)
