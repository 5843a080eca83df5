"""One shop's purchase plan: read through the hub, keep under the data life, forecast, recommend.

Everything the consumer knows of the shop comes from governed reads (the
SDK), cut down to what ``replenishment`` may see, and is kept in its local
store with the consent it came under, so a revocation purges it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd

from cornerstore_client import Client, Consent, LocalStore
from cornerstore_consumers.replenishment import forecast as demand
from cornerstore_consumers.replenishment.recommend import Line, Supply, line

PURPOSE = "replenishment"
#: How far back sales are read: a year gives the backtest and the weekly rhythm enough.
HISTORY_DAYS = 365
#: Stock counts older than this say nothing of what is on the shelf now.
COUNT_DAYS = 30


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _on_hand(
    counts: Sequence[Mapping[str, Any]], sales: Sequence[Mapping[str, Any]]
) -> dict[str, int]:
    """Each SKU's latest count, less what sold after it (never below zero).

    The hub returns counts in count-time order, so the last of a SKU is its latest.
    """
    latest: dict[str, tuple[str, int]] = {}
    for count in counts:
        latest[str(count["sku"])] = (str(count["counted_at"]), int(count["on_hand"]))
    shelf = {sku: on_hand for sku, (_, on_hand) in latest.items()}
    for sold in sales:
        sku = str(sold["sku"])
        if sku in latest and _moment(sold["occurred_at"]) > _moment(latest[sku][0]):
            shelf[sku] -= int(sold["quantity"])
    return {sku: max(0, left) for sku, left in shelf.items()}


def _moment(value: Any) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def plan(
    client: Client,
    store: LocalStore,
    consent: Consent,
    supply: Mapping[str, Supply],
    *,
    today: date,
    on_order: Mapping[str, int] | None = None,
) -> list[Line]:
    """What the shop should order today of the SKUs the warehouse sells, in whole cases."""
    shop_id = str(consent.shop_id)
    sales = list(
        client.sales(
            shop_id,
            purpose=PURPOSE,
            since=_midnight(today - timedelta(days=HISTORY_DAYS)),
            until=_midnight(today),
        )
    )
    counts = list(
        client.inventory(
            shop_id, purpose=PURPOSE, since=_midnight(today - timedelta(days=COUNT_DAYS))
        )
    )
    store.keep(consent, "sales", sales)
    store.keep(consent, "inventory", counts)
    sold = [s for s in sales if str(s["sku"]) in supply]
    if not sold:
        return []
    history = demand.fill_days(
        pd.DataFrame(
            {
                "unique_id": [str(s["sku"]) for s in sold],
                "ds": pd.to_datetime([str(s["occurred_at"])[:10] for s in sold]),
                "y": [float(s["quantity"]) for s in sold],
            }
        )
    )
    # Up to yesterday, every SKU: a SKU that stopped selling has zeros up to now.
    forecasts = demand.forecast(_through(history, today - timedelta(days=1)))
    errors = {str(r["unique_id"]): float(r["rmse"]) for r in forecasts.choices.to_dict("records")}
    daily: dict[str, list[float]] = {}
    for row in forecasts.demand.to_dict("records"):
        daily.setdefault(str(row["unique_id"]), []).append(float(row["demand"]))
    shelf = _on_hand(counts, sales)
    ordered = on_order or {}
    lines = [
        line(
            sku,
            daily[sku],
            errors[sku],
            supply[sku],
            on_hand=shelf.get(sku, 0),
            on_order=ordered.get(sku, 0),
        )
        for sku in sorted(daily)
    ]
    return [found for found in lines if found is not None]


def _through(history: pd.DataFrame, last: date) -> pd.DataFrame:
    """The history with zero days added up to ``last`` for every SKU."""
    end = pd.Timestamp(last)
    if history["ds"].max() >= end:
        return history
    marker = pd.DataFrame({"unique_id": history["unique_id"].unique(), "ds": end, "y": 0.0})
    return demand.fill_days(pd.concat([history, marker], ignore_index=True))


def product_names(client: Client, store: LocalStore, consent: Consent) -> dict[str, str]:
    """The shop's own names of its products (Chinese, then English), by SKU; kept like the rest.

    A shop that shares no catalogue (or has none) has no names: the warehouse's are used.
    """
    if "catalogue" not in consent.categories:
        return {}
    items = list(client.catalogue(str(consent.shop_id), purpose=PURPOSE))
    store.keep(consent, "catalogue", items)
    names = {}
    for item in items:
        name = item.get("name_zh") or item.get("name_en")
        if name:
            names[str(item["sku"])] = str(name)
    return names
