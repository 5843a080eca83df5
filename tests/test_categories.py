"""The category registry: one place says what each data category is, and the rest follows it."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute
from pydantic import AwareDatetime

from cornerstore.categories import CATEGORIES, Category, InventoryIn, PaymentIn, SaleIn
from cornerstore.fieldtypes import Timestamp
from hub.app import ROUTERS


def test_every_category_has_exactly_one_entry() -> None:
    assert set(CATEGORIES) == set(Category)
    assert all(spec.category is category for category, spec in CATEGORIES.items())


@pytest.mark.parametrize("category", list(Category))
def test_an_entry_names_fields_its_schema_has(category: Category) -> None:
    spec = CATEGORIES[category]
    fields = spec.schema.model_fields
    # The event time is kept in the clear, so it must be a time, normalised to UTC.
    assert fields[spec.time_field].annotation is AwareDatetime
    assert tuple(fields[spec.time_field].metadata) == Timestamp.__metadata__  # type: ignore[attr-defined]
    assert set(spec.natural_id_fields) <= set(fields)
    assert spec.fields == tuple(fields)


def test_natural_ids_stay_what_stored_records_were_keyed_with() -> None:
    # Stored records are found again by a keyed digest of these strings: were
    # one to change, a batch sent again after an upgrade would be stored twice.
    sale = SaleIn.model_validate(
        {
            "event_id": "S-1",
            "occurred_at": "2026-03-01T10:00:00+08:00",
            "sku": "A",
            "quantity": 1,
            "unit_price_cents": 100,
        }
    )
    count = InventoryIn.model_validate(
        {"sku": "A", "on_hand": 3, "counted_at": "2026-03-01T10:00:00+08:00"}
    )
    payment = PaymentIn.model_validate(
        {
            "event_id": "P-1",
            "occurred_at": "2026-03-01T10:00:00Z",
            "amount_cents": 5,
            "method": "qr",
            "payer_ref": "payer",
        }
    )
    assert CATEGORIES[Category.sales].natural_id(sale) == "S-1"
    # The same count sent with another offset is the same count.
    assert CATEGORIES[Category.inventory].natural_id(count) == "A|2026-03-01T02:00:00+00:00"
    assert CATEGORIES[Category.payments].natural_id(payment) == "P-1"


@pytest.mark.parametrize("category", list(Category))
def test_every_category_can_be_sent_and_read(category: Category) -> None:
    routes = {
        (method, route.path)
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    path = f"/v1/shops/{{shop_id}}/{category.value}"
    # Events are added (POST); a catalogue is sent whole, replacing the one before (PUT).
    send = "PUT" if CATEGORIES[category].replaced else "POST"
    assert {(send, path), (send, f"{path}/csv"), ("GET", path)} <= routes
