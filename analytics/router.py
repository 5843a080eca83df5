"""Analytics across shops: ask a question, read the privacy ledger."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from analytics import budget, service
from analytics.deps import AnalyticsCoreDep, LedgerRead, QueryAsk, ShopLedgerRead
from analytics.schemas import LedgerOut, QueryIn, QueryOut, ShopPrivacyOut, SpendOut
from cornerstore.authz import PurposeName
from cornerstore.deps import DbSession
from cornerstore.errors import GLOBAL_ERRORS, SHOP_ERRORS, NotFound, error_responses

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
