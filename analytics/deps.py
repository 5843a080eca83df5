"""What analytics' endpoints need of the running hub, and the permits they declare."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, Request

from analytics.cache import RollupCache
from cornerstore.access import Authorize, AuthorizeShop, Permit
from cornerstore.authz import Action, Resource
from cornerstore.deps import hub_of
from cornerstore.ports import Core


class AnalyticsCore(Core, Protocol):
    @property
    def rollup_cache(self) -> RollupCache: ...


def get_analytics_core(request: Request) -> AnalyticsCore:
    core: AnalyticsCore = hub_of(request)
    return core


AnalyticsCoreDep = Annotated[AnalyticsCore, Depends(get_analytics_core)]

QueryAsk = Annotated[Permit, Depends(Authorize(Resource.analytics_query, Action.create))]
LedgerRead = Annotated[Permit, Depends(Authorize(Resource.privacy_ledger, Action.read))]
ShopLedgerRead = Annotated[Permit, Depends(AuthorizeShop(Resource.privacy_ledger, Action.read))]
SummaryRead = Annotated[Permit, Depends(AuthorizeShop(Resource.shop_summary, Action.read))]
