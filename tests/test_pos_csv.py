"""A shop uploads its POS system's CSV export instead of JSON."""

from __future__ import annotations

import httpx2 as httpx

from tests.factories import ShopSetup, World


def upload(shop: ShopSetup, category: str, text: str | bytes) -> httpx.Response:
    body = text.encode() if isinstance(text, str) else text
    return shop.connector.client.post(
        f"/v1/shops/{shop.id}/{category}/csv",
        content=body,
        headers={**shop.connector.headers, "Content-Type": "text/csv"},
    )


SALES_CSV = (
    "event_id,occurred_at,sku,quantity,unit_price_cents,currency\n"
    "S-1,2026-11-02T09:00:00+08:00,SKU-康师傅-BEEF,2,450,CNY\n"
    "S-2,2026-11-02T09:05:00+08:00,SKU-TEA-WLJ,1,400,\n"
)


def test_a_pos_export_is_stored_and_reads_back(world: World) -> None:
    shop = world.shop()

    response = upload(shop, "sales", SALES_CSV)

    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2
    records = shop.keeper.get(f"/v1/shops/{shop.id}/sales").json()["records"]
    assert [(r["event_id"], r["sku"], r["quantity"], r["currency"]) for r in records] == [
        ("S-1", "SKU-康师傅-BEEF", 2, "CNY"),
        ("S-2", "SKU-TEA-WLJ", 1, "CNY"),
    ]


def test_bad_lines_are_rejected_by_line_and_field_and_the_rest_stored(world: World) -> None:
    shop = world.shop()
    text = (
        "event_id,occurred_at,amount_cents,method,payer_ref\r\n"
        "P-1,2026-11-02T09:00:00Z,1200,qr,wx_a1\r\n"
        "P-2,2026-11-02T09:01:00Z,twelve,qr,wx_a2\r\n"
        "\r\n"
        "P-3,2026-11-02T09:02:00Z,900,bitcoin,wx_a3\r\n"
        'P-4,"2026-11-02T09:03:00Z",700,cash\r\n'
        'P-5,2026-11-02T09:04:00Z,300,card,"multi\nline"\r\n'
        "P-6,2026-11-02T09:05:00Z,500,qr,wx_a6\r\n"
    )

    body = upload(shop, "payments", text).json()

    assert body["accepted"] == 3
    assert [(r["line"], r["field"]) for r in body["rejected"]] == [
        (3, "amount_cents"),
        (5, "method"),
        (6, ""),
    ]
    assert "expected 5 cells, found 4" in body["rejected"][2]["reason"]
    stored = shop.keeper.get(f"/v1/shops/{shop.id}/payments").json()["records"]
    assert [r["event_id"] for r in stored] == ["P-1", "P-5", "P-6"]
    assert stored[1]["payer_ref"] == "multi\nline"


def test_an_unusable_header_or_encoding_is_a_422_naming_the_problem(world: World) -> None:
    shop = world.shop()
    cases = {
        "sku,on_hand,counted_at,colour\n": "unknown columns: colour",
        "sku,counted_at\n": "missing columns: on_hand",
        "sku,sku,on_hand,counted_at\n": "repeated columns: sku",
        "": "no header line",
    }
    for text, reason in cases.items():
        response = upload(shop, "inventory", text)
        assert response.status_code == 422, text
        assert response.json()["error"] == "validation_failed"
        assert response.json()["fields"][0]["field"] == "body"
        assert reason in response.json()["fields"][0]["reason"]
    latin1 = upload(
        shop,
        "inventory",
        "sku,on_hand,counted_at\nTh\xe9,1,2026-11-02T09:00:00Z\n".encode("latin-1"),
    )
    assert latin1.status_code == 422
    assert "not UTF-8" in latin1.json()["fields"][0]["reason"]


def test_re_uploading_the_same_export_stores_nothing_twice(world: World) -> None:
    shop = world.shop()
    assert upload(shop, "sales", SALES_CSV).json()["accepted"] == 2

    again = upload(shop, "sales", SALES_CSV).json()

    assert (again["accepted"], again["duplicates"]) == (0, 2)


def test_only_the_shops_own_connector_or_keeper_may_upload(world: World) -> None:
    shop, other = world.shop(), world.shop()
    intruder = ShopSetup(id=shop.id, keeper=other.keeper, connector=other.connector)
    missing = world.client.post(
        "/v1/shops/00000000-0000-0000-0000-000000000000/sales/csv",
        content=SALES_CSV.encode(),
        headers={**other.connector.headers, "Content-Type": "text/csv"},
    )

    refused = upload(intruder, "sales", SALES_CSV)

    assert refused.status_code == 404
    assert refused.content == missing.content
    assert shop.keeper.get(f"/v1/shops/{shop.id}/sales").json()["records"] == []
