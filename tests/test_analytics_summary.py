"""The shopkeeper's own analytics: exact, in the shop's days, and equal to its own export."""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.factories import World, audit_log, count, payment, rfc3339, sale
from tests.test_web_console import sign_in

SHANGHAI = ZoneInfo("Asia/Shanghai")
UNTIL = datetime(2026, 11, 30, tzinfo=UTC)
SINCE = UNTIL - timedelta(days=14)


def _busy_shop(world: World) -> Any:
    shop = world.shop()
    world.client.patch(
        f"/v1/shops/{shop.id}", json={"time_zone": "Asia/Shanghai"}, headers=shop.keeper.headers
    )
    lines = [
        sale(
            n,
            at=SINCE + timedelta(hours=7 * n),
            sku=f"SKU-{n % 5}",
            quantity=1 + n % 3,
            unit_price_cents=200 + 50 * (n % 5),
        )
        for n in range(45)
    ]
    lines.append(sale(99, at=SINCE - timedelta(days=1), sku="SKU-0"))  # before the span
    lines.append(sale(98, at=SINCE + timedelta(days=2), sku="SKU-1", quantity=-2))  # a return
    world.ingest(shop, "sales", lines)
    world.ingest(
        shop,
        "inventory",
        [
            count(n, sku=f"SKU-{n}", on_hand=3 * n, counted_at=rfc3339(UNTIL - timedelta(days=1)))
            for n in range(7)
        ],
    )
    world.ingest(
        shop,
        "payments",
        [
            payment(n, occurred_at=rfc3339(SINCE + timedelta(hours=9 * n)), method=m)
            for n, m in enumerate(["qr", "qr", "cash", "card", "qr"])
        ],
    )
    return shop


def _export(world: World, shop: Any) -> dict[str, list[dict[str, Any]]]:
    answer = shop.keeper.get(f"/v1/shops/{shop.id}/export")
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    return {
        name: [json.loads(line) for line in archive.read(f"{name}.jsonl").decode().splitlines()]
        for name in ("sales", "inventory", "payments")
    }


def _in_span(record: dict[str, Any], field: str = "occurred_at") -> bool:
    return SINCE <= datetime.fromisoformat(record[field]) < UNTIL


def test_the_summary_equals_a_computation_over_the_shops_own_export(world: World) -> None:
    shop = _busy_shop(world)

    answer = shop.keeper.get(
        f"/v1/shops/{shop.id}/analytics/summary",
        since=rfc3339(SINCE),
        until=rfc3339(UNTIL),
        group_by="day",
    )

    assert answer.status_code == 200, answer.text
    got = answer.json()
    exported = _export(world, shop)
    sales = [s for s in exported["sales"] if _in_span(s)]
    revenue = sum(s["quantity"] * s["unit_price_cents"] for s in sales)
    assert got["totals"] == {
        "lines": len(sales),
        "quantity": sum(s["quantity"] for s in sales),
        "revenue_cents": revenue,
    }
    by_day: dict[str, int] = defaultdict(int)
    for s in sales:
        by_day[
            datetime.fromisoformat(s["occurred_at"]).astimezone(SHANGHAI).date().isoformat()
        ] += 1
    assert {g["key"]: g["lines"] for g in got["groups"]} == by_day
    sold: Counter[str] = Counter()
    for s in sales:
        sold[s["sku"]] += s["quantity"]
    assert [b["sku"] for b in got["best_sellers"]] == sorted(sold, key=lambda k: (-sold[k], k))
    days = (UNTIL - SINCE).days
    for item in got["stock"]:
        on_hand = next(c["on_hand"] for c in exported["inventory"] if c["sku"] == item["sku"])
        assert item["on_hand"] == on_hand
        rate = sold[item["sku"]] / days
        assert item["days_left"] == (round(on_hand / rate, 1) if rate > 0 else None)
    # Products on the shelf that did not sell at all come first among the slow movers.
    assert [m["sku"] for m in got["slow_movers"]][:2] == ["SKU-5", "SKU-6"]
    paid = [p for p in exported["payments"] if _in_span(p)]
    total = sum(p["amount_cents"] for p in paid)
    assert {p["method"]: p["amount_cents"] for p in got["payments"]} == {
        m: sum(p["amount_cents"] for p in paid if p["method"] == m) for m in ("qr", "cash", "card")
    }
    assert sum(p["share"] for p in got["payments"]) == pytest.approx(1.0, abs=1e-3)
    assert total > 0
    assert got["time_zone"] == "Asia/Shanghai"


def test_only_the_shops_keeper_reads_its_summary_and_it_is_audited(world: World) -> None:
    shop, other = world.shop(), world.shop("别家小店")
    analyst = world.consumer()
    world.grant(shop, analyst, "analytics", ["sales"])
    path = f"/v1/shops/{shop.id}/analytics/summary"

    for stranger in (other.keeper, shop.connector, analyst, world.admin):
        assert stranger.get(path).status_code == 404
    assert shop.keeper.get(path, group_by="week").status_code == 200
    assert shop.keeper.get(path, group_by="month").status_code == 422
    backwards = shop.keeper.get(path, since=rfc3339(UNTIL), until=rfc3339(SINCE))
    assert backwards.status_code == 422
    own_reads = [
        e
        for e in audit_log(shop.keeper, f"/v1/shops/{shop.id}/access-log")
        if e["action"] == "read" and "summary" in e["details"]
    ]
    assert len(own_reads) == 1


def test_the_portals_home_shows_the_same_summary(world: World) -> None:
    shop = world.shop()
    now = datetime.now(UTC)
    world.ingest(
        shop,
        "sales",
        [sale(n, at=now - timedelta(days=n % 20), sku="SKU-NOODLE", quantity=2) for n in range(20)]
        + [sale(50, at=now - timedelta(days=1), sku="SKU-TEA")],
    )
    world.ingest(
        shop,
        "inventory",
        [
            count(1, sku="SKU-NOODLE", on_hand=6, counted_at=rfc3339(now - timedelta(hours=1))),
            count(2, sku="SKU-SOAP", on_hand=9, counted_at=rfc3339(now - timedelta(hours=1))),
        ],
    )
    world.ingest(shop, "payments", [payment(1, occurred_at=rfc3339(now), method="cash")])
    sign_in(world, shop.keeper.id)

    page = world.client.get(
        f"/portal/shops/{shop.id}/insights", headers={"Accept-Language": "en"}
    ).text

    best = page.index('data-insight="best"')
    assert page.index("SKU-NOODLE", best) < page.index("SKU-TEA", best)
    assert "SKU-SOAP" in page[page.index('data-insight="slow"') :]
    # 40 noodles in 28 days, 6 left: about four days.
    assert "about 4.2 days left" in page
    assert "cash</span> <strong>100%" in page
