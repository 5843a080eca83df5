"""Ingestion, as a shop's connector (its POS) would notice it."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from cornerstore.models.records import QuarantinedRecord
from hub.runtime import Hub
from tests.factories import T0, ShopSetup, World, count, payment, rfc3339, sale


def _read_all(shop: ShopSetup, category: str) -> list[dict[str, Any]]:
    """Everything the shop's own keeper can read back of one category."""
    response = shop.keeper.get(f"/v1/shops/{shop.id}/{category}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next"] is None
    records: list[dict[str, Any]] = body["records"]
    return records


def _raw_rows(hub: Hub, table: str) -> list[tuple[Any, ...]]:
    """Every row of a table as the database stores it, without type processing."""
    with hub.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(f"SELECT * FROM {table}"))]  # noqa: S608


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode()


def _quarantined(hub: Hub, shop: ShopSetup) -> list[dict[str, Any]]:
    table = QuarantinedRecord.__table__
    with hub.engine.connect() as connection:
        rows = connection.execute(
            select(table)
            .where(table.c.shop_id == uuid.UUID(shop.id))
            .order_by(table.c.batch_id, table.c.position)
        )
        return [dict(row) for row in rows.mappings()]


# --- good batches -------------------------------------------------------------------


def test_good_sales_are_all_accepted_and_read_back_unchanged(world: World) -> None:
    shop = world.shop()
    records = [sale(i) for i in range(6)]

    response = shop.connector.post(f"/v1/shops/{shop.id}/sales", {"records": records})

    assert response.status_code == 200, response.text
    body = response.json()
    assert {k: body[k] for k in ("accepted", "duplicates", "rejected")} == {
        "accepted": 6,
        "duplicates": 0,
        "rejected": [],
    }
    uuid.UUID(body["batch_id"])
    assert _read_all(shop, "sales") == records


def test_good_inventory_and_payments_are_read_back_unchanged(world: World) -> None:
    shop = world.shop()
    counts = [count(i) for i in range(3)]
    payments = [payment(i, method=m) for i, m in enumerate(("qr", "cash", "card"))]

    assert world.ingest(shop, "inventory", counts)["accepted"] == 3
    assert world.ingest(shop, "payments", payments)["accepted"] == 3

    assert _read_all(shop, "inventory") == counts
    assert _read_all(shop, "payments") == payments


def test_times_with_an_offset_are_read_back_as_the_same_instant_in_utc(world: World) -> None:
    shop = world.shop()
    world.ingest(shop, "sales", [sale(1, occurred_at="2026-11-02T17:30:00+08:00")])

    [record] = _read_all(shop, "sales")

    assert record["occurred_at"] == "2026-11-02T09:30:00Z"


# --- mixed batches ------------------------------------------------------------------


def _without(record: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != field}


def test_a_mixed_sales_batch_stores_the_good_and_lists_each_bad_record(world: World) -> None:
    shop = world.shop()
    records: list[Any] = [
        sale(0),
        sale(1, quantity="1"),
        sale(2, unit_price_cents=-5),
        sale(3),
        _without(sale(4), "event_id"),
        sale(5, occurred_at="2026-11-02T09:05:00"),
        sale(6, colour="red"),
        5,
        sale(8, currency="yuan"),
        sale(9),
        None,
        "S-11",
        sale(12, quantity=1.0),
        sale(13, sku="   "),
    ]

    response = shop.connector.post(f"/v1/shops/{shop.id}/sales", {"records": records})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 3
    assert body["duplicates"] == 0
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [
        (1, "quantity"),
        (2, "unit_price_cents"),
        (4, "event_id"),
        (5, "occurred_at"),
        (6, "colour"),
        (7, ""),
        (8, "currency"),
        (10, ""),
        (11, ""),
        (12, "quantity"),
        (13, "sku"),
    ]
    assert all(r["reason"] for r in body["rejected"])
    assert _read_all(shop, "sales") == [records[0], records[3], records[9]]


def test_a_mixed_payments_batch_rejects_unknown_methods_and_zero_amounts(world: World) -> None:
    shop = world.shop()
    records: list[Any] = [
        payment(0),
        payment(1, method="bitcoin"),
        payment(2, amount_cents=0),
        payment(3, amount_cents=-100),
        _without(payment(4), "payer_ref"),
        payment(5, amount_cents="1005"),
        payment(6),
    ]

    body = world.ingest(shop, "payments", records)

    assert (body["accepted"], body["duplicates"]) == (2, 0)
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [
        (1, "method"),
        (2, "amount_cents"),
        (3, "amount_cents"),
        (4, "payer_ref"),
        (5, "amount_cents"),
    ]
    assert _read_all(shop, "payments") == [records[0], records[6]]


def test_a_mixed_inventory_batch_rejects_negative_stock_and_naive_times(world: World) -> None:
    shop = world.shop()
    records: list[Any] = [
        count(0),
        count(1, on_hand=-1),
        count(2, counted_at="2026-11-02T11:00:00"),
        [count(3)],
        count(4),
    ]

    body = world.ingest(shop, "inventory", records)

    assert (body["accepted"], body["duplicates"]) == (2, 0)
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [
        (1, "on_hand"),
        (2, "counted_at"),
        (3, ""),
    ]
    assert _read_all(shop, "inventory") == [records[0], records[4]]


def test_a_record_with_several_faults_is_rejected_once(world: World) -> None:
    shop = world.shop()

    body = world.ingest(shop, "sales", [sale(0, quantity="2", unit_price_cents=-1, extra=1)])

    assert body["accepted"] == 0
    assert [r["index"] for r in body["rejected"]] == [0]
    assert _read_all(shop, "sales") == []


def test_a_batch_of_only_bad_records_stores_nothing(world: World) -> None:
    shop = world.shop()

    records: list[Any] = [5, sale(1, quantity="1")]

    body = world.ingest(shop, "sales", records)

    assert (body["accepted"], body["duplicates"]) == (0, 0)
    assert [r["index"] for r in body["rejected"]] == [0, 1]
    assert _read_all(shop, "sales") == []


def test_an_empty_batch_is_accepted_and_stores_nothing(world: World) -> None:
    shop = world.shop()

    body = world.ingest(shop, "sales", [])

    assert {k: body[k] for k in ("accepted", "duplicates", "rejected")} == {
        "accepted": 0,
        "duplicates": 0,
        "rejected": [],
    }
    assert _read_all(shop, "sales") == []


def test_an_event_time_outside_the_calendar_in_utc_is_rejected_alone(world: World) -> None:
    shop = world.shop()
    records = [
        sale(0),
        sale(1, occurred_at="0001-01-01T00:00:00+01:00"),
        sale(2, occurred_at="9999-12-31T23:59:59-01:00"),
        sale(3),
    ]

    response = shop.connector.post(f"/v1/shops/{shop.id}/sales", {"records": records})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 2
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [
        (1, "occurred_at"),
        (2, "occurred_at"),
    ]
    # The shop can still read what was stored.
    assert _read_all(shop, "sales") == [records[0], records[3]]


# --- quarantine ---------------------------------------------------------------------


def test_rejected_records_are_kept_sealed_in_quarantine(world: World, hub: Hub) -> None:
    shop = world.shop()
    secret_sku = "SKU-QUARANTINED-MOONCAKE-5521"
    records: list[Any] = [
        sale(0),
        sale(1, sku=secret_sku, quantity="1"),
        sale(2),
        sale(3, sku=secret_sku, unit_price_cents=-1),
    ]

    body = world.ingest(shop, "sales", records)

    rows = _quarantined(hub, shop)
    assert [(r["batch_id"], r["position"], r["field"], r["category"]) for r in rows] == [
        (uuid.UUID(body["batch_id"]), 1, "quantity", "sales"),
        (uuid.UUID(body["batch_id"]), 3, "unit_price_cents", "sales"),
    ]
    assert [r["reason"] for r in rows] == [r["reason"] for r in body["rejected"]]
    for row in rows:
        assert row["sealed"]
        for value in row.values():
            assert secret_sku.encode() not in _as_bytes(value)
    for raw in _raw_rows(hub, "quarantined_records"):
        for value in raw:
            assert secret_sku.encode() not in _as_bytes(value)


def test_quarantine_keeps_each_batch_apart(world: World, hub: Hub) -> None:
    shop = world.shop()

    # Two different bad records (the same one sent again is kept once: test_quarantine.py).
    lone_bad: list[Any] = [5]
    good_then_bad: list[Any] = [sale(0), 6]

    first = world.ingest(shop, "sales", lone_bad)
    second = world.ingest(shop, "sales", good_then_bad)
    world.ingest(shop, "sales", [sale(1)])

    rows = _quarantined(hub, shop)
    assert sorted((r["batch_id"], r["position"]) for r in rows) == sorted(
        [(uuid.UUID(first["batch_id"]), 0), (uuid.UUID(second["batch_id"]), 1)]
    )


# --- nothing stored twice -----------------------------------------------------------


def test_resending_a_sales_batch_stores_nothing_twice(world: World) -> None:
    shop = world.shop()
    records = [sale(i) for i in range(5)]

    first = world.ingest(shop, "sales", records)
    second = world.ingest(shop, "sales", records)

    assert (first["accepted"], first["duplicates"]) == (5, 0)
    assert (second["accepted"], second["duplicates"], second["rejected"]) == (0, 5, [])
    assert second["batch_id"] != first["batch_id"]
    assert _read_all(shop, "sales") == records


def test_a_resent_event_keeps_its_first_values(world: World) -> None:
    shop = world.shop()
    world.ingest(shop, "sales", [sale(1, quantity=2)])

    body = world.ingest(shop, "sales", [sale(1, quantity=99), sale(2)])

    assert (body["accepted"], body["duplicates"]) == (1, 1)
    assert _read_all(shop, "sales") == [sale(1, quantity=2), sale(2)]


def test_resending_payments_stores_nothing_twice(world: World) -> None:
    shop = world.shop()
    records = [payment(i) for i in range(4)]
    world.ingest(shop, "payments", records)

    body = world.ingest(shop, "payments", [*records, payment(4)])

    assert (body["accepted"], body["duplicates"]) == (1, 4)
    assert _read_all(shop, "payments") == [*records, payment(4)]


def test_duplicates_inside_one_batch_count_as_duplicates(world: World) -> None:
    shop = world.shop()

    body = world.ingest(shop, "sales", [sale(1), sale(2), sale(1), sale(1)])

    assert (body["accepted"], body["duplicates"]) == (2, 2)
    assert [r["event_id"] for r in _read_all(shop, "sales")] == ["S-1", "S-2"]


def test_the_same_event_id_may_be_used_by_two_shops(world: World) -> None:
    shop_a, shop_b = world.shop("A"), world.shop("B")

    world.ingest(shop_a, "sales", [sale(1)])
    body = world.ingest(shop_b, "sales", [sale(1)])

    assert (body["accepted"], body["duplicates"]) == (1, 0)
    assert _read_all(shop_b, "sales") == [sale(1)]


def test_inventory_counts_dedupe_on_sku_and_count_time(world: World) -> None:
    shop = world.shop()
    at = T0 + timedelta(hours=1)
    first = world.ingest(
        shop,
        "inventory",
        [
            count(1, sku="SKU-TEA", counted_at=rfc3339(at), on_hand=5),
            # Same SKU, another time: a new count.
            count(2, sku="SKU-TEA", counted_at=rfc3339(at + timedelta(hours=1)), on_hand=4),
            # Same time, another SKU: a new count.
            count(3, sku="SKU-RICE", counted_at=rfc3339(at), on_hand=7),
            # Same SKU and time as the first: a duplicate, even with another value.
            count(4, sku="SKU-TEA", counted_at=rfc3339(at), on_hand=6),
        ],
    )
    again = world.ingest(shop, "inventory", [count(1, sku="SKU-TEA", counted_at=rfc3339(at))])

    assert (first["accepted"], first["duplicates"]) == (3, 1)
    assert (again["accepted"], again["duplicates"]) == (0, 1)
    stored = _read_all(shop, "inventory")
    assert sorted((r["sku"], r["counted_at"], r["on_hand"]) for r in stored) == [
        ("SKU-RICE", rfc3339(at), 7),
        ("SKU-TEA", rfc3339(at), 5),
        ("SKU-TEA", rfc3339(at + timedelta(hours=1)), 4),
    ]


def test_an_inventory_count_resent_with_another_offset_is_a_duplicate(world: World) -> None:
    shop = world.shop()
    world.ingest(shop, "inventory", [count(1, sku="SKU-TEA", counted_at="2026-11-02T09:00:00Z")])

    body = world.ingest(
        shop, "inventory", [count(1, sku="SKU-TEA", counted_at="2026-11-02T17:00:00+08:00")]
    )

    assert (body["accepted"], body["duplicates"]) == (0, 1)
    assert len(_read_all(shop, "inventory")) == 1


# --- encryption at rest -------------------------------------------------------------


def test_shop_data_is_encrypted_at_rest(world: World, hub: Hub) -> None:
    shop = world.shop()
    secret_sku = "SKU-DRAGONFRUIT-SECRET-8812"
    secret_event = "EVT-ZEBRA-4471"
    secret_payer = "wx_payer_SECRET_PERSON_4242"
    world.ingest(shop, "sales", [sale(1, sku=secret_sku, event_id=secret_event)])
    world.ingest(shop, "payments", [payment(1, payer_ref=secret_payer)])
    world.ingest(shop, "inventory", [count(1, sku=secret_sku)])

    rows = _raw_rows(hub, "shop_records")

    assert len(rows) == 3
    for row in rows:
        for value in row:
            raw = _as_bytes(value)
            for secret in (secret_sku, secret_event, secret_payer):
                assert secret.encode() not in raw
    # The values are still there for the shop itself.
    assert _read_all(shop, "sales")[0]["sku"] == secret_sku
    assert _read_all(shop, "payments")[0]["payer_ref"] == secret_payer


# --- batch limits and malformed bodies ----------------------------------------------


def test_a_batch_over_the_limit_is_refused_whole(world: World, hub: Hub) -> None:
    limit = hub.settings.ingest_max_records
    if limit > 100_000:
        pytest.skip(f"ingest_max_records={limit} is too large to send in a test")
    shop = world.shop()
    records = [count(i) for i in range(limit + 1)]

    response = shop.connector.post(f"/v1/shops/{shop.id}/inventory", {"records": records})

    assert response.status_code == 413, response.text
    assert response.json()["error"] == "payload_too_large"
    assert _read_all(shop, "inventory") == []
    assert _quarantined(hub, shop) == []


def test_a_batch_at_the_limit_is_accepted(world: World, hub: Hub) -> None:
    limit = hub.settings.ingest_max_records
    if limit > 20_000:
        pytest.skip(f"ingest_max_records={limit} is too large to send in a test")
    shop = world.shop()

    # Tiny records, all rejected: the limit is about records, not about good ones.
    response = shop.connector.post(f"/v1/shops/{shop.id}/inventory", {"records": [0] * limit})

    assert response.status_code == 200, response.text
    assert len(response.json()["rejected"]) == limit


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body.records"),
        ({"rows": [sale(1)]}, "body.records"),
        ({"records": sale(1)}, "body.records"),
        ({"records": "S-1"}, "body.records"),
        ({"records": None}, "body.records"),
        ([sale(1)], "body"),
    ],
    ids=["no-records", "misnamed", "object", "string", "null", "bare-list"],
)
def test_a_body_without_a_records_list_is_a_validation_error(
    world: World, body: Any, field: str
) -> None:
    shop = world.shop()

    response = shop.connector.post(f"/v1/shops/{shop.id}/sales", body)

    assert response.status_code == 422, response.text
    error = response.json()
    assert error["error"] == "validation_failed"
    assert field in [f["field"] for f in error["fields"]]
    assert _read_all(shop, "sales") == []


def test_malformed_json_is_a_validation_error_that_does_not_echo_the_body(world: World) -> None:
    shop = world.shop()
    broken = '{"records": [{"sku": "SKU-LEAKY-3310", '

    response = world.client.post(
        f"/v1/shops/{shop.id}/sales",
        content=broken.encode(),
        headers={**shop.connector.headers, "Content-Type": "application/json"},
    )

    assert response.status_code == 422, response.text
    error = response.json()
    assert error["error"] == "validation_failed"
    assert [f["field"] for f in error["fields"]] == ["body"]
    assert "SKU-LEAKY-3310" not in response.text


# --- who may send -------------------------------------------------------------------


def test_a_connector_cannot_send_to_another_shop(world: World) -> None:
    shop_x, shop_y = world.shop("X"), world.shop("Y")

    to_other = shop_x.connector.post(f"/v1/shops/{shop_y.id}/sales", {"records": [sale(1)]})
    to_nowhere = shop_x.connector.post(f"/v1/shops/{uuid.uuid4()}/sales", {"records": [sale(1)]})

    assert to_other.status_code == 404, to_other.text
    assert to_other.json() == to_nowhere.json()
    assert to_other.json()["error"] == "not_found"
    assert _read_all(shop_y, "sales") == []
    assert _read_all(shop_x, "sales") == []


@pytest.mark.parametrize("role", ["consumer", "admin", "auditor"])
def test_principals_that_are_not_the_shops_connector_get_404(world: World, role: str) -> None:
    shop = world.shop()
    actor = world.admin if role == "admin" else world.principal(role)

    for category in ("sales", "inventory", "payments"):
        response = actor.post(f"/v1/shops/{shop.id}/{category}", {"records": []})
        nowhere = actor.post(f"/v1/shops/{uuid.uuid4()}/{category}", {"records": []})
        assert response.status_code == 404, (category, response.text)
        assert response.json() == nowhere.json()
    assert _read_all(shop, "sales") == []


def test_another_shops_keeper_gets_404(world: World) -> None:
    shop_x, shop_y = world.shop("X"), world.shop("Y")

    response = shop_x.keeper.post(f"/v1/shops/{shop_y.id}/sales", {"records": [sale(1)]})

    assert response.status_code == 404, response.text
    assert _read_all(shop_y, "sales") == []


def test_sending_without_a_valid_api_key_is_401(world: World) -> None:
    shop = world.shop()
    url = f"/v1/shops/{shop.id}/sales"

    anonymous = world.client.post(url, json={"records": [sale(1)]})
    wrong_key = world.client.post(
        url, json={"records": [sale(1)]}, headers={"Authorization": "Bearer cs_not-a-real-key"}
    )

    for response in (anonymous, wrong_key):
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "unauthenticated"
    assert _read_all(shop, "sales") == []


# --- audit --------------------------------------------------------------------------


def test_every_batch_is_audited_with_counts_and_no_values(world: World) -> None:
    shop = world.shop()
    secret_sku = "SKU-AUDIT-PERSIMMON-9034"
    secret_event = "EVT-AUDIT-7782"
    secret_payer = "wx_payer_AUDIT_PERSON_1177"
    batches = [
        ("sales", [sale(1, sku=secret_sku, event_id=secret_event), sale(2)]),
        ("sales", [sale(1, sku=secret_sku, event_id=secret_event), sale(3, quantity="x")]),
        ("payments", [payment(1, payer_ref=secret_payer), payment(2, method="bitcoin")]),
        ("inventory", [count(1, sku=secret_sku)]),
    ]
    results = [world.ingest(shop, category, records) for category, records in batches]
    auditor = world.principal("auditor")

    response = auditor.get("/v1/audit/events", action="ingest")

    assert response.status_code == 200, response.text
    events = response.json()["events"]
    assert [(e["category"], e["decision"]) for e in events] == [
        ("sales", "allow"),
        ("sales", "allow"),
        ("payments", "allow"),
        ("inventory", "allow"),
    ]
    for event, (_, records), result in zip(events, batches, results, strict=True):
        assert event["shop_id"] == shop.id
        assert event["principal_id"] == shop.connector.id
        assert event["principal_role"] == "connector"
        assert event["details"] == {
            "batch_id": result["batch_id"],
            "received": len(records),
            "accepted": result["accepted"],
            "duplicates": result["duplicates"],
            "rejected": len(result["rejected"]),
        }
    assert [e["details"]["accepted"] for e in events] == [2, 0, 1, 1]
    assert [e["details"]["duplicates"] for e in events] == [0, 1, 0, 0]
    assert [e["details"]["rejected"] for e in events] == [0, 1, 1, 0]
    dumped = json.dumps(events)
    for secret in (secret_sku, secret_event, secret_payer):
        assert secret not in dumped


def test_a_refused_batch_is_audited_as_denied(world: World) -> None:
    shop_x, shop_y = world.shop("X"), world.shop("Y")
    shop_x.connector.post(f"/v1/shops/{shop_y.id}/sales", {"records": [sale(1)]})
    auditor = world.principal("auditor")

    response = auditor.get("/v1/audit/events", action="ingest", decision="deny")

    assert response.status_code == 200, response.text
    [event] = response.json()["events"]
    assert event["shop_id"] == shop_y.id
    assert event["principal_id"] == shop_x.connector.id
    assert event["category"] == "sales"
