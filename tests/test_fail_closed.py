"""The gate fails closed: when it cannot audit or cannot decrypt, no data goes out."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import Engine, select, text, update

from cornerstore.models.records import ShopRecord
from tests.factories import Actor, ShopSetup, World, audit_log, payment, sale

UNAVAILABLE = {
    "error": "unavailable",
    "detail": "the service cannot answer safely right now; retry later",
    "fields": [],
}


def _values(records: list[dict[str, Any]]) -> set[str]:
    """The distinctive values of ingested records, as they could appear in a body."""
    out: set[str] = set()
    for record in records:
        for name, value in record.items():
            if name in ("sku", "event_id", "payer_ref", "unit_price_cents", "amount_cents"):
                out.add(str(value))
    return out


def _assert_withheld(response: httpx.Response, values: set[str]) -> None:
    assert response.status_code == 503, response.text
    assert response.json() == UNAVAILABLE
    for value in values:
        assert value not in response.text


def _distinct_sales(tag: str, n: int = 5) -> list[dict[str, Any]]:
    return [
        sale(i, event_id=f"{tag}-S-{i}", sku=f"SKU-{tag}-{i}", unit_price_cents=70_000 + i)
        for i in range(n)
    ]


def _distinct_payments(tag: str, n: int = 4) -> list[dict[str, Any]]:
    return [
        payment(i, event_id=f"{tag}-P-{i}", payer_ref=f"wx_{tag}_{i}", amount_cents=80_000 + i)
        for i in range(n)
    ]


# --- no audit record, no data -------------------------------------------------


@contextmanager
def _audit_log_unwritable(engine: Engine) -> Iterator[None]:
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE audit_entries RENAME TO audit_entries_off"))
    try:
        yield
    finally:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE audit_entries_off RENAME TO audit_entries"))


def _shop_with_a_reader(world: World) -> tuple[ShopSetup, Actor, set[str]]:
    shop = world.shop()
    sales, payments = _distinct_sales("AUD"), _distinct_payments("AUD")
    world.ingest(shop, "sales", sales)
    world.ingest(shop, "payments", payments)
    consumer = world.consumer()
    world.grant(shop, consumer, "analytics", ["sales", "payments"])
    return shop, consumer, _values(sales + payments)


@pytest.mark.parametrize("reader", ["consumer", "keeper"])
@pytest.mark.parametrize("category", ["sales", "payments"])
def test_no_data_goes_out_when_the_read_cannot_be_audited(
    world: World, reader: str, category: str
) -> None:
    shop, consumer, values = _shop_with_a_reader(world)
    actor, params = (
        (consumer, {"purpose": "analytics"}) if reader == "consumer" else (shop.keeper, {})
    )
    url = f"/v1/shops/{shop.id}/{category}"
    before = actor.get(url, **params)
    assert before.status_code == 200, before.text
    assert len(before.json()["records"]) > 0

    with _audit_log_unwritable(world.hub.engine):
        during = actor.get(url, **params)
        paged = actor.get(url, limit=1, **params)

    _assert_withheld(during, values)
    _assert_withheld(paged, values)
    # Once the log is back, reads answer again, and only the reads it recorded are in it.
    assert actor.get(url, **params).json() == before.json()
    reads = audit_log(world.principal("auditor"), action="read")
    assert [(e["principal_id"], e["decision"]) for e in reads] == [(actor.id, "allow")] * 2


def test_no_export_goes_out_when_it_cannot_be_audited(world: World) -> None:
    shop, _, values = _shop_with_a_reader(world)
    assert shop.keeper.get(f"/v1/shops/{shop.id}/export").status_code == 200

    with _audit_log_unwritable(world.hub.engine):
        during = shop.keeper.get(f"/v1/shops/{shop.id}/export")

    _assert_withheld(during, values)
    exports = audit_log(world.principal("auditor"), action="export")
    assert len(exports) == 1  # only the export that was answered


def test_refusals_are_not_answered_when_they_cannot_be_audited(world: World) -> None:
    shop, _, values = _shop_with_a_reader(world)
    snoop = world.consumer()
    other_keeper = world.shop("other").keeper

    with _audit_log_unwritable(world.hub.engine):
        no_consent = snoop.get(f"/v1/shops/{shop.id}/sales", purpose="analytics")
        by_policy = other_keeper.get(f"/v1/shops/{shop.id}/sales", purpose="analytics")

    for response in (no_consent, by_policy):
        _assert_withheld(response, values)


def test_an_audit_outage_leaves_no_gap_in_the_log(world: World) -> None:
    shop, consumer, _ = _shop_with_a_reader(world)
    # Created before the outage, so its own entry is not the newest one.
    auditor = world.principal("auditor")
    with _audit_log_unwritable(world.hub.engine):
        consumer.get(f"/v1/shops/{shop.id}/sales", purpose="analytics")
    assert consumer.get(f"/v1/shops/{shop.id}/sales", purpose="analytics").status_code == 200

    events = audit_log(auditor)

    # No gap in the sequence: the failed append did not consume a number.
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["action"] == "read"
    assert events[-1]["decision"] == "allow"
    # The read during the outage left no entry at all.
    assert [e["decision"] for e in events if e["action"] == "read"] == ["allow"]


# --- ciphertexts are bound to their row ---------------------------------------


def _rows(engine: Engine, shop: ShopSetup, category: str) -> list[tuple[int, bytes]]:
    with engine.connect() as connection:
        return [
            (row.id, bytes(row.sealed))
            for row in connection.execute(
                select(ShopRecord.id, ShopRecord.sealed)
                .where(ShopRecord.shop_id == uuid.UUID(shop.id), ShopRecord.category == category)
                .order_by(ShopRecord.occurred_at, ShopRecord.id)
            )
        ]


def _move_ciphertext(engine: Engine, sealed: bytes, onto_row: int) -> None:
    with engine.begin() as connection:
        changed = connection.execute(
            update(ShopRecord).where(ShopRecord.id == onto_row).values(sealed=sealed)
        )
        assert changed.rowcount == 1


@pytest.mark.parametrize("category", ["sales", "payments"])
def test_a_ciphertext_moved_to_another_row_of_the_shop_is_not_served(
    world: World, category: str
) -> None:
    shop, consumer, values = _shop_with_a_reader(world)
    url = f"/v1/shops/{shop.id}/{category}"
    assert consumer.get(url, purpose="analytics").status_code == 200
    rows = _rows(world.hub.engine, shop, category)

    _move_ciphertext(world.hub.engine, sealed=rows[0][1], onto_row=rows[2][0])

    _assert_withheld(consumer.get(url, purpose="analytics"), values)
    _assert_withheld(shop.keeper.get(url), values)


def test_a_ciphertext_moved_to_another_shop_is_not_served(world: World) -> None:
    shop_x, shop_y = world.shop("X"), world.shop("Y")
    sales_x, sales_y = _distinct_sales("XX"), _distinct_sales("YY")
    world.ingest(shop_x, "sales", sales_x)
    world.ingest(shop_y, "sales", sales_y)
    consumer = world.consumer()
    for shop in (shop_x, shop_y):
        world.grant(shop, consumer, "analytics", ["sales"])
    before_x = consumer.get(f"/v1/shops/{shop_x.id}/sales", purpose="analytics")
    assert consumer.get(f"/v1/shops/{shop_y.id}/sales", purpose="analytics").status_code == 200
    # Same position, same shape of record: only the shop differs.
    x_rows, y_rows = (
        _rows(world.hub.engine, shop_x, "sales"),
        _rows(world.hub.engine, shop_y, "sales"),
    )

    _move_ciphertext(world.hub.engine, sealed=x_rows[1][1], onto_row=y_rows[1][0])

    response = consumer.get(f"/v1/shops/{shop_y.id}/sales", purpose="analytics")
    _assert_withheld(response, _values(sales_x + sales_y))
    _assert_withheld(shop_y.keeper.get(f"/v1/shops/{shop_y.id}/sales"), _values(sales_x + sales_y))
    # Shop X's own record is untouched and still reads.
    assert (
        consumer.get(f"/v1/shops/{shop_x.id}/sales", purpose="analytics").json() == before_x.json()
    )


def test_a_tampered_ciphertext_is_not_served(world: World) -> None:
    shop, consumer, values = _shop_with_a_reader(world)
    rows = _rows(world.hub.engine, shop, "payments")
    sealed = bytearray(rows[1][1])
    sealed[-1] ^= 0x01

    _move_ciphertext(world.hub.engine, sealed=bytes(sealed), onto_row=rows[1][0])

    _assert_withheld(consumer.get(f"/v1/shops/{shop.id}/payments", purpose="analytics"), values)


# --- refusals stay recorded ---------------------------------------------------


def test_a_refusal_is_audited_although_the_request_failed(world: World) -> None:
    shop, _, _ = _shop_with_a_reader(world)
    snoop = world.consumer()
    other_keeper = world.shop("other").keeper

    assert snoop.get(f"/v1/shops/{shop.id}/sales", purpose="analytics").status_code == 404
    assert other_keeper.get(f"/v1/shops/{shop.id}/payments").status_code == 404

    denied = audit_log(world.principal("auditor"), decision="deny")
    assert [(e["principal_id"], e["shop_id"], e["category"], e["action"]) for e in denied] == [
        (snoop.id, shop.id, "sales", "read"),
        (other_keeper.id, shop.id, "payments", "read"),
    ]
    assert all(e["reason"] for e in denied)
    in_shop_log = audit_log(shop.keeper, f"/v1/shops/{shop.id}/access-log", decision="deny")
    assert in_shop_log == denied


def test_a_read_that_failed_on_a_bad_ciphertext_is_audited_as_refused(world: World) -> None:
    shop, consumer, _ = _shop_with_a_reader(world)
    rows = _rows(world.hub.engine, shop, "sales")
    _move_ciphertext(world.hub.engine, sealed=rows[0][1], onto_row=rows[1][0])

    assert consumer.get(f"/v1/shops/{shop.id}/sales", purpose="analytics").status_code == 503

    reads = audit_log(world.principal("auditor"), action="read")
    assert len(reads) == 1
    [event] = reads
    assert event["decision"] == "deny"
    assert event["principal_id"] == consumer.id
    assert event["shop_id"] == shop.id
    assert event["category"] == "sales"
    assert event["purpose"] == "analytics"
    assert event["reason"]
    assert event["details"].get("records", 0) == 0
    assert "AUD" not in json.dumps(event)
