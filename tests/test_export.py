"""Data portability: the shop's export holds exactly what it gave, and only the shop gets it."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tracemalloc
import uuid
import zipfile
from typing import Any

import pytest

from cornerstore.csvcells import neutralise
from cornerstore.gate import ShopExport
from hub.export.router import _stream
from hub.runtime import Hub
from tests.factories import World, audit_log, count, payment, sale

DATA_FILES = ("sales", "inventory", "payments", "catalogue", "quarantine", "consents", "access-log")


def _export(world: World, shop_id: str, actor: Any) -> zipfile.ZipFile:
    response = actor.get(f"/v1/shops/{shop_id}/export")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert f"cornerstore-shop-{shop_id}.zip" in response.headers["content-disposition"]
    return zipfile.ZipFile(io.BytesIO(response.content))


def _jsonl(archive: zipfile.ZipFile, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in archive.read(f"{name}.jsonl").decode().splitlines()]


def _csv(archive: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(archive.read(f"{name}.csv").decode())))


def test_the_export_holds_exactly_what_was_ingested(keyed_world: World) -> None:
    """With both key providers: the export decrypts through whichever holds the keys."""
    world = keyed_world
    shop = world.shop()
    consumer = world.consumer()
    consent = world.grant(shop, consumer, "replenishment", ["sales", "inventory"])
    sales = [
        sale(1, sku="SKU-康师傅红烧牛肉面", quantity=3),
        sale(2, sku='SKU-"quoted", with comma', currency="HKD"),
        sale(3, sku="SKU-line\nbreak", unit_price_cents=0, quantity=-1),
    ]
    counts = [count(1, sku="SKU-青岛啤酒 Tsingtao"), count(2, on_hand=0)]
    payments = [payment(1, payer_ref="wx_付款人_0001"), payment(2, method="cash")]
    bad = {"event_id": "S-BAD", "occurred_at": "yesterday", "sku": "SKU-X", "quantity": 1}
    world.ingest(shop, "sales", [*sales, bad])
    world.ingest(shop, "inventory", counts)
    world.ingest(shop, "payments", payments)
    assert consumer.get(f"/v1/shops/{shop.id}/sales", purpose="replenishment").status_code == 200
    other = world.shop()
    world.ingest(other, "sales", [sale(9, sku="SKU-NOT-THIS-SHOP")])

    archive = _export(world, shop.id, shop.keeper)

    names = archive.namelist()
    assert names == [f"{n}.{s}" for n in DATA_FILES for s in ("csv", "jsonl")] + ["manifest.json"]
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["shop_id"] == shop.id
    assert manifest["format"] == "cornerstore-export/1"
    for entry in manifest["files"]:
        content = archive.read(entry["name"])
        assert entry["sha256"] == hashlib.sha256(content).hexdigest()
        assert entry["bytes"] == len(content)
        if entry["name"].endswith(".jsonl"):
            assert entry["rows"] == len(content.splitlines())
        else:
            assert entry["rows"] == len(_csv(archive, entry["name"][: -len(".csv")]))

    # Byte for byte after decoding: the JSON is what was sent, the CSV its text.
    assert _jsonl(archive, "sales") == sales
    assert _jsonl(archive, "inventory") == counts
    assert _jsonl(archive, "payments") == payments
    assert _csv(archive, "sales") == [{k: str(v) for k, v in r.items()} for r in sales]
    assert _csv(archive, "payments") == [{k: str(v) for k, v in r.items()} for r in payments]
    assert "SKU-NOT-THIS-SHOP" not in archive.read("sales.csv").decode()

    (refused,) = _jsonl(archive, "quarantine")
    assert json.loads(refused["record"]) == bad
    assert refused["category"] == "sales"
    assert refused["position"] == 3
    assert refused["field"] == "occurred_at"

    (granted,) = _jsonl(archive, "consents")
    assert granted["id"] == consent["id"]
    assert granted["consumer_id"] == consumer.id
    assert sorted(granted["categories"]) == ["inventory", "sales"]

    logged = _jsonl(archive, "access-log")
    assert [e["seq"] for e in logged] == [
        e["seq"] for e in audit_log(shop.keeper, f"/v1/shops/{shop.id}/access-log")
    ]
    reads = [e for e in logged if e["action"] == "read"]
    assert [(e["principal_id"], e["purpose"]) for e in reads] == [(consumer.id, "replenishment")]
    assert logged[-1]["action"] == "export"  # the export itself is logged before it is sent


def test_only_the_shops_keeper_can_export_it(world: World) -> None:
    shop, other = world.shop(), world.shop()
    world.ingest(shop, "sales", [sale(1)])
    consumer = world.consumer()
    world.grant(shop, consumer, "analytics", ["sales", "inventory", "payments"])
    for actor in (other.keeper, shop.connector, consumer, world.admin, world.principal("auditor")):
        refused = actor.get(f"/v1/shops/{shop.id}/export")
        assert refused.status_code == 404, (actor.role, refused.text)
        assert refused.json()["error"] == "not_found"
    assert world.client.get(f"/v1/shops/{shop.id}/export").status_code == 401
    log = audit_log(shop.keeper, f"/v1/shops/{shop.id}/access-log", decision="deny")
    assert {e["action"] for e in log} == {"shop.export"}
    assert len(log) == 5


def _peak_while_exporting(hub: Hub, shop_id: str) -> tuple[int, int]:
    """Peak memory allocated while streaming the export out, and the archive's size."""
    export = ShopExport(hub, uuid.UUID(shop_id), page_size=500)
    size = 0
    tracemalloc.start()
    try:
        for chunk in _stream(hub, export):
            size += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, size


def test_export_memory_stays_bounded_as_the_shop_grows(world: World, hub: Hub) -> None:
    small, large = world.shop(), world.shop()
    world.ingest(small, "sales", [sale(n) for n in range(1_000)])
    for start in range(0, 20_000, 5_000):
        world.ingest(large, "sales", [sale(n) for n in range(start, start + 5_000)])

    small_peak, small_size = _peak_while_exporting(hub, small.id)
    large_peak, large_size = _peak_while_exporting(hub, large.id)

    assert large_size > 10 * small_size  # twenty times the records, compressed
    # Held in memory at once: a page of records and the compressor's window, not the shop.
    assert large_peak < 2 * small_peak + 1_000_000, (small_peak, large_peak)
    manifest = json.loads(_export(world, large.id, large.keeper).read("manifest.json"))
    uncompressed = sum(entry["bytes"] for entry in manifest["files"])
    assert large_peak < uncompressed / 3, (large_peak, uncompressed)


def test_an_export_reads_one_snapshot_while_the_shop_keeps_writing(world: World, hub: Hub) -> None:
    """Each data set is read twice (CSV, then JSON): both passes must see the same rows."""
    from sqlalchemy import func, select

    from cornerstore.db import hold_snapshot
    from cornerstore.models.records import ShopRecord

    shop = world.shop()
    world.ingest(shop, "sales", [sale(n) for n in range(5)])
    count = select(func.count()).where(ShopRecord.shop_id == uuid.UUID(shop.id))
    with hub.sessions() as session:
        hold_snapshot(session)
        assert session.scalar(count) == 5
        world.ingest(shop, "sales", [sale(n) for n in range(5, 9)])  # committed meanwhile
        assert session.scalar(count) == 5
    with hub.sessions() as session:
        assert session.scalar(count) == 9


def test_a_formula_sent_as_data_cannot_run_when_the_csv_is_opened(world: World) -> None:
    shop = world.shop()
    # (A leading tab or carriage return never reaches a record: text fields are trimmed.)
    formulas = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)"]
    world.ingest(
        shop,
        "sales",
        [sale(n, sku=sku, quantity=-1) for n, sku in enumerate(formulas, start=1)],
    )

    archive = _export(world, shop.id, shop.keeper)

    # The spreadsheet shows each as text; a number stays a number.
    rows = _csv(archive, "sales")
    assert [r["sku"] for r in rows] == ["'" + sku for sku in formulas]
    assert {r["quantity"] for r in rows} == {"-1"}
    # The JSON Lines keep what the shop sent, exactly.
    assert [r["sku"] for r in _jsonl(archive, "sales")] == formulas


def test_an_export_whose_keys_are_gone_is_refused_before_its_first_byte(
    keyed_world: World, keyed_hub: Hub
) -> None:
    shop = keyed_world.shop()
    keyed_world.ingest(shop, "sales", [sale(1)])
    shop_id = uuid.UUID(shop.id)
    keyed_hub.keyring.provider.destroy_shop_key(shop_id)
    keyed_hub.keyring.forget(shop_id)

    response = shop.keeper.get(f"/v1/shops/{shop.id}/export")

    assert response.status_code == 503, response.headers
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == "unavailable"


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_every_formula_start_is_neutralised_and_numbers_are_not(start: str) -> None:
    assert neutralise(start + "1") == "'" + start + "1"
    assert neutralise("SKU" + start) == "SKU" + start
    assert neutralise(-1) == -1
