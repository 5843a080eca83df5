"""Bad input is a 4xx naming its field, never a 5xx: NUL bytes, epoch times, unknown filters."""

from __future__ import annotations

from typing import Any

import pytest

from consent.service import AUDIT_ACTIONS
from cornerstore.access import AuthorizeShop
from cornerstore.authz import AuditedPurpose, PurposeName
from cornerstore.categories import Category
from cornerstore.ports import AuditAction
from tests.factories import World, sale
from tests.routes import endpoints, permits

NUL = "a\u0000b"


def _fields(response: Any) -> list[str]:
    return [f["field"] for f in response.json()["fields"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": NUL}, "body.name"),
        ({"name": "Corner", "district": NUL}, "body.district"),
    ],
)
def test_a_nul_in_a_shop_is_a_422_naming_the_field(
    world: World, body: dict[str, str], field: str
) -> None:
    response = world.admin.post("/v1/shops", body)
    assert response.status_code == 422, response.text
    assert _fields(response) == [field]


def test_a_nul_in_a_principal_name_is_a_422(world: World) -> None:
    response = world.admin.post("/v1/principals", {"name": NUL, "role": "auditor"})
    assert response.status_code == 422, response.text
    assert _fields(response) == ["body.name"]


def test_a_nul_in_a_record_is_refused_by_its_field(world: World) -> None:
    shop = world.shop()
    result = world.ingest(shop, "sales", [sale(1, sku=NUL)])
    assert [(r["index"], r["field"]) for r in result["rejected"]] == [(0, "sku")]
    assert "NUL" in result["rejected"][0]["reason"]


def test_a_nul_in_a_webhook_url_is_a_422(world: World) -> None:
    consumer = world.consumer()
    response = consumer.client.put(
        "/v1/consumers/me/webhook",
        json={"url": f"https://lender.example/{NUL}"},
        headers=consumer.headers,
    )
    assert response.status_code == 422, response.text
    assert _fields(response) == ["body.url"]


@pytest.mark.parametrize("when", [1700000000, "1700000000", 1700000000.5, "2026-03-01T09:30:00"])
def test_a_time_that_is_not_rfc3339_with_an_offset_is_refused(world: World, when: Any) -> None:
    shop = world.shop()
    result = world.ingest(shop, "sales", [sale(1, occurred_at=when)])
    assert result["accepted"] == 0
    assert [r["field"] for r in result["rejected"]] == ["occurred_at"]
    assert "RFC 3339" in result["rejected"][0]["reason"]


def test_a_read_window_in_epoch_seconds_is_a_422(world: World) -> None:
    shop = world.shop()
    response = shop.keeper.get(f"/v1/shops/{shop.id}/sales", since="1700000000")
    assert response.status_code == 422, response.text
    assert _fields(response) == ["query.since"]


@pytest.mark.parametrize(("name", "value"), [("action", "nonsense"), ("purpose", NUL)])
def test_an_unknown_audit_filter_is_a_422_listing_the_allowed_values(
    world: World, name: str, value: str
) -> None:
    auditor = world.principal("auditor")
    response = auditor.get("/v1/audit/events", **{name: value})
    assert response.status_code == 422, response.text
    assert _fields(response) == [f"query.{name}"]
    reason = response.json()["fields"][0]["reason"]
    assert "'consent.revoke'" in reason if name == "action" else "'owner'" in reason


def test_the_audit_action_filter_finds_what_the_hub_records(world: World) -> None:
    shop, consumer = world.shop(), world.consumer()
    world.grant(shop, consumer, "replenishment", ["sales"])
    auditor = world.principal("auditor")
    response = auditor.get("/v1/audit/events", action="consent.grant")
    assert response.status_code == 200, response.text
    assert [e["action"] for e in response.json()["events"]] == ["consent.grant"]


def test_every_action_the_hub_records_is_a_filter_value() -> None:
    assert set(AUDIT_ACTIONS.values()) <= set(AuditAction)
    # A refused request about a shop is recorded as resource.action (reads and
    # writes of shop data as read and ingest).
    refusals = {
        f"{permit.resource}.{permit.action}"
        for _method, _path, route in endpoints()
        for permit in permits(route.dependant)
        if isinstance(permit, AuthorizeShop) and not isinstance(permit.resource, Category)
    }
    assert refusals
    assert refusals <= set(AuditAction)


def test_the_audited_purposes_are_the_catalogue_and_owner() -> None:
    assert {p.value for p in AuditedPurpose} == {p.value for p in PurposeName} | {"owner"}


def test_the_consent_list_filters_by_status(world: World) -> None:
    shop, consumer = world.shop(), world.consumer()
    granted = world.grant(shop, consumer, "replenishment", ["sales"])
    asked = consumer.post(
        f"/v1/shops/{shop.id}/consent-requests",
        {
            "purpose": "analytics",
            "categories": ["sales"],
            "expires_at": granted["expires_at"],
        },
    )
    assert asked.status_code == 201, asked.text

    def listed(status: str) -> list[str]:
        response = shop.keeper.get(f"/v1/shops/{shop.id}/consents", status=status)
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["consents"]]

    assert listed("requested") == [asked.json()["id"]]
    assert listed("active") == [granted["id"]]
    assert listed("revoked") == []
    refused = shop.keeper.get(f"/v1/shops/{shop.id}/consents", status="bogus")
    assert refused.status_code == 422
    assert _fields(refused) == ["query.status"]
