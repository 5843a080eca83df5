"""Recording expiries: a consent past its validity gets a version, a receipt and an event.

Expiry itself needs no job: the gate compares ``expires_at`` with the time on
every read and refuses from that instant, whether or not this has run. This
only writes the change down, so the consumer is told through its webhook and
the shop's history shows when each consent lapsed. Several processes may run
it at once: each consent is changed by compare-and-set, and a loser moves on.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import datetime

from opentelemetry.instrumentation.utils import suppress_instrumentation
from sqlalchemy import select

from consent import service
from consent.models import Consent, ConsentStatus
from cornerstore.db import utcnow
from cornerstore.errors import Conflict
from cornerstore.hub import Hub
from cornerstore.principals.auth import Caller

_log = logging.getLogger(__name__)

#: Who the versions say made the change: the hub itself, not a person.
HUB = Caller(uuid.UUID(int=0), "hub", "hub", frozenset())


def record_expiries(hub: Hub, *, now: datetime | None = None, limit: int = 500) -> int:
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
            ctx = service.context(hub, HUB, hub.authorizer.policy_version)
            try:
                service.record_expiry(session, ctx, shop_id, consent_id, now=now)
                session.commit()
                recorded += 1
            except Conflict:
                session.rollback()  # Changed meanwhile (revoked, or recorded by another process).
    return recorded


class ExpiryRecorder:
    """Records lapsed consents every ``interval`` seconds, in the background."""

    def __init__(self, hub: Hub, *, interval: float) -> None:
        self._hub = hub
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="expiry-recorder", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                # A poll of its own would bury requests' traces in root spans.
                with suppress_instrumentation():
                    record_expiries(self._hub)
            except Exception as exc:
                _log.error("recording consent expiries failed: %s", type(exc).__name__)
