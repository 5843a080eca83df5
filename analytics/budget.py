"""Each consumer's privacy budget per purpose and period, and the ledger of what spent it.

A query locks its consumer's budget row for the purpose and period, checks
that its ε fits, adds it, and writes its ledger row: all in the transaction
that appends the query's audit entry. Queries of one consumer take turns on
that row, so no two can both fit into the last of a budget; a query that
fails before its answer rolls back and spends nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from analytics.catalogue import PurposeRules
from cornerstore.errors import Forbidden
from cornerstore.models.analytics import PrivacyBudget, PrivacySpend
from cornerstore.models.audit import AuditEntryShop

#: Periods are counted from here, so every process agrees where one begins.
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
#: Float sums of many small ε must not refuse the query that spends the budget exactly.
_SLACK = 1e-9


class BudgetExhausted(Forbidden):
    code = "privacy_budget_exhausted"
    default_detail = "this query would spend more than the privacy budget left for the period"


@dataclass(frozen=True)
class Budget:
    epsilon_total: float
    epsilon_remaining: float
    period_start: datetime
    period_end: datetime


def period_of(now: datetime, period: timedelta) -> tuple[datetime, datetime]:
    start = EPOCH + ((now - EPOCH) // period) * period
    return start, start + period


def charge(
    session: Session, consumer_id: uuid.UUID, rules: PurposeRules, epsilon: float, now: datetime
) -> Budget:
    """Spend ``epsilon`` of the consumer's budget, or raise :class:`BudgetExhausted`. Flushes."""
    start, end = period_of(now, rules.period)
    key = {"consumer_id": consumer_id, "purpose": rules.purpose, "period_start": start}
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    # Make sure the row exists (on SQLite this takes the write lock), then lock it.
    session.execute(insert(PrivacyBudget).values(**key, epsilon_spent=0.0).on_conflict_do_nothing())
    row = session.scalars(
        select(PrivacyBudget)
        .where(*(getattr(PrivacyBudget, name) == value for name, value in key.items()))
        .with_for_update()
    ).one()
    left = rules.epsilon_per_period - row.epsilon_spent
    if epsilon > left + _SLACK:
        raise BudgetExhausted(
            f"this query asks for ε = {epsilon:g}; {max(left, 0.0):g} is left until "
            f"{end.isoformat()}"
        )
    row.epsilon_spent += epsilon
    session.flush()
    return Budget(rules.epsilon_per_period, max(left - epsilon, 0.0), start, end)


def record(
    session: Session,
    *,
    audit_seq: int,
    consumer_id: uuid.UUID,
    purpose: str,
    budget: Budget,
    epsilon: float,
    delta: float,
    shops: int,
    now: datetime,
) -> None:
    session.add(
        PrivacySpend(
            audit_seq=audit_seq,
            consumer_id=consumer_id,
            purpose=purpose,
            period_start=budget.period_start,
            epsilon=epsilon,
            delta=delta,
            shops=shops,
            spent_at=now,
        )
    )
    session.flush()


def spends(
    session: Session, *, consumer_id: uuid.UUID | None, purpose: str | None, limit: int
) -> list[PrivacySpend]:
    """The ledger, newest first: what each query spent, for auditors."""
    stmt = select(PrivacySpend)
    if consumer_id is not None:
        stmt = stmt.where(PrivacySpend.consumer_id == consumer_id)
    if purpose is not None:
        stmt = stmt.where(PrivacySpend.purpose == purpose)
    return list(session.scalars(stmt.order_by(PrivacySpend.audit_seq.desc()).limit(limit)))


def spent_on_shop(session: Session, shop_id: uuid.UUID) -> tuple[float, int]:
    """The ε spent by every query that counted the shop, and how many there were."""
    counted = select(AuditEntryShop.seq).where(AuditEntryShop.shop_id == shop_id)
    total, queries = session.execute(
        select(func.coalesce(func.sum(PrivacySpend.epsilon), 0.0), func.count()).where(
            PrivacySpend.audit_seq.in_(counted)
        )
    ).one()
    return float(total or 0.0), int(queries)
