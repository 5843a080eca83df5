"""A shop uploads its POS system's CSV export instead of JSON."""

from __future__ import annotations

import httpx2 as httpx

from connectors.profiles import profiles
from cornerstore.categories import CATEGORIES, Category
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
    reason = latin1.json()["fields"][0]["reason"]
    assert reason.startswith("line 2: neither UTF-8 nor Chinese text")
    assert "?encoding=" in reason


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


# --- what real shops' POS software writes ------------------------------------------------------

#: A Hangzhou shop's export: Chinese SKUs, local wall-clock times with no offset.
LOCAL_SALES = (
    "event_id,occurred_at,sku,quantity,unit_price_cents\r\n"
    "收银-0001,2026-11-28 10:05:00,康师傅红烧牛肉面,2,450\r\n"
    "收银-0002,2026/11/28 21:30,农夫山泉 550ml,1,200\r\n"
)


def _in_zone(world: World, zone: str) -> ShopSetup:
    shop = world.shop()
    changed = shop.keeper.client.patch(
        f"/v1/shops/{shop.id}", json={"time_zone": zone}, headers=shop.keeper.headers
    )
    assert changed.status_code == 200, changed.text
    return shop


def _stored(shop: ShopSetup) -> list[tuple[str, str, str]]:
    records = shop.keeper.get(f"/v1/shops/{shop.id}/sales").json()["records"]
    return [(r["event_id"], r["occurred_at"], r["sku"]) for r in records]


EXPECTED = [
    ("收银-0001", "2026-11-28T02:05:00Z", "康师傅红烧牛肉面"),
    ("收银-0002", "2026-11-28T13:30:00Z", "农夫山泉 550ml"),
]


def test_a_gbk_export_with_local_times_is_stored_exactly(world: World) -> None:
    shop = _in_zone(world, "Asia/Shanghai")

    response = upload(shop, "sales", LOCAL_SALES.encode("gbk"))

    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2
    assert _stored(shop) == EXPECTED


def test_a_spreadsheets_utf16_export_and_a_bom_are_read_as_they_are(world: World) -> None:
    # Excel's "Unicode text": UTF-16 with its byte-order mark, cells split by tabs.
    tabbed = LOCAL_SALES.replace(",", "\t")
    for body in (
        tabbed.encode("utf-16"),
        tabbed.encode("utf-16-le"),  # no mark: told by the zero bytes beside ASCII
        b"\xef\xbb\xbf" + LOCAL_SALES.encode(),
    ):
        shop = _in_zone(world, "Asia/Shanghai")
        response = upload(shop, "sales", body)
        assert response.status_code == 200, response.text
        assert _stored(shop) == EXPECTED


def test_a_wrong_encoding_is_an_error_naming_the_line_never_mojibake(world: World) -> None:
    shop = _in_zone(world, "Asia/Shanghai")
    gbk = LOCAL_SALES.encode("gbk")

    declared_wrong = shop.connector.client.post(
        f"/v1/shops/{shop.id}/sales/csv",
        params={"encoding": "utf-8"},
        content=gbk,
        headers={**shop.connector.headers, "Content-Type": "text/csv"},
    )
    unknown = shop.connector.client.post(
        f"/v1/shops/{shop.id}/sales/csv",
        params={"encoding": "ebcdic"},
        content=gbk,
        headers={**shop.connector.headers, "Content-Type": "text/csv"},
    )

    assert declared_wrong.status_code == 422
    assert declared_wrong.json()["fields"][0]["reason"].startswith("line 2: not UTF-8")
    assert unknown.status_code == 422
    assert unknown.json()["fields"][0]["field"] == "query.encoding"
    assert _stored(shop) == []


def test_a_time_the_clocks_skipped_or_showed_twice_is_refused_with_the_reason(
    world: World,
) -> None:
    shop = _in_zone(world, "America/New_York")
    text = (
        "event_id,occurred_at,sku,quantity,unit_price_cents\n"
        "N-1,2026-03-08 02:30:00,SKU-A,1,100\n"  # spring forward: 02:00 became 03:00
        "N-2,2026-11-01 01:30:00,SKU-A,1,100\n"  # fall back: 01:30 came twice
        "N-3,2026-11-01 01:30:00-05:00,SKU-A,1,100\n"  # with its offset it is clear
        "N-4,2026-07-04 12:00:00,SKU-A,1,100\n"
    )

    body = upload(shop, "sales", text).json()

    assert body["accepted"] == 2
    [skipped, twice] = body["rejected"]
    assert (skipped["line"], skipped["field"]) == (2, "occurred_at")
    assert "never happened in America/New_York" in skipped["reason"]
    assert (twice["line"], twice["field"]) == (3, "occurred_at")
    assert "happened twice" in twice["reason"]
    assert [(e, t) for e, t, _ in _stored(shop)] == [
        ("N-4", "2026-07-04T16:00:00Z"),
        ("N-3", "2026-11-01T06:30:00Z"),
    ]


def test_a_shop_without_a_time_zone_has_its_local_times_read_as_utc(world: World) -> None:
    shop = world.shop()
    assert upload(shop, "sales", LOCAL_SALES).json()["accepted"] == 2
    assert [t for _, t, _ in _stored(shop)] == ["2026-11-28T10:05:00Z", "2026-11-28T21:30:00Z"]


def test_every_fault_of_a_row_is_named_not_only_the_first(world: World) -> None:
    shop = _in_zone(world, "America/New_York")
    text = (
        "event_id,occurred_at,sku,quantity,unit_price_cents,currency\n"
        "B-1,2026-03-08 02:30:00,SKU-A,two,-5,YUAN\n"
        "B-2,2026-07-04 12:00:00,SKU-A,1,100,CNY\n"
    )

    body = upload(shop, "sales", text).json()

    [rejected] = body["rejected"]
    assert rejected["line"] == 2
    assert [e["field"] for e in rejected["errors"]] == [
        "occurred_at",
        "quantity",
        "unit_price_cents",
        "currency",
    ]
    assert (rejected["field"], rejected["reason"]) == (
        rejected["errors"][0]["field"],
        rejected["errors"][0]["reason"],
    )
    assert body["accepted"] == 1


def test_a_multipart_upload_is_read_like_a_raw_body(world: World) -> None:
    shop = _in_zone(world, "Asia/Shanghai")
    url = f"/v1/shops/{shop.id}/sales/csv"

    uploaded = shop.connector.client.post(
        url,
        files={"file": ("sales.csv", LOCAL_SALES.encode("gbk"), "text/csv")},
        headers=shop.connector.headers,
    )
    no_file = shop.connector.client.post(
        url, files={"other": ("x.csv", b"a,b\n", "text/csv")}, headers=shop.connector.headers
    )

    assert uploaded.status_code == 200, uploaded.text
    assert _stored(shop) == EXPECTED
    assert no_file.status_code == 422
    assert no_file.json()["fields"] == [{"field": "body.file", "reason": "required"}]


# --- column profiles -----------------------------------------------------------------------------


def _with_profile(world: World, profile: str, zone: str = "Asia/Shanghai") -> ShopSetup:
    shop = world.shop()
    changed = shop.keeper.client.patch(
        f"/v1/shops/{shop.id}",
        json={"time_zone": zone, "pos_profile": profile},
        headers=shop.keeper.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["pos_profile"] == profile
    return shop


#: A cloud POS's sales detail: Chinese headers, yuan with decimals, columns we do not need.
CLOUD_POS_SALES = (
    "单据号,行号,销售时间,商品编码,商品名称,数量,单价,金额,收银员\r\n"
    "XS20261128001,1,2026-11-28 10:05:00,6901028075763,康师傅红烧牛肉面,2,4.50,9.00,小王\r\n"
    "XS20261128001,2,2026-11-28 10:05:00,6921168509256,农夫山泉 550ml,1,2,2.00,小王\r\n"
    "XS20261128002,1,2026-11-28 10:20:00,6921168509256,农夫山泉 550ml,3,2.005,6.02,小王\r\n"
)


def test_a_cloud_pos_export_with_chinese_headers_in_gbk_is_stored_exactly(
    world: World,
) -> None:
    shop = _with_profile(world, "cloud-pos-zh")

    body = upload(shop, "sales", CLOUD_POS_SALES.encode("gbk")).json()

    assert body["accepted"] == 2
    [half_a_fen] = body["rejected"]
    assert (half_a_fen["line"], half_a_fen["field"]) == (4, "unit_price_cents")
    assert "not a whole number of fen" in half_a_fen["reason"]
    records = shop.keeper.get(f"/v1/shops/{shop.id}/sales").json()["records"]
    assert [
        (r["event_id"], r["occurred_at"], r["sku"], r["quantity"], r["unit_price_cents"])
        for r in records
    ] == [
        ("XS20261128001-1", "2026-11-28T02:05:00Z", "6901028075763", 2, 450),
        ("XS20261128001-2", "2026-11-28T02:05:00Z", "6921168509256", 1, 200),
    ]


def test_a_till_sheet_in_utf16_with_its_date_and_time_apart_is_stored_exactly(
    world: World,
) -> None:
    shop = _with_profile(world, "till-sheet-zh")
    sheet = (
        "小票号\t日期\t时间\t商品条码\t商品名称\t数量\t售价\t币种\r\n"
        "0001\t2026/11/28\t09:15\t6901028075763\t康师傅红烧牛肉面\t1\t¥4.50\tCNY\r\n"
    )

    response = upload(shop, "sales", sheet.encode("utf-16"))

    assert response.status_code == 200, response.text
    [record] = shop.keeper.get(f"/v1/shops/{shop.id}/sales").json()["records"]
    assert (record["event_id"], record["occurred_at"], record["unit_price_cents"]) == (
        "0001",
        "2026-11-28T01:15:00Z",
        450,
    )


def test_a_profile_says_which_columns_it_misses_and_translates_the_pos_words(
    world: World,
) -> None:
    shop = _with_profile(world, "cloud-pos-zh")
    missing = upload(shop, "sales", "单据号,销售时间,商品编码,数量\n".encode("gbk"))
    payments = (
        "流水号,支付时间,实收金额,支付方式,付款账号\n"
        "L-1,2026-11-28 10:05:00,12.00,微信,wx_a1\n"
        "L-2,2026-11-28 10:06:00,3.50,支付宝,ali_b2\n"
        "L-3,2026-11-28 10:07:00,8.00,赊账,\n"
    )

    body = upload(shop, "payments", payments.encode("gbk")).json()

    assert missing.status_code == 422
    assert missing.json()["fields"][0]["reason"] == "line 1: missing columns: 行号, 单价"
    assert body["accepted"] == 2
    assert [(r["line"], r["field"]) for r in body["rejected"]] == [(4, "method")]
    stored = shop.keeper.get(f"/v1/shops/{shop.id}/payments").json()["records"]
    assert [(r["event_id"], r["amount_cents"], r["method"]) for r in stored] == [
        ("L-1", 1200, "qr"),
        ("L-2", 350, "qr"),
    ]


def test_a_shop_picks_a_profile_that_exists(world: World) -> None:
    shop = world.shop()
    url = f"/v1/shops/{shop.id}"
    unknown = shop.keeper.client.patch(
        url, json={"pos_profile": "made-up"}, headers=shop.keeper.headers
    )
    nothing = shop.keeper.client.patch(url, json={}, headers=shop.keeper.headers)

    assert unknown.status_code == 422
    assert unknown.json()["fields"][0]["field"] == "body.pos_profile"
    assert "cloud-pos-zh" in unknown.json()["fields"][0]["reason"]
    assert nothing.status_code == 422
    # Changing the profile leaves the time zone as it was.
    _in_zone_then = shop.keeper.client.patch(
        url, json={"time_zone": "Asia/Shanghai"}, headers=shop.keeper.headers
    )
    assert _in_zone_then.status_code == 200
    changed = shop.keeper.client.patch(
        url, json={"pos_profile": "generic"}, headers=shop.keeper.headers
    ).json()
    assert (changed["time_zone"], changed["pos_profile"]) == ("Asia/Shanghai", "generic")


def test_every_profile_names_real_fields_and_every_field_a_record_needs() -> None:
    for profile in profiles().values():
        assert profile.name["en"], profile.code
        assert profile.name["zh"], profile.code
        for category, layout in profile.columns.items():
            spec = CATEGORIES[Category(category)]
            schema = spec.schema
            assert set(layout) <= set(schema.model_fields), (profile.code, category)
            required = {n for n, f in schema.model_fields.items() if f.is_required()}
            if spec.replaced:  # the hub stamps a catalogue's time itself
                required.discard(spec.time_field)
            assert required <= set(layout), (profile.code, category, required - set(layout))


def test_cells_no_till_writes_are_refused_by_row_never_a_server_error(world: World) -> None:
    shop = _with_profile(world, "cloud-pos-zh", zone="America/New_York")
    export = (
        "单据号,行号,销售时间,商品编码,商品名称,数量,单价,金额,收银员\r\n"
        "X,1,2026-11-28 10:05:00,A,面,1,Infinity,0,王\r\n"
        "X,2,2026-11-28 10:05:00,A,面,1,1e999999,0,王\r\n"
        "X,3,9999-12-31 23:30:00,A,面,1,1.00,1.00,王\r\n"
        "X,4,0001-01-01 00:10:00,A,面,1,1.00,1.00,王\r\n"
        "X,5,2026-02-30 10:00:00,A,面,1,1.00,1.00,王\r\n"
        "X,6,2026-11-28 10:05:00,A,面,1,1.00,1.00\r\n"
    )

    response = upload(shop, "sales", export.encode("gbk"))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 0
    assert [(r["line"], r["field"]) for r in body["rejected"]] == [
        (2, "unit_price_cents"),
        (3, "unit_price_cents"),
        (4, "occurred_at"),
        (5, "occurred_at"),
        (6, "occurred_at"),
        (7, ""),
    ]
    # No reason quotes a cell: reasons are kept in the clear beside the sealed record.
    assert not any("9999" in r["reason"] or "Infinity" in r["reason"] for r in body["rejected"])
    # What arrived is kept as it came, for the shop to see and fix.
    quarantined = shop.keeper.get(f"/v1/shops/{shop.id}/quarantine").json()["records"]
    assert quarantined[0]["values"]["unit_price_cents"] == "Infinity"
    assert quarantined[-1]["values"] == {
        "cells": ["X", "6", "2026-11-28 10:05:00", "A", "面", "1", "1.00", "1.00"]
    }
