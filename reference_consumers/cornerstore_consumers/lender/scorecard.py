"""A shop's cash flow in numbers a shopkeeper can check, from its payments and sales.

Every figure is plain arithmetic over the days covered (no model, no hidden
weights), so each reason an offer gives can be traced to one of them.
Payers appear only as the hub's per-lender pseudonyms: a repeat payer is a
pseudonym seen on more than one day.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np

#: Days in an average month, for monthly volume.
MONTH_DAYS = 30.44
#: The recent stretch compared with the same stretch before it.
WINDOW_DAYS = 28


@dataclass(frozen=True)
class Scorecard:
    days: int
    mean_daily_cents: float
    mean_monthly_cents: float
    #: Standard deviation of daily volume over its mean: how steady the takings are.
    variation: float
    #: Least-squares slope of daily volume, as a share of the mean per 30 days.
    trend_per_month: float
    zero_day_share: float
    longest_zero_streak: int
    mean_ticket_cents: float
    repeat_payer_share: float
    #: How far the last 28 days fell short of the 28 days before (0 when they did not).
    drawdown: float
    sales_revenue_cents: int


def _day(value: Any) -> date:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).date()


def score(
    payments: Iterable[Mapping[str, Any]],
    sales: Iterable[Mapping[str, Any]],
    *,
    first_day: date,
    last_day: date,
) -> Scorecard:
    """The scorecard over [first_day, last_day], both included; days without payments count 0."""
    days = (last_day - first_day).days + 1
    if days < 1:
        raise ValueError("last_day is before first_day")
    volume = np.zeros(days)
    tickets: list[int] = []
    payer_days: dict[str, set[date]] = {}
    for payment in payments:
        day = _day(payment["occurred_at"])
        if not first_day <= day <= last_day:
            continue
        amount = int(payment["amount_cents"])
        volume[(day - first_day).days] += amount
        tickets.append(amount)
        payer = payment.get("payer_pseudonym")
        if payer:
            payer_days.setdefault(str(payer), set()).add(day)
    revenue = sum(
        int(s["quantity"]) * int(s["unit_price_cents"])
        for s in sales
        if first_day <= _day(s["occurred_at"]) <= last_day
    )
    mean = float(volume.mean())
    slope = float(np.polyfit(np.arange(days), volume, 1)[0]) if days > 1 else 0.0
    payers = Counter(len(d) > 1 for d in payer_days.values())
    recent = volume[-WINDOW_DAYS:].sum()
    before = volume[-2 * WINDOW_DAYS : -WINDOW_DAYS].sum() if days >= 2 * WINDOW_DAYS else 0.0
    return Scorecard(
        days=days,
        mean_daily_cents=mean,
        mean_monthly_cents=mean * MONTH_DAYS,
        variation=float(volume.std() / mean) if mean else 0.0,
        trend_per_month=slope * 30 / mean if mean else 0.0,
        zero_day_share=float((volume == 0).mean()),
        longest_zero_streak=_longest_zero_run(volume),
        mean_ticket_cents=float(np.mean(tickets)) if tickets else 0.0,
        repeat_payer_share=payers[True] / len(payer_days) if payer_days else 0.0,
        drawdown=float(max(0.0, 1 - recent / before)) if before else 0.0,
        sales_revenue_cents=revenue,
    )


def _longest_zero_run(volume: np.ndarray[Any, np.dtype[np.float64]]) -> int:
    longest = run = 0
    for value in volume.tolist():
        run = run + 1 if value == 0 else 0
        longest = max(longest, run)
    return longest
