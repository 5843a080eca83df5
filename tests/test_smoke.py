from __future__ import annotations

from tests.factories import World, payment, sale


def test_consumer_reads_minimised_sales_under_consent(world: World) -> None:
    shop = world.shop()
    world.ingest(shop, "sales", [sale(i) for i in range(5)])
    world.ingest(shop, "payments", [payment(i) for i in range(5)])
    replenisher = world.consumer()
    world.grant(shop, replenisher, "replenishment", ["sales"])

    response = replenisher.get(f"/v1/shops/{shop.id}/sales", purpose="replenishment")

    assert response.status_code == 200, response.text
    records = response.json()["records"]
    assert [r["event_id"] for r in records] == [f"S-{i}" for i in range(5)]
    assert set(records[0]) == {"event_id", "occurred_at", "sku", "quantity"}
