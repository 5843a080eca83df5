"""The shop's product catalogue: sent whole, read back, barcodes checked, and seen by each
consumer only as far as its purpose allows (replenishment: names, never the barcode)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx2 as httpx

from connectors import service
from cornerstore.categories import Category
from cornerstore.db import session_scope
from cornerstore.identity import Caller
from cornerstore.models.principals import Role
from hub.runtime import Hub
from tests.factories import ShopSetup, World, sale
from tests.test_pos_csv import _with_profile
from tests.test_web_console import sign_in

NOODLES = {
    "sku": "SKU-NOODLE-KSF-BEEF",
    "name_zh": "康师傅红烧牛肉面",
    "name_en": "Master Kong Braised Beef Noodles",
    "gtin": "6901028075763",
    "category": "方便食品",
    "case_pack": 24,
    "unit": "袋",
}
WATER = {
    "sku": "SKU-WATER-NFS-550",
    "name_zh": "农夫山泉饮用天然水 550ml",
    "gtin": "6921168509256",
    "case_pack": 24,
    "unit": "瓶",
}


def _put(shop: ShopSetup, items: list[Any]) -> httpx.Response:
    return shop.connector.client.put(
        f"/v1/shops/{shop.id}/catalogue", json={"items": items}, headers=shop.connector.headers
    )


def _catalogue(shop: ShopSetup) -> list[dict[str, Any]]:
    response = shop.keeper.get(f"/v1/shops/{shop.id}/catalogue")
    assert response.status_code == 200, response.text
    records: list[dict[str, Any]] = response.json()["records"]
    return sorted(records, key=lambda item: str(item["sku"]))


def test_a_catalogue_sent_whole_reads_back_and_replaces_the_one_before(world: World) -> None:
    shop = world.shop()

    first = _put(shop, [NOODLES, WATER])
    kept = _catalogue(shop)
    second = _put(shop, [{**WATER, "case_pack": 12}])

    assert first.status_code == 200, first.text
    assert first.json()["accepted"] == 2
    assert [{k: v for k, v in item.items() if k != "updated_at"} for item in kept] == [
        NOODLES,
        {**WATER, "name_en": None, "category": None},
    ]
    assert all(item["updated_at"].endswith("Z") for item in kept)
    assert second.json()["accepted"] == 1
    [water] = _catalogue(shop)
    assert (water["sku"], water["case_pack"]) == (WATER["sku"], 12)


def test_a_barcode_with_a_wrong_check_digit_is_refused_and_the_rest_kept(world: World) -> None:
    shop = world.shop()
    typo = {**NOODLES, "sku": "SKU-TYPO", "gtin": "6901028075764"}
    short = {**NOODLES, "sku": "SKU-SHORT", "gtin": "69010280757"}

    body = _put(shop, [NOODLES, typo, short, {**WATER, "case_pack": 0}]).json()

    assert body["accepted"] == 1
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [
        (1, "gtin"),
        (2, "gtin"),
        (3, "case_pack"),
    ]
    assert "check digit" in body["rejected"][0]["reason"]
    assert "13 digits" in body["rejected"][1]["reason"]
    assert [item["sku"] for item in _catalogue(shop)] == [NOODLES["sku"]]


def test_a_pos_catalogue_export_with_chinese_headers_is_read_by_its_profile(
    world: World,
) -> None:
    shop = _with_profile(world, "cloud-pos-zh")
    export = (
        "商品编码,商品名称,条码,分类,箱规,单位,零售价\r\n"
        "SKU-NOODLE-KSF-BEEF,康师傅红烧牛肉面,6901028075763,方便食品,24,袋,4.50\r\n"
        "SKU-WATER-NFS-550,农夫山泉饮用天然水 550ml,6921168509256,饮料,24,瓶,2.00\r\n"
    )

    response = shop.connector.client.put(
        f"/v1/shops/{shop.id}/catalogue/csv",
        content=export.encode("gbk"),
        headers={**shop.connector.headers, "Content-Type": "text/csv"},
    )

    assert response.status_code == 200, response.text
    assert [(i["sku"], i["name_zh"], i["category"], i["case_pack"]) for i in _catalogue(shop)] == [
        ("SKU-NOODLE-KSF-BEEF", "康师傅红烧牛肉面", "方便食品", 24),
        ("SKU-WATER-NFS-550", "农夫山泉饮用天然水 550ml", "饮料", 24),
    ]


def test_replenishment_sees_names_and_case_packs_never_barcodes(world: World) -> None:
    shop = world.shop()
    _put(shop, [NOODLES, WATER])
    grocer, analyst = world.consumer("Fresh Route"), world.consumer("Market Insight")
    world.grant(shop, grocer, "replenishment", ["sales", "inventory", "catalogue"])
    world.grant(shop, analyst, "analytics", ["sales"])
    url = f"/v1/shops/{shop.id}/catalogue"

    seen = grocer.get(url, purpose="replenishment")
    refused = analyst.get(url, purpose="analytics")

    assert seen.status_code == 200, seen.text
    [noodles, _] = sorted(seen.json()["records"], key=lambda item: str(item["sku"]))
    assert set(noodles) == {
        "sku",
        "name_zh",
        "name_en",
        "category",
        "case_pack",
        "unit",
        "updated_at",
    }
    assert noodles["name_zh"] == NOODLES["name_zh"]
    assert "6901028075763" not in seen.text
    assert refused.status_code == 404


def test_the_portal_and_the_summary_name_products_in_the_shopkeepers_language(
    world: World,
) -> None:
    shop = world.shop()
    _put(shop, [{**NOODLES, "sku": "SKU-A"}])
    now = datetime.now(UTC)
    world.ingest(
        shop, "sales", [sale(n, sku=sku, at=now) for n, sku in enumerate(["SKU-A", "SKU-B"])]
    )
    sign_in(world, shop.keeper.id)

    summary = shop.keeper.get(f"/v1/shops/{shop.id}/analytics/summary").json()
    chinese = world.client.get(
        f"/portal/shops/{shop.id}/insights", headers={"Accept-Language": "zh-CN"}
    ).text
    english = world.client.get(
        f"/portal/shops/{shop.id}/insights", headers={"Accept-Language": "en"}
    ).text

    named = {item["sku"]: item["name_zh"] for item in summary["best_sellers"]}
    assert named == {"SKU-A": NOODLES["name_zh"], "SKU-B": None}
    assert f'<span class="product">{NOODLES["name_zh"]} <small class="sku">SKU-A</small>' in chinese
    assert f'<span class="product">{NOODLES["name_en"]} <small class="sku">SKU-A</small>' in english
    # A product the catalogue does not name keeps its code.
    assert '<span class="sku">SKU-B</span>' in english


def test_two_catalogues_sent_at_once_follow_each_other_and_never_mix(
    world: World, hub: Hub
) -> None:
    shop = world.shop()
    shop_id = uuid.UUID(shop.id)
    pos = Caller(uuid.UUID(shop.connector.id), "POS", Role.connector, frozenset([shop_id]))
    first = [{"sku": "A", "name_zh": "甲"}, {"sku": "B", "name_zh": "乙"}]
    second = [{"sku": "B", "name_zh": "乙二"}, {"sku": "C", "name_zh": "丙"}]
    version = hub.authorizer.policy_version
    finished = threading.Event()

    def send_second() -> None:
        with session_scope(hub.sessions) as session:
            cipher = hub.keyring.cipher(session, shop_id)
            service.replace(
                session, cipher, pos, Category.catalogue, second, policy_version=version
            )
        finished.set()

    with session_scope(hub.sessions) as session:
        cipher = hub.keyring.cipher(session, shop_id)
        service.replace(session, cipher, pos, Category.catalogue, first, policy_version=version)
        racing = threading.Thread(target=send_second)
        racing.start()
        # The first still holds the shop: the second waits rather than slip in beside it.
        assert not finished.wait(1.0)
    racing.join(timeout=30)

    assert finished.is_set()
    assert {item["sku"]: item["name_zh"] for item in _catalogue(shop)} == {"B": "乙二", "C": "丙"}
