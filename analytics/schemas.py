from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cornerstore.authz import PurposeName
from cornerstore.categories import Category
from cornerstore.fieldtypes import Timestamp

Measure = Literal["count", "sum_quantity", "sum_revenue_cents"]
Dimension = Literal["sku", "district", "week", "day"]


class QueryIn(BaseModel):
    """A question across shops. What may be asked is in ``policies/analytics.toml``."""

    model_config = ConfigDict(extra="forbid")

    purpose: PurposeName
    category: Category
    measures: list[Measure] = Field(min_length=1, max_length=3)
    group_by: list[Dimension] = Field(default_factory=list, max_length=4)
    since: Timestamp | None = Field(default=None, description="Whole UTC days from here on")
    until: Timestamp | None = Field(default=None, description="Whole UTC days before this")
    epsilon: float = Field(gt=0, le=100, description="The privacy budget this query spends")


class BudgetOut(BaseModel):
    epsilon_total: float
    epsilon_remaining: float
    period: str = Field(description="ISO 8601 interval the budget is for")


class NoiseOut(BaseModel):
    mechanism: str = Field(description="How the measures were perturbed (through OpenDP)")
    scale: dict[str, float] = Field(description="The noise scale of each measure")
    ci95: dict[str, float] = Field(
        description="Half-width of the 95% interval around each released value"
    )
    threshold: float = Field(
        description="A cell is released only if its noisy count of shops reaches this"
    )
    epsilon: float
    delta: float


class QueryOut(BaseModel):
    cells: list[dict[str, str | float]] = Field(
        description="One object per released cell: its dimensions, then its noisy measures"
    )
    suppressed: int = Field(description="Cells left out: too few shops behind them")
    shops: int = Field(description="Shops in scope: those whose consent allows this query")
    epsilon_spent: float
    budget: BudgetOut
    noise: NoiseOut


class SpendOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    audit_seq: int = Field(description="The query's audit entry")
    consumer_id: uuid.UUID
    purpose: str
    period_start: datetime
    epsilon: float
    delta: float
    shops: int
    spent_at: datetime


class LedgerOut(BaseModel):
    spends: list[SpendOut]


class ShopPrivacyOut(BaseModel):
    epsilon_spent: float = Field(description="Total ε of every query that counted this shop")
    queries: int


class TotalsOut(BaseModel):
    lines: int
    quantity: int
    revenue_cents: int


class GroupOut(TotalsOut):
    key: str = Field(description="The day or ISO week (in the shop's time zone), or the SKU")


class SkuOut(TotalsOut):
    sku: str
    name_zh: str | None = Field(default=None, description="From the shop's catalogue")
    name_en: str | None = Field(default=None, description="From the shop's catalogue")


class StockOut(BaseModel):
    sku: str
    name_zh: str | None = Field(default=None, description="From the shop's catalogue")
    name_en: str | None = Field(default=None, description="From the shop's catalogue")
    on_hand: int = Field(description="At its latest count in the last 30 days")
    counted_at: datetime
    sold_per_day: float = Field(description="Quantity sold per day over the summary's span")
    days_left: float | None = Field(description="At that rate; null when it did not sell")


class PaymentShareOut(BaseModel):
    method: str
    count: int
    amount_cents: int
    share: float = Field(description="Of the amount paid over the span")


class SummaryOut(BaseModel):
    """The shop's own numbers, exact: no consent, no noise, no budget."""

    shop_id: uuid.UUID
    since: datetime
    until: datetime
    time_zone: str | None = Field(description="Days and weeks are counted in it; null: UTC")
    totals: TotalsOut
    groups: list[GroupOut]
    best_sellers: list[SkuOut] = Field(description="Most quantity sold first (10 at most)")
    slow_movers: list[SkuOut] = Field(
        description="Products on the shelf that sold least over the span (10 at most)"
    )
    stock: list[StockOut]
    payments: list[PaymentShareOut]
