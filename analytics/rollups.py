"""Each shop's sales of a week, added up per day and SKU, sealed with the shop's data key.

A query across 5,000 shops cannot decrypt their 10M records each time, and
a cache rebuilt from them after a restart would take minutes. So the hub
keeps, per shop and week, the sums a query adds up: lines, quantity and
revenue per (day, SKU). They are sealed like the records (the same key, so
erasure defeats old backups of them too) and rebuilt from the records
whenever the week changes: ingest marks the week in ``changed_weeks`` in the
records' own transaction, and :func:`builder` rounds rebuild what is marked.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from cornerstore.categories import Category
from cornerstore.db import utcnow
from cornerstore.gate import open_for_rollup
from cornerstore.keys.ring import KeyRing
from cornerstore.models.analytics import AnalyticsRollup
from cornerstore.models.records import ChangedWeek
from cornerstore.poller import Poller

#: The categories kept as rollups; marks of others are cleared unread.
ROLLED_UP = (Category.sales,)
#: What a rollup is sealed as (the kind bound into its ciphertext).
KIND = "rollup"
FIELD = "sums"
#: Weeks one round rebuilds at most.
ROUND_WEEKS = 200


@dataclass(frozen=True)
class WeekSums:
    """One shop-week's sums, sorted by SKU then day: what a rollup holds when opened."""

    week_start: date
    #: Days after the week's Monday, 0-6.
    days: list[int]
    skus: list[str]
    count: list[int]
    quantity: list[int]
    revenue_cents: list[int]

    def encode(self) -> bytes:
        return json.dumps(
            {
                "days": self.days,
                "skus": self.skus,
                "count": self.count,
                "quantity": self.quantity,
                "revenue_cents": self.revenue_cents,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()

    @classmethod
    def decode(cls, week_start: date, plaintext: bytes) -> WeekSums:
        doc: dict[str, Any] = json.loads(plaintext)
        return cls(
            week_start,
            doc["days"],
            doc["skus"],
            doc["count"],
            doc["quantity"],
            doc["revenue_cents"],
        )


def _record_key(week_start: date) -> bytes:
    return week_start.isoformat().encode()


def add_up(week_start: date, sales: list[dict[str, Any]]) -> WeekSums:
    """The sums of a week's sales lines, per SKU and day."""
    sums: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for line in sales:
        at = line["occurred_at"]
        moment = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
        day = (moment.astimezone(UTC).date() - week_start).days
        quantity = int(line["quantity"])
        cell = sums[(str(line["sku"]), day)]
        cell[0] += 1
        cell[1] += quantity
        cell[2] += quantity * int(line["unit_price_cents"])
    keys = sorted(sums)
    return WeekSums(
        week_start,
        [day for _sku, day in keys],
        [sku for sku, _day in keys],
        [sums[key][0] for key in keys],
        [sums[key][1] for key in keys],
        [sums[key][2] for key in keys],
    )


def rebuild(session: Session, keyring: KeyRing, shop_id: uuid.UUID, week_start: date) -> None:
    """Seal the week's sums afresh from its records (or drop them when it has none). Flushes."""
    start = datetime.combine(week_start, time(), UTC)
    sales = open_for_rollup(
        keyring, session, shop_id, Category.sales, start, start + timedelta(days=7)
    )
    where = (
        AnalyticsRollup.shop_id == shop_id,
        AnalyticsRollup.category == Category.sales,
        AnalyticsRollup.week_start == week_start,
    )
    if not sales:
        session.execute(delete(AnalyticsRollup).where(*where))
        return
    cipher = keyring.cipher(session, shop_id)
    sealed = cipher.seal(KIND, FIELD, _record_key(week_start), add_up(week_start, sales).encode())
    row = {
        "shop_id": shop_id,
        "category": Category.sales.value,
        "week_start": week_start,
        "sealed": sealed,
        "key_version": cipher.version,
        "built_at": utcnow(),
    }
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(AnalyticsRollup).values(**row)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["shop_id", "category", "week_start"],
            set_={name: stmt.excluded[name] for name in ("sealed", "key_version", "built_at")},
        )
    )


def open_sums(
    keyring: KeyRing,
    session: Session,
    shop_id: uuid.UUID,
    week_start: date,
    key_version: int,
    sealed: bytes,
) -> WeekSums:
    """A rollup's sums, opened with the data-key version that sealed them."""
    cipher = keyring.cipher(session, shop_id, key_version)
    plaintext = cipher.open(KIND, FIELD, _record_key(week_start), bytes(sealed))
    return WeekSums.decode(week_start, plaintext)


def build_round(session: Session, keyring: KeyRing, *, limit: int = ROUND_WEEKS) -> int:
    """Rebuild up to ``limit`` changed weeks; return how many. Flushes only.

    Marks are taken with their row locks, skipping those another process
    holds. A batch that marks a week again while it is rebuilt waits for
    this transaction, then marks it anew: the week is rebuilt once more.
    (SQLite has no row locks: two processes may rebuild a week twice, to the
    same sums, and the later writer's round fails and is retried.)
    """
    marks = session.scalars(
        select(ChangedWeek)
        .order_by(ChangedWeek.changed_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for mark in marks:
        if mark.category in ROLLED_UP:
            rebuild(session, keyring, mark.shop_id, mark.week_start)
        session.delete(mark)
    session.flush()
    return len(marks)


def builder(sessions: sessionmaker[Session], keyring: KeyRing, *, interval: float) -> Poller:
    """Rebuilds changed weeks every ``interval`` seconds, until none is left."""

    def build(stopping: threading.Event) -> None:
        while not stopping.is_set():
            with sessions() as session, session.begin():
                if build_round(session, keyring) < ROUND_WEEKS:
                    return

    return Poller("rollup-builder", build, interval=interval)
