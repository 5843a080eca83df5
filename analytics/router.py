"""Analytics across shops: ask a question, read the privacy ledger."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from analytics import budget, service, summary
from analytics.deps import AnalyticsCoreDep, LedgerRead, QueryAsk, ShopLedgerRead, SummaryRead
from analytics.schemas import (
    LedgerOut,
    QueryIn,
    QueryOut,
    ShopPrivacyOut,
    SpendOut,
    SummaryOut,
)
from cornerstore.authz import PurposeName
from cornerstore.db import utcnow
from cornerstore.deps import CoreDep, DbSession
from cornerstore.errors import (
    GLOBAL_ERRORS,
    SHOP_ERRORS,
    FieldError,
    NotFound,
    ValidationFailed,
    error_responses,
)
from cornerstore.fieldtypes import Timestamp
from cornerstore.gate import AccessGate

router = APIRouter(tags=["analytics"])


@router.post(
    "/v1/analytics/queries",
    response_model=QueryOut,
    responses=GLOBAL_ERRORS | error_responses(NotFound),
    summary="Ask a question across shops: noisy sums per cell, never one shop",
    description="Counts the shops whose consent, for the caller and the purpose, allows the "
    "category (either access mode), each within its consent's data range in whole UTC days. "
    "Cells backed by too few shops are suppressed; the rest carry calibrated noise (OpenDP). "
    "The query spends `epsilon` of the caller's budget for the purpose: 403 "
    "`privacy_budget_exhausted` when it would overspend, and then nothing is spent. "
    "404 when no shop's consent allows it. What may be asked: `policies/analytics.toml`.",
)
def ask(permit: QueryAsk, body: QueryIn, core: AnalyticsCoreDep, session: DbSession) -> QueryOut:
    return service.ask(session, core, permit.caller, body, policy_version=permit.policy_version)


@router.get(
    "/v1/analytics/ledger",
    response_model=LedgerOut,
    responses=GLOBAL_ERRORS,
    summary="What each query across shops spent of its consumer's privacy budget",
)
def ledger(
    permit: LedgerRead,
    session: DbSession,
    consumer_id: uuid.UUID | None = None,
    purpose: PurposeName | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> LedgerOut:
    spends = budget.spends(
        session,
        consumer_id=consumer_id,
        purpose=purpose.value if purpose else None,
        limit=limit,
    )
    return LedgerOut(spends=[SpendOut.model_validate(s) for s in spends])


@router.get(
    "/v1/shops/{shop_id}/analytics/privacy",
    response_model=ShopPrivacyOut,
    responses=SHOP_ERRORS,
    summary="The privacy budget spent by every query across shops that counted this shop",
)
def shop_privacy(permit: ShopLedgerRead, shop_id: uuid.UUID, session: DbSession) -> ShopPrivacyOut:
    spent, queries = service.shop_privacy(session, shop_id)
    return ShopPrivacyOut(epsilon_spent=spent, queries=queries)


@router.get(
    "/v1/shops/{shop_id}/analytics/summary",
    response_model=SummaryOut,
    responses=SHOP_ERRORS,
    summary="The shop's own numbers, exact: sales, best sellers, slow movers, stock left, "
    "payment mix",
    description="For the shop's shopkeeper. Over [since, until), by default the 28 days up to "
    "now; days and weeks in the shop's time zone. Read as the shop's own read (audited).",
)
def shop_summary(
    permit: SummaryRead,
    shop_id: uuid.UUID,
    core: CoreDep,
    session: DbSession,
    since: Timestamp | None = None,
    until: Timestamp | None = None,
    group_by: summary.GroupBy = "day",
) -> SummaryOut:
    start, end = summary.window(since, until, utcnow())
    if not start < end or end - start > timedelta(days=366):
        raise ValidationFailed(
            "the span must run forwards, a year at most",
            [FieldError(field="query.until", reason="after since, within 366 days of it")],
        )
    reader = AccessGate(core).summary(session, permit, start)
    return summary.summarise(session, reader, since=start, until=end, group_by=group_by)
