"""Answering a question across shops: scope, budget, sums, noise, audit, in one transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics import budget, catalogue, privacy
from analytics.cells import ShopWindow, add_up
from analytics.deps import AnalyticsCore
from analytics.schemas import BudgetOut, NoiseOut, QueryIn, QueryOut
from audit import service as audit
from consent.enforcement import aggregate_allowances
from cornerstore.errors import FieldError, NotFound, ValidationFailed
from cornerstore.identity import Caller
from cornerstore.models.consent import Consent
from cornerstore.models.shops import Shop
from cornerstore.ports import AuditDraft


def _rules(
    core: AnalyticsCore, body: QueryIn
) -> tuple[catalogue.PurposeRules, catalogue.CategoryRules]:
    rules = catalogue.load(core.settings.policy_dir).get(body.purpose.value)
    if rules is None:
        raise NotFound("this purpose answers no query across shops")
    category = rules.categories.get(body.category.value)
    problems: list[FieldError] = []
    if category is None:
        problems.append(FieldError(field="body.category", reason="not in the analytics catalogue"))
    else:
        for name, asked, allowed in (
            ("measures", body.measures, category.clamps),
            ("group_by", body.group_by, category.dimensions),
        ):
            unknown = sorted(set(asked) - set(allowed))
            if unknown or len(set(asked)) != len(asked):
                problems.append(
                    FieldError(
                        field=f"body.{name}",
                        reason=f"each at most once, from {sorted(allowed)}",
                    )
                )
    if body.epsilon > rules.max_epsilon:
        problems.append(
            FieldError(field="body.epsilon", reason=f"at most {rules.max_epsilon:g} per query")
        )
    if body.since and body.until and body.until <= body.since:
        problems.append(FieldError(field="body.until", reason="must be after since"))
    if problems or category is None:
        raise ValidationFailed("the query is not one the catalogue allows", problems)
    return rules, category


def _first_whole_day(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    day = moment.astimezone(UTC).date()
    whole = datetime.combine(day, time(), UTC) == moment
    return day.toordinal() if whole else day.toordinal() + 1


def _end_of_whole_days(moment: datetime | None) -> int | None:
    return None if moment is None else moment.astimezone(UTC).date().toordinal()


def _scope(session: Session, caller: Caller, body: QueryIn, now: datetime) -> list[ShopWindow]:
    """The shops whose consent allows the query now, each with the whole days it may count."""
    allowed = aggregate_allowances(
        session,
        consumer_id=caller.id,
        purpose=body.purpose.value,
        category=body.category.value,
        since=body.since,
        until=body.until,
        now=now,
    )
    # The districts of the consumer's shops, by a join rather than an IN of thousands of ids.
    districts = dict(
        session.execute(
            select(Shop.id, Shop.district)
            .join(Consent, Consent.shop_id == Shop.id)
            .where(Consent.consumer_id == caller.id, Consent.purpose == body.purpose.value)
        ).all()
    )
    return [
        ShopWindow(
            a.shop_id,
            districts.get(a.shop_id),
            _first_whole_day(a.since),
            _end_of_whole_days(a.until),
        )
        for a in allowed
        if a.shop_id in districts
    ]


def _cells_a_shop_can_touch(body: QueryIn) -> int:
    """The most cells one shop can add to, from the query alone (public, not the data).

    A shop is in one district, and its days lie in [since, until): grouped by
    those only, a shop reaches few cells, and the noise can be that much
    smaller. A SKU can be anything, so grouping by it leaves the catalogue's cap.
    """
    if "sku" in body.group_by:
        return 2**31
    cells = 1
    for dimension in body.group_by:
        if dimension in ("week", "day"):
            if body.since is None or body.until is None:
                return 2**31
            days = (body.until - body.since).days + 2  # partial days at both ends
            cells *= days if dimension == "day" else days // 7 + 2
    return cells


def ask(
    session: Session, core: AnalyticsCore, caller: Caller, body: QueryIn, *, policy_version: str
) -> QueryOut:
    """Answer the query, charge its ε and audit it; or refuse and spend nothing.

    Everything happens in the caller's transaction: the budget row stays locked
    until the answer's audit entry and ledger row commit with it.
    """
    now = datetime.now(UTC)
    rules, category = _rules(core, body)
    scope = _scope(session, caller, body, now)
    if not scope:
        raise NotFound("no shop's consent allows this query")
    charged = budget.charge(session, caller.id, rules, body.epsilon, now)
    measures = tuple(body.measures)
    most_cells = min(rules.max_cells_per_shop, _cells_a_shop_can_touch(body))
    cells = add_up(
        core.rollup_cache.columns(session, core.keyring),
        scope,
        group_by=tuple(body.group_by),
        measures=measures,
        clamps=category.clamps,
        max_cells_per_shop=most_cells,
        rng=np.random.default_rng(),
    )
    released = privacy.release(
        cells,
        epsilon=body.epsilon,
        delta=rules.delta,
        min_shops=rules.min_shops,
        max_cells_per_shop=most_cells,
        clamps={m: category.clamps[m] for m in measures},
    )
    answer = [
        {
            **{d: cells.coordinates[d][index] for d in body.group_by},
            **{m: round(released.values[m][n], 1) for m in measures},
        }
        for n, index in enumerate(released.cells)
    ]
    seq = audit.append_about_shops(
        session,
        AuditDraft.of(
            caller,
            "analytics.query",
            "released",
            category=body.category.value,
            purpose=body.purpose.value,
            policy_version=policy_version,
            details={
                "query": body.model_dump(mode="json"),
                "epsilon": body.epsilon,
                "delta": rules.delta,
                "cells_released": len(answer),
                "suppressed": released.suppressed,
            },
        ),
        [s.shop_id for s in scope],
    )
    budget.record(
        session,
        audit_seq=seq,
        consumer_id=caller.id,
        purpose=body.purpose.value,
        budget=charged,
        epsilon=body.epsilon,
        delta=rules.delta,
        shops=len(scope),
        now=now,
    )
    return QueryOut(
        cells=answer,
        suppressed=released.suppressed,
        shops=len(scope),
        epsilon_spent=body.epsilon,
        budget=BudgetOut(
            epsilon_total=charged.epsilon_total,
            epsilon_remaining=charged.epsilon_remaining,
            period=f"{charged.period_start.isoformat()}/{charged.period_end.isoformat()}",
        ),
        noise=NoiseOut(
            mechanism=f"{released.noise.mechanism} (OpenDP), noisy threshold on shops per cell",
            scale=released.noise.scale,
            ci95=released.noise.ci95,
            threshold=released.noise.threshold,
            epsilon=released.noise.epsilon,
            delta=released.noise.delta,
        ),
    )


def shop_privacy(session: Session, shop_id: uuid.UUID) -> tuple[float, int]:
    return budget.spent_on_shop(session, shop_id)
