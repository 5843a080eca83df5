"""What the gate asks of consent on every read: may this consumer read this, now, and which window?

Nothing is cached: every read asks the database, so a revocation or a pause
is enforced by every worker from the instant it commits, and no policy is
ever reloaded. The checks, in order: status, validity, category, access mode,
data range, frequency. Using a consent is counted in one guarded statement
that re-checks status and validity, so a change that commits between the
check and the count still stops the read.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, String, Uuid, bindparam, case, or_, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from cornerstore.db import UTCDateTime, make_engine
from cornerstore.models.consent import AccessMode, Consent, ConsentStatus
from cornerstore.ports import Allowance, ConsentRefused

#: Reasons a read is refused, as the audit log records them (checked in this order).
REASONS = (
    "no_consent",
    "consent_not_active",
    "consent_not_valid_now",
    "category_not_consented",
    "aggregate_only",
    "outside_data_range",
    "frequency_limit",
)


#: Built once: the gate runs this on every governed read.
_CANDIDATES = select(
    Consent.id,
    Consent.status,
    Consent.valid_from,
    Consent.expires_at,
    Consent.categories,
    Consent.access_mode,
    Consent.range_from,
    Consent.range_until,
    Consent.range_last_days,
    Consent.max_reads_per_day,
    Consent.use_day,
    Consent.day_uses,
).where(
    # Typed here: a foreign key column's type is only known once the table it
    # points to is loaded, which need not have happened when this is built.
    Consent.shop_id == bindparam("shop_id", type_=Uuid()),
    Consent.consumer_id == bindparam("consumer_id", type_=Uuid()),
    Consent.purpose == bindparam("purpose"),
)
# The oldest consent that allows a read is the one it is counted against.
_CANDIDATES = _CANDIDATES.order_by(Consent.created_at, Consent.id)


def _window(row: Any, now: datetime) -> tuple[datetime | None, datetime | None]:
    if row.range_last_days is not None:
        return now - timedelta(days=row.range_last_days), None
    return row.range_from, row.range_until


def _clip(
    window: tuple[datetime | None, datetime | None],
    since: datetime | None,
    until: datetime | None,
) -> tuple[datetime | None, datetime | None] | None:
    """The part of [since, until) inside the consent's window; None when they do not meet."""
    low, high = window
    start = max((t for t in (since, low) if t is not None), default=None)
    end = min((t for t in (until, high) if t is not None), default=None)
    if start is not None and end is not None and end <= start:
        return None
    return start, end


def _day(now: datetime) -> str:
    return now.strftime("%Y-%m-%d")


def check(
    session: Session,
    *,
    shop_id: uuid.UUID,
    consumer_id: uuid.UUID,
    purpose: str,
    category: str,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
) -> Allowance:
    """The consent that allows this read now; else :class:`ConsentRefused`, the furthest reason."""
    rows = session.execute(
        _CANDIDATES, {"shop_id": shop_id, "consumer_id": consumer_id, "purpose": purpose}
    ).all()
    furthest = 0
    day = _day(now)
    for row in rows:
        if row.status != ConsentStatus.active:
            # A lapse the hub has recorded reads the same as one it has not yet.
            furthest = max(furthest, 2 if row.status == ConsentStatus.expired else 1)
            continue
        if not row.valid_from <= now < row.expires_at:
            furthest = max(furthest, 2)
            continue
        if category not in row.categories:
            furthest = max(furthest, 3)
            continue
        if row.access_mode != AccessMode.rows:
            furthest = max(furthest, 4)
            continue
        window = _clip(_window(row, now), since, until)
        if window is None:
            furthest = max(furthest, 5)
            continue
        limit = row.max_reads_per_day
        # A worker whose clock is behind counts into the later day it finds.
        spent = row.day_uses if row.use_day is not None and row.use_day >= day else 0
        if limit is not None and spent >= limit:
            furthest = max(furthest, 6)
            continue
        return Allowance(row.id, window[0], window[1], limit)
    raise ConsentRefused(REASONS[furthest])


@dataclass(frozen=True, slots=True)
class AggregateAllowance:
    """A shop whose consent lets its data feed an aggregate now, and the data window it allows."""

    shop_id: uuid.UUID
    consent_id: uuid.UUID
    since: datetime | None
    until: datetime | None


def aggregate_allowances(
    session: Session,
    *,
    consumer_id: uuid.UUID,
    purpose: str,
    category: str,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
) -> list[AggregateAllowance]:
    """Every shop whose consent lets this consumer add ``category`` into aggregates, now.

    The same checks as a read's, in either access mode: active, valid now,
    the category consented, and the consent's data range clipped to
    [since, until). Read from the database at each call, so a revocation
    or a pause leaves the next aggregate in every worker. Aggregates are
    governed by the privacy budget, not by a consent's reads a day.
    """
    rows = session.execute(
        select(
            Consent.shop_id,
            Consent.id,
            Consent.categories,
            Consent.range_from,
            Consent.range_until,
            Consent.range_last_days,
        )
        .where(
            Consent.consumer_id == consumer_id,
            Consent.purpose == purpose,
            Consent.status == ConsentStatus.active,
            Consent.valid_from <= now,
            Consent.expires_at > now,
        )
        .order_by(Consent.shop_id, Consent.created_at)
    ).all()
    allowed: dict[uuid.UUID, AggregateAllowance] = {}
    for row in rows:
        if category not in row.categories or row.shop_id in allowed:
            continue
        window = _clip(_window(row, now), since, until)
        if window is not None:
            allowed[row.shop_id] = AggregateAllowance(row.shop_id, row.id, *window)
    return list(allowed.values())


def _use_statement() -> Any:
    at = bindparam("now", type_=UTCDateTime)
    day = bindparam("day", type_=String())
    return (
        update(Consent)
        .where(
            Consent.id == bindparam("consent_id", type_=Uuid()),
            Consent.status == ConsentStatus.active,
            Consent.valid_from <= at,
            Consent.expires_at > at,
            or_(
                Consent.max_reads_per_day.is_(None),
                Consent.use_day.is_(None),
                Consent.use_day < day,
                Consent.day_uses < Consent.max_reads_per_day,
            ),
        )
        .values(
            uses=Consent.uses + 1,
            last_used_at=at,
            # Days only move forward: a worker with a clock behind the others'
            # counts into the later day rather than starting the count again.
            day_uses=case(
                (or_(Consent.use_day.is_(None), Consent.use_day < day), 1),
                else_=Consent.day_uses + 1,
            ),
            use_day=case(
                (or_(Consent.use_day.is_(None), Consent.use_day < day), day),
                else_=Consent.use_day,
            ),
        )
        .execution_options(synchronize_session=False)
    )


_USE = _use_statement()


class ConsentEnforcer:
    """The gate's consent step (:class:`cornerstore.ports.ConsentCheck`).

    It counts uses of consents, one statement a read, on connections of its own.

    The count commits on its own so that concurrent reads under one consent
    never wait on each other's requests, and it is a single autocommitted
    statement: a transaction of its own on the request's pool cost five
    round trips. On PostgreSQL these connections commit without waiting for
    the disk (``synchronous_commit=off``): a crash of the database may lose
    the counts of its last moments, so a consumer could read a few times more
    that day than its limit allows. Every one of those reads is still in the
    audit log, which is durable before any answer leaves.
    """

    def __init__(self, url: str) -> None:
        postgres = make_url(url).get_backend_name() == "postgresql"
        extra: dict[str, Any] = (
            {
                "connect_args": {"options": "-c synchronous_commit=off"},
                # A dead connection fails its statement and is replaced; the
                # read is retried once below rather than pinging every time.
                "pool_pre_ping": False,
                "pool_size": 5,
            }
            if postgres
            else {}
        )
        # Autocommit for the engine's life, and nothing to reset when a
        # connection goes back to the pool: no round trip but the statement's.
        self._engine = make_engine(
            url, isolation_level="AUTOCOMMIT", pool_reset_on_return=None, **extra
        )

    def close(self) -> None:
        self._engine.dispose()

    #: The check itself holds no state: one statement on the request's session.
    check = staticmethod(check)

    def count(self, allowance: Allowance, now: datetime) -> None:
        """Count one use of the consent, or refuse the read if the consent no longer allows it."""
        params = {"consent_id": allowance.consent_id, "now": now, "day": _day(now)}
        for attempt in (1, 2):
            try:
                with self._engine.connect() as connection:
                    result = connection.execute(_USE, params)
                    if cast(CursorResult[Any], result).rowcount:
                        return
                    row = connection.execute(
                        select(Consent.status, Consent.valid_from, Consent.expires_at).where(
                            Consent.id == allowance.consent_id
                        )
                    ).one_or_none()
                break
            except DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        if row is None or row.status != ConsentStatus.active:
            raise ConsentRefused("consent_not_active")
        if not row.valid_from <= now < row.expires_at:
            raise ConsentRefused("consent_not_valid_now")
        raise ConsentRefused("frequency_limit")
