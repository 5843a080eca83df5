"""From a forecast to what to order: an order-up-to level, less what is there, in whole cases.

For each SKU, the shop must cover demand until the order after this one
arrives: the lead time L plus the review period R (orders are proposed once
a week). The order-up-to level is

    S = forecast demand over L + R days + z * sd * sqrt(L + R)

where sd is the SKU's daily forecast error (its backtest RMSE; for a SKU too
new for a backtest, the square root of its forecast rate) and z the
normal quantile of the service level (the chance of not running out before
the next order arrives). What to order is S less what is on hand and already
on order, rounded up to whole cases, and nothing if that is zero or less.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

REVIEW_DAYS = 7
SERVICE_LEVEL = 0.95


@dataclass(frozen=True)
class Supply:
    """What the warehouse says of a SKU."""

    case_pack: int
    lead_time_days: int


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int
    #: Why this many, in numbers a shopkeeper can check.
    order_up_to: float
    on_hand: int
    on_order: int
    daily_demand: float


def order_up_to(
    daily_forecast: list[float],
    daily_error: float,
    supply: Supply,
    *,
    review_days: int = REVIEW_DAYS,
    service_level: float = SERVICE_LEVEL,
) -> float:
    """S for one SKU. Past the forecast's horizon, its last week's mean is assumed to hold."""
    cover = supply.lead_time_days + review_days
    known = daily_forecast[:cover]
    tail = daily_forecast[-7:] or [0.0]
    beyond = max(cover - len(known), 0) * (sum(tail) / len(tail))
    z = NormalDist().inv_cdf(service_level)
    # A SKU too new for a backtest is the least known: Poisson's spread, the root of its rate.
    mean = sum(daily_forecast) / len(daily_forecast) if daily_forecast else 0.0
    error = daily_error if math.isfinite(daily_error) else math.sqrt(mean)
    return sum(known) + beyond + z * error * math.sqrt(cover)


def line(
    sku: str,
    daily_forecast: list[float],
    daily_error: float,
    supply: Supply,
    *,
    on_hand: int,
    on_order: int = 0,
) -> Line | None:
    """The order line for one SKU, or None when the shop has enough."""
    level = order_up_to(daily_forecast, daily_error, supply)
    short = level - on_hand - on_order
    if short <= 0:
        return None
    cases = math.ceil(short / supply.case_pack)
    mean = sum(daily_forecast) / len(daily_forecast) if daily_forecast else 0.0
    return Line(sku, cases * supply.case_pack, round(level, 1), on_hand, on_order, round(mean, 2))
