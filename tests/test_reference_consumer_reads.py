"""The reference consumers over HTTP against a real hub: what they read is what their purpose
allows, what they keep carries its data life, and what they conclude follows from it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

import cornerstore_client as sdk
from cornerstore_consumers.lender.assessor import assess
from cornerstore_consumers.replenishment.planner import plan
from cornerstore_consumers.replenishment.recommend import Supply
from hub.runtime import Hub
from tests.factories import Actor, ShopSetup, World, count, payment, rfc3339, sale
from tests.servers import Server, hub_server

#: Above the database: SQLite alone (tests/conftest.py).
pytestmark = pytest.mark.one_backend

TODAY = datetime.now(UTC).date()


@pytest.fixture(scope="module")
def server(hub: Hub) -> Iterator[Server]:
    with hub_server(hub) as running:
        yield running


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), UTC)


def _consent(server: Server, consumer: Actor, shop: ShopSetup) -> sdk.Consent:
    with sdk.Client(server.base_url, consumer.api_key) as client:
        [consent] = [c for c in client.consents() if str(c.shop_id) == shop.id]
        return consent


def test_the_replenishment_consumer_orders_what_runs_short_in_whole_cases(
    world: World, server: Server, tmp_path: Path
) -> None:
    shop = world.shop()
    days = [TODAY - timedelta(days=d) for d in range(70, 0, -1)]
    # Water sells eight a day; soap one every few days; nothing else is sold by the warehouse.
    lines = [
        sale(n * 10 + k, at=_at(day, 9 + k), sku="SKU-WATER", quantity=1)
        for n, day in enumerate(days)
        for k in range(8)
    ] + [
        sale(5000 + n, at=_at(day, 12), sku="SKU-SOAP", quantity=1)
        for n, day in enumerate(days[::4])
    ]
    world.ingest(shop, "sales", lines)
    yesterday = rfc3339(_at(TODAY - timedelta(days=1), 20))
    world.ingest(
        shop,
        "inventory",
        [
            count(1, sku="SKU-WATER", on_hand=5, counted_at=yesterday),
            count(2, sku="SKU-SOAP", on_hand=40, counted_at=yesterday),
        ],
    )
    grocer = world.consumer("Lucky Wholesale")
    world.grant(shop, grocer, "replenishment", ["sales", "inventory"])
    supply = {"SKU-WATER": Supply(12, 2), "SKU-SOAP": Supply(6, 2)}

    with (
        sdk.Client(server.base_url, grocer.api_key) as client,
        sdk.LocalStore(tmp_path / "grocer.db") as store,
    ):
        ordered = plan(client, store, _consent(server, grocer, shop), supply, today=TODAY)
        kept = list(store.records(shop.id, "sales"))

    [water] = ordered  # soap: 40 on the shelf covers nine days of one every four
    assert water.sku == "SKU-WATER"
    assert water.quantity % 12 == 0
    # Nine days of about eight a day, with safety stock, less the five on the shelf.
    assert 60 <= water.quantity <= 120
    assert water.on_hand == 5
    assert len(kept) == len(lines)
    assert all(set(r) == {"event_id", "occurred_at", "sku", "quantity"} for r in kept)


def test_the_lender_offers_from_pseudonyms_and_never_holds_a_payer_reference(
    world: World, server: Server, tmp_path: Path
) -> None:
    shop = world.shop()
    days = [TODAY - timedelta(days=d) for d in range(90, 0, -1)]
    payments = [
        payment(
            n * 10 + k,
            occurred_at=rfc3339(_at(day, 10 + k)),
            amount_cents=2_500,
            payer_ref=f"wx_secret_{k}",
        )
        for n, day in enumerate(days)
        for k in range(4)
    ]
    world.ingest(shop, "payments", payments)
    lender = world.consumer("Ant Credit")
    world.grant(shop, lender, "credit-assessment", ["sales", "payments"])

    with (
        sdk.Client(server.base_url, lender.api_key) as client,
        sdk.LocalStore(tmp_path / "lender.db") as store,
    ):
        card, offered = assess(client, store, _consent(server, lender, shop), today=TODAY)
        kept = list(store.records(shop.id, "payments"))

    assert card.days == 90
    assert card.mean_daily_cents == pytest.approx(10_000)
    assert card.repeat_payer_share == 1.0  # four regulars, by pseudonym
    assert offered.offered
    assert offered.line_cents == pytest.approx(card.mean_monthly_cents * 1.1, rel=0.01)
    assert [r.code for r in offered.reasons] == ["monthly_volume", "regulars"]
    assert len(kept) == len(payments)
    assert all("payer_ref" not in r and r["payer_pseudonym"] for r in kept)
    assert b"wx_secret" not in (tmp_path / "lender.db").read_bytes()
