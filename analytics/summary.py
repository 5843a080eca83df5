"""The shopkeeper's own analytics: exact totals of the shop's own data, no noise.

The shop's own numbers need no consent and no privacy budget: the records
are opened through the gate's owner path (audited as the shop's own read)
and added up here. Days and weeks are the shop's own, in its time zone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from analytics.schemas import (
    GroupOut,
    PaymentShareOut,
    SkuOut,
    StockOut,
    SummaryOut,
    TotalsOut,
)
from cornerstore.categories import Category
from cornerstore.gate import ShopExport
from cornerstore.models.shops import Shop

GroupBy = Literal["day", "week", "sku"]
#: How far back a product's latest stock count is looked for.
STOCK_DAYS = 30
TOP = 10


def _moment(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _group_key(line: dict[str, Any], group_by: GroupBy, zone: ZoneInfo) -> str:
    if group_by == "sku":
        return str(line["sku"])
    local = _moment(line["occurred_at"]).astimezone(zone).date()
    if group_by == "day":
        return local.isoformat()
    year, week, _ = local.isocalendar()
    return f"{year}-W{week:02d}"


def _sums(lines: Iterable[dict[str, Any]], key: Any) -> dict[str, list[int]]:
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for line in lines:
        quantity = int(line["quantity"])
        entry = sums[key(line)]
        entry[0] += 1
        entry[1] += quantity
        entry[2] += quantity * int(line["unit_price_cents"])
    return sums


def summarise(
    session: Session,
    reader: ShopExport,
    *,
    since: datetime,
    until: datetime,
    group_by: GroupBy,
) -> SummaryOut:
    shop = session.get(Shop, reader.shop_id)
    zone_name = shop.time_zone if shop and shop.time_zone else None
    zone = ZoneInfo(zone_name) if zone_name else ZoneInfo("UTC")
    sales = list(reader.records(session, Category.sales, since, until))
    by_sku = _sums(sales, lambda line: str(line["sku"]))
    groups = _sums(sales, lambda line: _group_key(line, group_by, zone))
    latest: dict[str, dict[str, Any]] = {}
    for count in reader.records(
        session, Category.inventory, until - timedelta(days=STOCK_DAYS), until
    ):
        latest[str(count["sku"])] = count  # in count-time order: the last is the latest
    payments: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for payment in reader.records(session, Category.payments, since, until):
        entry = payments[str(payment["method"])]
        entry[0] += 1
        entry[1] += int(payment["amount_cents"])
    days = max((until - since) / timedelta(days=1), 1.0)
    paid = sum(amount for _, amount in payments.values())
    # The shop's own names for its products, where it has sent its catalogue.
    names = {
        str(item["sku"]): {"name_zh": item.get("name_zh"), "name_en": item.get("name_en")}
        for item in reader.records(session, Category.catalogue)
    }

    def sku_out(sku: str) -> SkuOut:
        lines, quantity, revenue = by_sku.get(sku, [0, 0, 0])
        return SkuOut(
            sku=sku, lines=lines, quantity=quantity, revenue_cents=revenue, **names.get(sku, {})
        )

    stocked = [sku for sku, count in latest.items() if int(count["on_hand"]) > 0]
    stock = []
    for sku, count in sorted(latest.items()):
        per_day = by_sku.get(sku, [0, 0, 0])[1] / days
        on_hand = int(count["on_hand"])
        stock.append(
            StockOut(
                sku=sku,
                **names.get(sku, {}),
                on_hand=on_hand,
                counted_at=_moment(count["counted_at"]),
                sold_per_day=round(per_day, 2),
                days_left=round(on_hand / per_day, 1) if per_day > 0 else None,
            )
        )
    return SummaryOut(
        shop_id=reader.shop_id,
        since=since,
        until=until,
        time_zone=zone_name,
        totals=TotalsOut(
            lines=len(sales),
            quantity=sum(v[1] for v in by_sku.values()),
            revenue_cents=sum(v[2] for v in by_sku.values()),
        ),
        groups=[
            GroupOut(key=key, lines=v[0], quantity=v[1], revenue_cents=v[2])
            for key, v in sorted(groups.items())
        ],
        best_sellers=[
            sku_out(sku) for sku in sorted(by_sku, key=lambda sku: (-by_sku[sku][1], sku))[:TOP]
        ],
        slow_movers=[
            sku_out(sku)
            for sku in sorted(stocked, key=lambda sku: (by_sku.get(sku, [0, 0])[1], sku))[:TOP]
        ],
        stock=stock,
        payments=[
            PaymentShareOut(
                method=method,
                count=count,
                amount_cents=amount,
                share=round(amount / paid, 4) if paid else 0.0,
            )
            for method, (count, amount) in sorted(payments.items())
        ],
    )


def window(
    since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """The summary's span: up to now, and 28 days back, unless asked otherwise."""
    end = until or now
    return since or end - timedelta(days=28), end
