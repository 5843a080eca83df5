"""A credit line from a scorecard, with every reason in plain words, in English and Chinese.

The line starts at one month of the shop's takings and each rule below
takes a stated share off (or adds one), so a shopkeeper reads exactly why the
line is what it is. Below the floor nothing is offered, and the reasons say
why. Amounts are whole yuan.
"""

from __future__ import annotations

from dataclasses import dataclass

from cornerstore_consumers.lender.scorecard import Scorecard

#: The most offered, in cents (¥50,000), and the least worth offering (¥1,000).
CAP_CENTS = 5_000_000
FLOOR_CENTS = 100_000
#: Days of history needed before any offer.
MIN_DAYS = 56


@dataclass(frozen=True)
class Reason:
    code: str
    en: str
    zh: str
    #: The change to the line, as a share of the month's takings (negative: less).
    effect: float


@dataclass(frozen=True)
class Offer:
    line_cents: int
    #: Interest per year, as a share.
    annual_rate: float
    reasons: tuple[Reason, ...]

    @property
    def offered(self) -> bool:
        return self.line_cents > 0


def _yuan(cents: float) -> str:
    return f"¥{cents / 100:,.0f}"


def offer(card: Scorecard) -> Offer:
    if card.days < MIN_DAYS:
        days = f"{card.days}"
        return Offer(
            0,
            0.0,
            (
                Reason(
                    "short_history",
                    f"Only {days} days of payments: we need {MIN_DAYS} to judge your takings.",
                    f"只有 {days} 天的收款记录：需要 {MIN_DAYS} 天才能评估您的流水。",
                    -1.0,
                ),
            ),
        )
    month = _yuan(card.mean_monthly_cents)
    reasons = [
        Reason(
            "monthly_volume",
            f"You take about {month} a month in payments; the line starts there.",
            f"您每月收款约 {month}，额度以此为起点。",
            1.0,
        )
    ]
    if card.variation > 1.0:
        reasons.append(
            Reason(
                "unsteady",
                "Takings vary a lot from day to day: 20% less.",
                "每日流水波动较大：额度减少 20%。",
                -0.2,
            )
        )
    if card.trend_per_month < -0.05:
        fall = f"{-card.trend_per_month:.0%}"
        reasons.append(
            Reason(
                "falling",
                f"Takings have been falling by about {fall} a month: 25% less.",
                f"流水每月下降约 {fall}：额度减少 25%。",
                -0.25,
            )
        )
    elif card.trend_per_month > 0.05:
        rise = f"{card.trend_per_month:.0%}"
        reasons.append(
            Reason(
                "growing",
                f"Takings have been growing by about {rise} a month: 10% more.",
                f"流水每月增长约 {rise}：额度增加 10%。",
                0.1,
            )
        )
    if card.longest_zero_streak >= 7:
        streak = str(card.longest_zero_streak)
        reasons.append(
            Reason(
                "closed_spell",
                f"{streak} days in a row without a payment: 20% less.",
                f"曾连续 {streak} 天没有收款：额度减少 20%。",
                -0.2,
            )
        )
    if card.repeat_payer_share >= 0.3:
        share = f"{card.repeat_payer_share:.0%}"
        reasons.append(
            Reason(
                "regulars",
                f"{share} of your payers come back on other days: 10% more.",
                f"{share} 的付款人会在其他日子再次光顾：额度增加 10%。",
                0.1,
            )
        )
    if card.drawdown > 0.2:
        drop = f"{card.drawdown:.0%}"
        reasons.append(
            Reason(
                "recent_drop",
                f"The last 4 weeks took {drop} less than the 4 before: 30% less.",
                f"最近 4 周比之前 4 周少收 {drop}：额度减少 30%。",
                -0.3,
            )
        )
    months = max(0.0, sum(r.effect for r in reasons))
    line = min(card.mean_monthly_cents * months, CAP_CENTS)
    if line < FLOOR_CENTS:
        least = _yuan(FLOOR_CENTS)
        reasons.append(
            Reason(
                "below_floor",
                f"That comes to less than {least}, the smallest line we offer.",
                f"计算结果低于最低额度 {least}。",
                0.0,
            )
        )
        return Offer(0, 0.0, tuple(reasons))
    # Whole yuan; a steadier shop pays less interest.
    rate = 0.08 + 0.04 * min(card.variation, 1.0) + 0.04 * card.zero_day_share
    return Offer(int(line // 100 * 100), round(rate, 4), tuple(reasons))
