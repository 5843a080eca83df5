"""Input a client can send that must be refused as bad input, never answered with a 5xx."""

from __future__ import annotations

import json

import pytest

from tests.factories import World, payment, sale
from tests.test_pos_csv import upload


def test_a_lone_surrogate_is_quarantined_not_a_crash(world: World) -> None:
    shop = world.shop()
    body = json.dumps({"records": [sale(1), sale(2, event_id="\ud800"), sale(3, sku="A\udfff")]})

    response = shop.connector.client.post(
        f"/v1/shops/{shop.id}/sales",
        content=body.encode(),
        headers={**shop.connector.headers, "Content-Type": "application/json"},
    )

    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] == 1
    assert [(r["index"], r["field"]) for r in result["rejected"]] == [(1, "event_id"), (2, "sku")]


@pytest.mark.parametrize(
    ("record", "field"),
    [
        (sale(1, quantity=10**30), "quantity"),
        (sale(1, unit_price_cents=10**13), "unit_price_cents"),
        (payment(1, amount_cents=10**13), "amount_cents"),
    ],
)
def test_absurd_numbers_are_refused_by_field(
    world: World, record: dict[str, object], field: str
) -> None:
    shop = world.shop()
    category = "payments" if "payer_ref" in record else "sales"

    result = world.ingest(shop, category, [record])

    assert result["accepted"] == 0
    assert [r["field"] for r in result["rejected"]] == [field]


def test_a_csv_number_too_long_to_convert_is_refused_on_its_line(world: World) -> None:
    shop = world.shop()
    text = (
        "event_id,occurred_at,sku,quantity,unit_price_cents\n"
        f"S-1,2026-11-02T09:00:00Z,A,{'9' * 5000},100\n"
        "S-2,2026-11-02T09:00:00Z,A,1,100\n"
    )

    result = upload(shop, "sales", text).json()

    assert result["accepted"] == 1
    assert [(r["line"], r["field"]) for r in result["rejected"]] == [(2, "quantity")]


@pytest.mark.parametrize("path", ["/v1/audit/events", "/v1/shops/{shop}/access-log"])
def test_an_audit_cursor_beyond_64_bits_is_a_422(world: World, path: str) -> None:
    shop = world.shop()
    reader = world.principal("auditor") if "audit/events" in path else shop.keeper

    response = reader.get(path.format(shop=shop.id), after=str(10**20))

    assert response.status_code == 422
    assert response.json()["fields"][0]["field"] == "query.after"


def test_a_json_number_too_long_to_parse_is_a_400_in_the_error_shape(world: World) -> None:
    shop = world.shop()
    body = '{"records": [{"quantity": ' + "9" * 5000 + "}]}"

    response = shop.connector.client.post(
        f"/v1/shops/{shop.id}/sales",
        content=body.encode(),
        headers={**shop.connector.headers, "Content-Type": "application/json"},
    )

    assert response.status_code == 400, response.text
    assert response.json()["error"] == "bad_request"
    assert "9999" not in response.text
