"""Governed reads as consumers and shopkeepers see them.

Each purpose sees exactly its fields, the shop's keeper sees everything, every
refusal looks exactly like a shop that does not exist, and pages walk the data
once in event-time order.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import update

from cornerstore.models.consent import Consent
from tests.factories import T0, Actor, ShopSetup, World, count, payment, rfc3339, sale

# What each purpose may see of each category (policies/purposes.toml), written
# out here so that a change to the catalogue has to change this spec too.
PURPOSE_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("replenishment", "sales"): ("event_id", "occurred_at", "sku", "quantity"),
    ("replenishment", "inventory"): ("sku", "on_hand", "counted_at"),
    ("analytics", "sales"): ("occurred_at", "sku", "quantity", "unit_price_cents", "currency"),
    ("analytics", "inventory"): ("sku", "on_hand", "counted_at"),
    ("analytics", "payments"): ("occurred_at", "amount_cents", "method"),
    ("credit-assessment", "sales"): ("occurred_at", "quantity", "unit_price_cents", "currency"),
    ("credit-assessment", "payments"): ("occurred_at", "amount_cents", "method", "payer_pseudonym"),
}
ALL_FIELDS = {
    "sales": ("event_id", "occurred_at", "sku", "quantity", "unit_price_cents", "currency"),
    "inventory": ("sku", "on_hand", "counted_at"),
    "payments": ("event_id", "occurred_at", "amount_cents", "method", "payer_ref"),
}
MAKERS: dict[str, Callable[[int], dict[str, Any]]] = {
    "sales": sale,
    "inventory": count,
    "payments": payment,
}


def _records(category: str, n: int = 6) -> list[dict[str, Any]]:
    return [MAKERS[category](i) for i in range(n)]


def _project(record: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: record[name] for name in fields}


def _not_found_body(world: World) -> bytes:
    """The answer for a shop id that exists nowhere: every refusal must match it."""
    stranger = world.consumer()
    response = stranger.get(f"/v1/shops/{uuid.uuid4()}/sales", purpose="analytics")
    assert response.status_code == 404, response.text
    return response.content


def _assert_refused(world: World, response: httpx.Response) -> None:
    assert response.status_code == 404, response.text
    assert response.content == _not_found_body(world)


def _field_names(response: httpx.Response) -> set[str]:
    return {f["field"] for f in response.json()["fields"]}


# --- each purpose gets exactly its fields -------------------------------------


@pytest.mark.parametrize(
    ("purpose", "category"),
    [pair for pair in PURPOSE_FIELDS if pair[1] != "payments" or pair[0] != "credit-assessment"],
)
def test_purpose_reads_exactly_its_fields_with_the_ingested_values(
    world: World, purpose: str, category: str
) -> None:
    shop = world.shop()
    ingested = _records(category)
    world.ingest(shop, category, ingested)
    consumer = world.consumer()
    world.grant(shop, consumer, purpose, [category])

    response = consumer.get(f"/v1/shops/{shop.id}/{category}", purpose=purpose)

    assert response.status_code == 200, response.text
    fields = PURPOSE_FIELDS[(purpose, category)]
    assert response.json()["records"] == [_project(r, fields) for r in ingested]


def test_replenishment_sales_are_cut_to_four_fields(world: World) -> None:
    shop = world.shop()
    world.ingest(shop, "sales", [sale(i, unit_price_cents=98_761 + i) for i in range(3)])
    replenisher = world.consumer()
    world.grant(shop, replenisher, "replenishment", ["sales"])

    response = replenisher.get(f"/v1/shops/{shop.id}/sales", purpose="replenishment")

    assert response.status_code == 200, response.text
    for record in response.json()["records"]:
        assert set(record) == {"event_id", "occurred_at", "sku", "quantity"}
    assert "9876" not in response.text  # prices never go out for replenishment
    assert "CNY" not in response.text


def test_analytics_payments_carry_no_payer(world: World) -> None:
    shop = world.shop()
    payments = [payment(i, payer_ref=f"wx_payer_distinct_{i}") for i in range(4)]
    world.ingest(shop, "payments", payments)
    analyst = world.consumer()
    world.grant(shop, analyst, "analytics", ["payments"])

    response = analyst.get(f"/v1/shops/{shop.id}/payments", purpose="analytics")

    assert response.status_code == 200, response.text
    records = response.json()["records"]
    assert len(records) == 4
    for record in records:
        assert set(record) == {"occurred_at", "amount_cents", "method"}
    assert "wx_payer" not in response.text
    assert "payer" not in response.text


def _pseudonyms(lender: Actor, shop: ShopSetup) -> list[str]:
    response = lender.get(f"/v1/shops/{shop.id}/payments", purpose="credit-assessment")
    assert response.status_code == 200, response.text
    records = response.json()["records"]
    for record in records:
        assert set(record) == {"occurred_at", "amount_cents", "method", "payer_pseudonym"}
    return [r["payer_pseudonym"] for r in records]


def test_credit_assessment_sees_a_stable_per_lender_pseudonym_instead_of_the_payer(
    world: World,
) -> None:
    shop = world.shop()
    payers = ["wx_alice", "wx_bob", "wx_alice", "wx_carol", "wx_bob", "wx_alice"]
    payments = [payment(i, payer_ref=p) for i, p in enumerate(payers)]
    world.ingest(shop, "payments", payments)
    lender_a, lender_b = world.consumer("lender-a"), world.consumer("lender-b")
    for lender in (lender_a, lender_b):
        world.grant(shop, lender, "credit-assessment", ["payments"])

    seen_by_a = _pseudonyms(lender_a, shop)
    seen_by_b = _pseudonyms(lender_b, shop)

    # The other fields are the ingested ones.
    response = lender_a.get(f"/v1/shops/{shop.id}/payments", purpose="credit-assessment")
    assert [
        {k: v for k, v in r.items() if k != "payer_pseudonym"} for r in response.json()["records"]
    ] == [_project(p, ("occurred_at", "amount_cents", "method")) for p in payments]
    # Same payer, same lender: same pseudonym; different payers: different ones.
    for seen in (seen_by_a, seen_by_b):
        by_payer: dict[str, set[str]] = {}
        for payer, pseudonym in zip(payers, seen, strict=True):
            by_payer.setdefault(payer, set()).add(pseudonym)
        assert all(len(p) == 1 for p in by_payer.values()), by_payer
        assert len({next(iter(p)) for p in by_payer.values()}) == 3
    # Stable from one read to the next.
    assert _pseudonyms(lender_a, shop) == seen_by_a
    # Two lenders cannot join on it.
    assert set(seen_by_a).isdisjoint(seen_by_b)
    # Never the payer_ref itself, and the payer_ref never goes out.
    assert set(seen_by_a + seen_by_b).isdisjoint(payers)
    assert "wx_" not in response.text


# --- the shop's own keeper ----------------------------------------------------


@pytest.mark.parametrize("category", ["sales", "inventory", "payments"])
def test_keeper_reads_own_shop_without_purpose_and_sees_every_field(
    world: World, category: str
) -> None:
    shop = world.shop()
    ingested = _records(category)
    world.ingest(shop, category, ingested)

    response = shop.keeper.get(f"/v1/shops/{shop.id}/{category}")

    assert response.status_code == 200, response.text
    assert response.json()["records"] == [_project(r, ALL_FIELDS[category]) for r in ingested]


def test_event_times_come_back_as_the_same_instant_in_utc(world: World) -> None:
    shop = world.shop()
    world.ingest(
        shop,
        "sales",
        [sale(1, occurred_at="2026-11-02T17:30:00+08:00", sku="乌龙茶 500ml", quantity=-2)],
    )

    response = shop.keeper.get(f"/v1/shops/{shop.id}/sales")

    assert response.status_code == 200, response.text
    [record] = response.json()["records"]
    assert record["occurred_at"] == "2026-11-02T09:30:00Z"
    assert record["sku"] == "乌龙茶 500ml"
    assert record["quantity"] == -2


# --- purpose validation -------------------------------------------------------


def test_consumer_without_purpose_gets_422_naming_the_purpose(world: World) -> None:
    shop = world.shop()
    world.ingest(shop, "sales", _records("sales"))
    consumer = world.consumer()
    world.grant(shop, consumer, "analytics", ["sales"])

    response = consumer.get(f"/v1/shops/{shop.id}/sales")

    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation_failed"
    assert "query.purpose" in _field_names(response)
    assert "SKU-" not in response.text


def test_unknown_purpose_gets_422(world: World) -> None:
    shop = world.shop()
    world.ingest(shop, "sales", _records("sales"))
    consumer = world.consumer()
    world.grant(shop, consumer, "analytics", ["sales"])

    response = consumer.get(f"/v1/shops/{shop.id}/sales", purpose="curiosity")

    assert response.status_code == 422, response.text
    assert "query.purpose" in _field_names(response)
    assert "SKU-" not in response.text


# --- refusals: all 404, identical to a shop that does not exist ---------------


def test_no_consent_is_404(world: World) -> None:
    shop = world.shop()
    world.ingest(shop, "sales", _records("sales"))
    consumer = world.consumer()

    _assert_refused(world, consumer.get(f"/v1/shops/{shop.id}/sales", purpose="analytics"))


def test_revoked_consent_refuses_the_very_next_read(world: World) -> None:
    shop = world.shop()
    world.ingest(shop, "sales", _records("sales"))
    consumer = world.consumer()
    consent = world.grant(shop, consumer, "replenishment", ["sales"])
    url = f"/v1/shops/{shop.id}/sales"
    assert consumer.get(url, purpose="replenishment").status_code == 200

    revoked = shop.keeper.post(f"/v1/shops/{shop.id}/consents/{consent['id']}/revoke")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"

    _assert_refused(world, consumer.get(url, purpose="replenishment"))


def test_another_consumers_consent_does_not_carry_over(world: World) -> None:
    shop = world.shop()
    world.ingest(shop, "sales", _records("sales"))
    consumer_a, consumer_b = world.consumer(), world.consumer()
    world.grant(shop, consumer_a, "analytics", ["sales"])
    url = f"/v1/shops/{shop.id}/sales"
    assert consumer_a.get(url, purpose="analytics").status_code == 200

    _assert_refused(world, consumer_b.get(url, purpose="analytics"))


def test_consent_for_another_purpose_is_404(world: World) -> None:
    shop = world.shop()
    world.ingest(shop, "sales", _records("sales"))
    consumer = world.consumer()
    world.grant(shop, consumer, "analytics", ["sales"])
    url = f"/v1/shops/{shop.id}/sales"
    assert consumer.get(url, purpose="analytics").status_code == 200

    _assert_refused(world, consumer.get(url, purpose="replenishment"))


def test_consent_for_another_category_is_404(world: World) -> None:
    shop = world.shop()
    world.ingest(shop, "sales", _records("sales"))
    world.ingest(shop, "inventory", _records("inventory"))
    consumer = world.consumer()
    world.grant(shop, consumer, "replenishment", ["sales"])
    assert consumer.get(f"/v1/shops/{shop.id}/sales", purpose="replenishment").status_code == 200

    _assert_refused(world, consumer.get(f"/v1/shops/{shop.id}/inventory", purpose="replenishment"))


def test_category_the_purpose_never_allows_is_404(world: World) -> None:
    shop = world.shop()
    world.ingest(shop, "payments", _records("payments"))
    consumer = world.consumer()
    # Consents this consumer does hold: payments for analytics, sales for replenishment.
    world.grant(shop, consumer, "analytics", ["payments"])
    world.grant(shop, consumer, "replenishment", ["sales"])
    url = f"/v1/shops/{shop.id}/payments"
    assert consumer.get(url, purpose="analytics").status_code == 200

    _assert_refused(world, consumer.get(url, purpose="replenishment"))


def test_replenishment_consent_cannot_even_be_granted_for_payments(world: World) -> None:
    shop = world.shop()
    consumer = world.consumer()

    response = shop.keeper.post(
        f"/v1/shops/{shop.id}/consents",
        {
            "consumer_id": consumer.id,
            "purpose": "replenishment",
            "categories": ["payments"],
            "expires_at": rfc3339(datetime.now(UTC) + timedelta(days=1)),
        },
    )

    assert response.status_code == 422, response.text
    assert "body.categories" in _field_names(response)


def test_expired_consent_is_404(world: World) -> None:
    shop = world.shop()
    world.ingest(shop, "sales", _records("sales"))
    consumer = world.consumer()
    consent = world.grant(shop, consumer, "analytics", ["sales"])
    url = f"/v1/shops/{shop.id}/sales"
    assert consumer.get(url, purpose="analytics").status_code == 200

    with world.hub.engine.begin() as connection:
        connection.execute(
            update(Consent)
            .where(Consent.id == uuid.UUID(consent["id"]))
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )

    _assert_refused(world, consumer.get(url, purpose="analytics"))
    listed = shop.keeper.get(f"/v1/shops/{shop.id}/consents")
    assert [c["status"] for c in listed.json()["consents"]] == ["expired"]


@pytest.mark.parametrize("category", ["sales", "inventory", "payments"])
@pytest.mark.parametrize("purpose", [None, "analytics"])
def test_keeper_of_another_shop_is_404(world: World, category: str, purpose: str | None) -> None:
    shop_x, shop_y = world.shop("X"), world.shop("Y")
    world.ingest(shop_y, category, _records(category))
    url = f"/v1/shops/{shop_y.id}/{category}"
    assert shop_y.keeper.get(url).status_code == 200

    params = {"purpose": purpose} if purpose else {}
    _assert_refused(world, shop_x.keeper.get(url, **params))


def test_keeper_of_another_shop_cannot_read_its_access_log(world: World) -> None:
    shop_x, shop_y = world.shop("X"), world.shop("Y")
    world.ingest(shop_y, "sales", _records("sales"))
    url = f"/v1/shops/{shop_y.id}/access-log"
    assert shop_y.keeper.get(url).status_code == 200

    _assert_refused(world, shop_x.keeper.get(url))


@pytest.mark.parametrize("category", ["sales", "inventory", "payments"])
@pytest.mark.parametrize("purpose", [None, "analytics"])
def test_connector_cannot_read_its_own_shop(
    world: World, category: str, purpose: str | None
) -> None:
    shop = world.shop()
    world.ingest(shop, category, _records(category))

    params = {"purpose": purpose} if purpose else {}
    _assert_refused(world, shop.connector.get(f"/v1/shops/{shop.id}/{category}", **params))


@pytest.mark.parametrize("role", ["auditor", "admin"])
@pytest.mark.parametrize("category", ["sales", "inventory", "payments"])
@pytest.mark.parametrize("purpose", [None, "analytics"])
def test_auditor_and_admin_cannot_read_shop_data(
    world: World, role: str, category: str, purpose: str | None
) -> None:
    shop = world.shop()
    world.ingest(shop, category, _records(category))
    reader = world.admin if role == "admin" else world.principal("auditor")

    params = {"purpose": purpose} if purpose else {}
    _assert_refused(world, reader.get(f"/v1/shops/{shop.id}/{category}", **params))


# --- pagination and time windows ----------------------------------------------

# Event minutes of ten sales, sent out of order; three share minute 2 so that
# a page boundary falls between records with the same event time.
MINUTES = [7, 2, 9, 0, 2, 5, 1, 8, 6, 2]


def _ten_sales(world: World) -> tuple[ShopSetup, list[dict[str, Any]]]:
    shop = world.shop()
    sales = [sale(i, at=T0 + timedelta(minutes=m)) for i, m in enumerate(MINUTES)]
    world.ingest(shop, "sales", sales)
    return shop, sales


def _walk(reader: Actor, url: str, **params: Any) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        response = reader.get(url, **query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["records"])
        cursor = body["next"]
        if cursor is None:
            return pages
        assert len(pages) < 20, "the cursor never ends"


@pytest.mark.parametrize("reader", ["keeper", "consumer"])
def test_following_next_returns_every_record_once_in_time_order(world: World, reader: str) -> None:
    shop, sales = _ten_sales(world)
    params: dict[str, Any] = {"limit": 3}
    actor = shop.keeper
    if reader == "consumer":
        actor = world.consumer()
        world.grant(shop, actor, "replenishment", ["sales"])
        params["purpose"] = "replenishment"

    pages = _walk(actor, f"/v1/shops/{shop.id}/sales", **params)

    assert [len(p) for p in pages] == [3, 3, 3, 1]
    seen = [r["event_id"] for page in pages for r in page]
    assert sorted(seen) == sorted(s["event_id"] for s in sales)
    assert len(set(seen)) == 10
    times = [r["occurred_at"] for page in pages for r in page]
    assert times == sorted(s["occurred_at"] for s in sales)


def test_last_page_has_next_null(world: World) -> None:
    shop, _ = _ten_sales(world)

    first = shop.keeper.get(f"/v1/shops/{shop.id}/sales", limit=10)
    over = shop.keeper.get(f"/v1/shops/{shop.id}/sales", limit=9)

    assert first.status_code == 200, first.text
    assert len(first.json()["records"]) == 10
    assert first.json()["next"] is None
    assert over.json()["next"] is not None
    last = shop.keeper.get(f"/v1/shops/{shop.id}/sales", limit=9, cursor=over.json()["next"])
    assert len(last.json()["records"]) == 1
    assert last.json()["next"] is None


def test_since_is_inclusive_and_until_exclusive(world: World) -> None:
    shop, sales = _ten_sales(world)
    since, until = T0 + timedelta(minutes=2), T0 + timedelta(minutes=7)

    pages = _walk(
        shop.keeper,
        f"/v1/shops/{shop.id}/sales",
        since=rfc3339(since),
        until=rfc3339(until),
        limit=2,
    )

    got = [r["event_id"] for page in pages for r in page]
    expected = {s["event_id"] for s, m in zip(sales, MINUTES, strict=True) if 2 <= m < 7}
    assert sorted(got) == sorted(expected)
    assert len(got) == len(expected) == 5


def test_time_window_applies_to_consumers_too(world: World) -> None:
    shop, sales = _ten_sales(world)
    consumer = world.consumer()
    world.grant(shop, consumer, "replenishment", ["sales"])

    response = consumer.get(
        f"/v1/shops/{shop.id}/sales",
        purpose="replenishment",
        since=rfc3339(T0 + timedelta(minutes=8)),
    )

    assert response.status_code == 200, response.text
    expected = [s for s, m in zip(sales, MINUTES, strict=True) if m >= 8]
    expected.sort(key=lambda s: s["occurred_at"])
    assert response.json()["records"] == [
        _project(s, PURPOSE_FIELDS[("replenishment", "sales")]) for s in expected
    ]


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!",
        "%%%%",
        _b64("yesterday|12"),
        _b64("2026-11-02T09:00:00|3"),  # no offset
        _b64("2026-11-02T09:00:00+00:00|three"),
        _b64("2026-11-02T09:00:00+00:00|" + "9" * 30),  # no row id is that large
        _b64("2026-11-02T09:00:00+00:00|-4"),
        _b64("9999-12-31T23:59:59-05:00|3"),  # past the end of time in UTC
    ],
)
def test_garbage_cursor_is_422_naming_the_cursor(world: World, cursor: str) -> None:
    shop, _ = _ten_sales(world)

    response = shop.keeper.get(f"/v1/shops/{shop.id}/sales", cursor=cursor, limit=3)

    assert response.status_code == 422, response.text
    assert "query.cursor" in _field_names(response)
    assert "SKU-" not in response.text


@pytest.mark.parametrize("limit", [0, -1])
def test_limit_below_one_is_422(world: World, limit: int) -> None:
    shop, _ = _ten_sales(world)

    response = shop.keeper.get(f"/v1/shops/{shop.id}/sales", limit=limit)

    assert response.status_code == 422, response.text
    assert "query.limit" in _field_names(response)
