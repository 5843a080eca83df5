"""A quarantine the shop can fix: it sees why each record was refused and what arrived, sends
it again corrected, or discards it; nobody else sees any of it, and each step is audited."""

from __future__ import annotations

from typing import Any

from tests.factories import ShopSetup, World, audit_log, sale
from tests.test_pos_csv import upload

BAD_EXPORT = (
    "event_id,occurred_at,sku,quantity,unit_price_cents\n"
    "S-1,2026-11-02T09:00:00+08:00,SKU-A,2,450\n"
    "S-2,2026-11-02T09:05:00+08:00,SKU-B,two,400\n"
    "S-3,2026-11-02T09:06:00+08:00,SKU-C,1,-1\n"
)


def _quarantine(actor_shop: ShopSetup, **params: Any) -> dict[str, Any]:
    response = actor_shop.keeper.get(f"/v1/shops/{actor_shop.id}/quarantine", **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_shop_sees_each_refused_record_with_its_reason_line_and_values(
    world: World,
) -> None:
    shop = world.shop()
    uploaded = upload(shop, "sales", BAD_EXPORT).json()

    listed = _quarantine(shop)["records"]

    assert [(r["line"], r["field"], r["category"]) for r in listed] == [
        (3, "quantity", "sales"),
        (4, "unit_price_cents", "sales"),
    ]
    assert {r["batch_id"] for r in listed} == {uploaded["batch_id"]}
    assert listed[0]["values"] == {
        "event_id": "S-2",
        "occurred_at": "2026-11-02T09:05:00+08:00",
        "sku": "SKU-B",
        "quantity": "two",
        "unit_price_cents": 400,
    }
    assert listed[0]["reason"] == uploaded["rejected"][0]["reason"]
    # Its connector sees the same; a stranger's keeper and a consumer see no such shop.
    by_connector = shop.connector.get(f"/v1/shops/{shop.id}/quarantine").json()["records"]
    assert by_connector == listed
    other = world.shop()
    consumer = world.consumer()
    world.grant(shop, consumer, "analytics", ["sales"])
    for stranger in (other.keeper, other.connector, consumer):
        assert stranger.get(f"/v1/shops/{shop.id}/quarantine").status_code == 404


def test_a_corrected_record_is_stored_and_leaves_the_quarantine(world: World) -> None:
    shop = world.shop()
    upload(shop, "sales", BAD_EXPORT)
    [two, _] = _quarantine(shop)["records"]
    url = f"/v1/shops/{shop.id}/quarantine/{two['id']}/resubmit"

    still_bad = shop.keeper.post(url, {**two["values"], "quantity": "3.5", "currency": "yuan"})
    fixed = shop.keeper.post(url, {**two["values"], "quantity": 2})
    again = shop.keeper.post(url, {**two["values"], "quantity": 2})

    assert still_bad.status_code == 422
    assert [f["field"] for f in still_bad.json()["fields"]] == ["body.quantity", "body.currency"]
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["accepted"] == 1
    assert again.status_code == 404  # it left the quarantine
    assert [r["line"] for r in _quarantine(shop)["records"]] == [4]
    stored = shop.keeper.get(f"/v1/shops/{shop.id}/sales").json()["records"]
    assert [(r["event_id"], r["quantity"]) for r in stored] == [("S-1", 2), ("S-2", 2)]
    [event] = [
        e
        for e in audit_log(world.principal("auditor"), action="quarantine.resubmit")
        if e["shop_id"] == shop.id
    ]
    assert event["principal_id"] == shop.keeper.id


def test_a_discarded_record_is_gone_and_the_discard_audited(world: World) -> None:
    shop = world.shop()
    world.ingest(shop, "sales", [sale(1), {**sale(2), "quantity": "many"}])
    [refused] = _quarantine(shop)["records"]
    url = f"/v1/shops/{shop.id}/quarantine/{refused['id']}"

    elsewhere = world.shop()
    assert (
        elsewhere.keeper.client.delete(
            f"/v1/shops/{elsewhere.id}/quarantine/{refused['id']}", headers=elsewhere.keeper.headers
        ).status_code
        == 404
    )
    gone = shop.connector.client.delete(url, headers=shop.connector.headers)

    assert gone.status_code == 204
    assert _quarantine(shop)["records"] == []
    assert shop.connector.client.delete(url, headers=shop.connector.headers).status_code == 404
    discards = [
        e
        for e in audit_log(world.principal("auditor"), action="quarantine.discard")
        if e["shop_id"] == shop.id
    ]
    assert [e["principal_id"] for e in discards] == [shop.connector.id]


def test_uploading_the_same_file_again_does_not_quarantine_a_line_twice(world: World) -> None:
    shop = world.shop()
    first = upload(shop, "sales", BAD_EXPORT).json()
    second = upload(shop, "sales", BAD_EXPORT).json()

    # Each upload still says what it refused, and why; the quarantine keeps each line once.
    assert len(first["rejected"]) == len(second["rejected"]) == 2
    assert len(_quarantine(shop)["records"]) == 2


def test_the_quarantine_pages_and_filters_by_category(world: World) -> None:
    shop = world.shop()
    world.ingest(shop, "sales", [{**sale(n), "quantity": "x"} for n in range(5)])
    world.ingest(shop, "payments", [{"event_id": "P-1", "method": "barter"}])

    first = _quarantine(shop, category="sales", limit=3)
    rest = _quarantine(shop, category="sales", limit=3, cursor=first["next"])
    payments = _quarantine(shop, category="payments")

    assert len(first["records"]) == 3
    assert len(rest["records"]) == 2
    assert rest["next"] is None
    assert [r["values"]["event_id"] for r in payments["records"]] == ["P-1"]
    bad_cursor = shop.keeper.get(f"/v1/shops/{shop.id}/quarantine", cursor="'; drop")
    assert bad_cursor.status_code == 422


def test_a_cursor_past_any_id_is_a_422_not_a_server_error(world: World) -> None:
    shop = world.shop()
    url = f"/v1/shops/{shop.id}/quarantine"
    assert shop.keeper.get(url, cursor="9999999999999999999").status_code == 422
    assert shop.keeper.get(url, cursor=str(2**63 - 1)).json()["records"] == []


def test_a_catalogue_item_is_quarantined_once_and_resubmitted_with_a_fresh_time(
    world: World,
) -> None:
    shop = world.shop()
    good = {"sku": "SKU-A", "name_zh": "面"}
    typo = {"sku": "SKU-B", "name_zh": "水", "gtin": "6901028075764"}
    url = f"/v1/shops/{shop.id}/catalogue"
    for _ in range(2):  # a till that syncs its catalogue every night
        shop.connector.client.put(url, json={"items": [good, typo]}, headers=shop.connector.headers)

    [refused] = _quarantine(shop)["records"]
    assert refused["values"] == typo  # as it came: no time of the hub's added
    fixed = shop.connector.post(
        f"/v1/shops/{shop.id}/quarantine/{refused['id']}/resubmit",
        {**typo, "gtin": "6901028075763"},
    )

    assert fixed.status_code == 200, fixed.text
    items = shop.keeper.get(url).json()["records"]
    assert sorted(i["sku"] for i in items) == ["SKU-A", "SKU-B"]
    stamps = {i["sku"]: i["updated_at"] for i in items}
    assert stamps["SKU-B"] >= stamps["SKU-A"]
