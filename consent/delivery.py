"""Delivering webhook events: claim a due event, POST it, record how it went; retry with backoff.

A deliverer thread runs in every API process and calls :func:`deliver_due`
twice a second. Each delivery takes three steps, and no database transaction
is open while the hub waits on a consumer's server:

1. Claim, in one short transaction: a single ``UPDATE ... WHERE id = (SELECT
   ... FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING`` counts the attempt and
   leases the row, moving its ``next_attempt_at`` past the longest a send can
   take. Processes racing for due events each get a different one
   (PostgreSQL skips rows another process has locked; SQLite runs one writer
   at a time), and nobody picks a leased row up while it is being sent.
2. Send: POST the signed body, with no transaction open.
3. Record, in a second short transaction: delivered on a 2xx; otherwise the
   status or the error's type name (never a response body), and the next
   attempt after ``backoff * 2**(attempts - 1)`` seconds, or failed after the
   last attempt. The record applies only if the row is still the attempt
   this process claimed.

If a process dies between claiming and recording, the lease runs out and the
event is sent again: delivery is at least once, which is why receivers keep
the event ids they have seen (see :mod:`consent.webhooks`).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session, sessionmaker

import cornerstore
from consent import pinned_http, webhooks
from cornerstore.db import session_scope, utcnow
from cornerstore.models.consent import ConsumerWebhook, WebhookDelivery
from cornerstore.poller import Poller
from cornerstore.settings import Settings

_log = logging.getLogger(__name__)

#: How often the deliverer thread looks for due events.
INTERVAL_SECONDS = 0.5
#: The most events one :func:`deliver_due` call attempts, so a backlog is worked in rounds.
BATCH_LIMIT = 100
#: Retries stop doubling here, so a long run of attempts never waits for days.
MAX_DELAY = timedelta(hours=6)
#: Each delay is stretched by up to this fraction, so retries of many events spread out.
JITTER = 0.1
#: The longest error text the delivery log keeps (its column's size).
_ERROR_LENGTH = 200
_USER_AGENT = f"Cornerstore-Webhooks/{cornerstore.__version__}"


def lease_for(settings: Settings) -> timedelta:
    """How long a claimed event is left alone: longer than any send can take.

    The timeout bounds each connect and each read, not the whole exchange,
    so the lease allows several of them and a margin.
    """
    return timedelta(seconds=60 + 4 * settings.webhook_timeout_seconds)


def retry_delay(settings: Settings, attempts: int) -> timedelta:
    """The wait before the next attempt, after ``attempts`` attempts failed."""
    base = settings.webhook_backoff_seconds * 2 ** min(attempts - 1, 40)
    delay = timedelta(seconds=min(base, MAX_DELAY.total_seconds()))
    # Jitter spreads retries; it is no secret, so the plain generator will do.
    return delay * random.uniform(1.0, 1.0 + JITTER)  # noqa: S311


@dataclass(frozen=True, slots=True)
class _Claim:
    """One attempt this process has claimed, and where to send it (None: nowhere any more)."""

    id: uuid.UUID
    attempts: int
    payload: dict[str, Any]
    url: str | None
    secret: bytes | None


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _claim(
    sessions: sessionmaker[Session], key: bytes, now: datetime, lease: timedelta
) -> _Claim | None:
    due = (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.state == webhooks.PENDING, WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    claim = (
        update(WebhookDelivery)
        .where(WebhookDelivery.id == due)
        .values(
            attempts=WebhookDelivery.attempts + 1,
            last_attempt_at=now,
            next_attempt_at=now + lease,
        )
        .returning(
            WebhookDelivery.id,
            WebhookDelivery.consumer_id,
            WebhookDelivery.attempts,
            WebhookDelivery.payload,
        )
        .execution_options(synchronize_session=False)
    )
    with session_scope(sessions) as session:
        row = session.execute(claim).first()
        if row is None:
            return None
        webhook = session.get(ConsumerWebhook, row.consumer_id)
        return _Claim(
            id=row.id,
            attempts=row.attempts,
            payload=row.payload,
            url=webhook.url if webhook else None,
            secret=webhooks.secret_of(key, webhook) if webhook else None,
        )


def _send(
    claim: _Claim, url: str, address: str, secret: bytes, now: datetime, timeout: float
) -> _Outcome:
    # The URL was checked when it was registered; check the scheme again in
    # case the row was edited since.
    if urlsplit(url).scheme not in ("http", "https"):
        return _Outcome(None, "UnsupportedScheme")
    body = json.dumps(claim.payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": _USER_AGENT,
        **webhooks.standard_headers(secret, str(claim.id), int(now.timestamp()), body),
        webhooks.EVENT_ID_HEADER: str(claim.id),
        webhooks.SIGNATURE_HEADER: webhooks.sign(secret, int(now.timestamp()), body),
    }
    try:
        # A redirect is an answer like any other non-2xx: never followed.
        return _Outcome(pinned_http.post(url, address, body, headers, timeout), None)
    except Exception as exc:
        return _Outcome(None, type(exc).__name__[:_ERROR_LENGTH])


def _record(
    sessions: sessionmaker[Session],
    settings: Settings,
    claim: _Claim,
    outcome: _Outcome,
    now: datetime,
    *,
    give_up: bool = False,
) -> None:
    values: dict[str, Any] = {"last_status": outcome.status, "last_error": outcome.error}
    if outcome.delivered:
        values.update(state=webhooks.DELIVERED, delivered_at=now, next_attempt_at=now)
    elif give_up or claim.attempts >= settings.webhook_max_attempts:
        values.update(state=webhooks.FAILED, next_attempt_at=now)
    else:
        values.update(next_attempt_at=now + retry_delay(settings, claim.attempts))
    with session_scope(sessions) as session:
        result = session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == claim.id,
                WebhookDelivery.state == webhooks.PENDING,
                WebhookDelivery.attempts == claim.attempts,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        recorded = isinstance(result, CursorResult) and result.rowcount == 1
    if not recorded:
        # The lease ran out mid-send and another process took the event over.
        _log.warning("webhook delivery %s: attempt %d outlived its lease", claim.id, claim.attempts)


class _Clock:
    """The time a call started at, running on with the real clock from there.

    A round can last long (each send may take its timeout), and every claim,
    signature and record must be stamped with the time it really happens: a
    lease or a signature timestamp taken from the round's start could already
    be stale.
    """

    def __init__(self, start: datetime) -> None:
        self._start = start
        self._started = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._started)


def deliver_due(
    session_factory: sessionmaker[Session],
    settings: Settings,
    now: datetime | None = None,
    *,
    limit: int = BATCH_LIMIT,
    stopping: threading.Event | None = None,
) -> int:
    """Attempt the events that are due (at most ``limit``); return how many were sent.

    ``now`` is the time the call starts at (the clock by default; tests pass a
    later one to make retries due without waiting), and it runs on with the
    real clock while the call lasts.
    """
    clock = _Clock(now or utcnow())
    key = webhooks.load_key(settings.webhook_key_path)
    lease = lease_for(settings)
    timeout = settings.webhook_timeout_seconds
    private_hosts = frozenset(settings.webhook_private_hosts)
    attempted = 0
    for _ in range(limit):
        if stopping is not None and stopping.is_set():
            break
        claim = _claim(session_factory, key, clock.now(), lease)
        if claim is None:
            break
        if claim.url is None or claim.secret is None:
            # The consumer's webhook is gone: there is nowhere to send it, now or later.
            outcome = _Outcome(None, "NoWebhook")
            _record(session_factory, settings, claim, outcome, clock.now(), give_up=True)
            continue
        if claim.attempts > settings.webhook_max_attempts:
            # The last attempt was interrupted before its outcome was recorded.
            outcome = _Outcome(None, "Interrupted")
            _record(session_factory, settings, claim, outcome, clock.now())
            continue
        host = urlsplit(claim.url).hostname or ""
        address = webhooks.delivery_address(host, private_hosts)
        if address is None:
            outcome = _Outcome(None, "PrivateAddress")
        else:
            outcome = _send(claim, claim.url, address, claim.secret, clock.now(), timeout)
        attempted += 1
        _record(session_factory, settings, claim, outcome, clock.now())
        _log.info(
            "webhook delivery %s attempt %d: %s",
            claim.id,
            claim.attempts,
            "delivered" if outcome.delivered else (outcome.status or outcome.error),
        )
    return attempted


def deliverer(sessions: sessionmaker[Session], settings: Settings) -> Poller:
    """Delivers due webhook events every :data:`INTERVAL_SECONDS`, in the background.

    Stopping waits for the send in progress, if any; one whose outcome was not
    recorded is sent again once its lease runs out.
    """
    return Poller(
        "webhook-deliverer",
        lambda stopping: deliver_due(sessions, settings, stopping=stopping),
        interval=INTERVAL_SECONDS,
        join_timeout=10 + 2 * settings.webhook_timeout_seconds,
    )
