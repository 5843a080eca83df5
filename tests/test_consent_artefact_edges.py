"""Consent artefacts at the edges a review asked for: a revocation or concurrent reads
racing the daily count, validity boundaries, narrowing a rolling window, pause-sharing
beside expired consents, odd terms, history paging, and a lapse recorded once."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from consent import enforcement
from consent import versions as consent_versions
from consent.expiry import record_expiries
from cornerstore.models.consent import Consent
from cornerstore.ports import ConsentRefused
from hub.runtime import Hub
from tests.factories import T0, Actor, ShopSetup, World, audit_log, rfc3339, sale
from tests.test_consent_artefacts import (
    SALES,
    _b64url_decode,
    _change,
    _grant,
    _read,
    _refusal_reasons,
    _request,
    _terms,
    shop_with_sales_fixture,  # noqa: F401 (a fixture)
)

# --- edges a review asked for ----------------------------------------------------------------


def _allowance(hub: Hub, shop: ShopSetup, consumer: Actor, now: datetime) -> Any:
    with hub.sessions() as session:
        return enforcement.check(
            session,
            shop_id=uuid.UUID(shop.id),
            consumer_id=uuid.UUID(consumer.id),
            purpose="replenishment",
            category=SALES,
            since=None,
            until=None,
            now=now,
        )


def test_a_revocation_between_the_check_and_the_count_stops_the_read(
    world: World, hub: Hub
) -> None:
    shop, consumer = world.shop(), world.consumer()
    consent = _grant(shop, consumer)
    now = datetime.now(UTC)
    allowance = _allowance(hub, shop, consumer, now)
    _change(shop, consent["id"], "revoke")

    with pytest.raises(ConsentRefused) as refused:
        hub.consent_check.count(allowance, now)
    assert refused.value.reason == "consent_not_active"


def test_concurrent_reads_never_pass_the_daily_limit(world: World, hub: Hub) -> None:
    shop, consumer = world.shop(), world.consumer()
    _grant(shop, consumer, max_reads_per_day=3)
    now = datetime.now(UTC)
    allowance = _allowance(hub, shop, consumer, now)

    def use() -> bool:
        try:
            hub.consent_check.count(allowance, now)
        except ConsentRefused:
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda _: use(), range(16)))
    assert outcomes.count(True) == 3


def test_validity_boundaries_are_inclusive_from_and_exclusive_until(world: World, hub: Hub) -> None:
    shop, consumer = world.shop(), world.consumer()
    consent = _grant(shop, consumer)
    with hub.sessions() as session:
        row = session.get(Consent, uuid.UUID(consent["id"]))
        assert row is not None
        valid_from, expires_at = row.valid_from, row.expires_at
    assert _allowance(hub, shop, consumer, valid_from).consent_id == row.id
    with pytest.raises(ConsentRefused):
        _allowance(hub, shop, consumer, valid_from - timedelta(microseconds=1))
    assert _allowance(hub, shop, consumer, expires_at - timedelta(microseconds=1))
    with pytest.raises(ConsentRefused):
        _allowance(hub, shop, consumer, expires_at)


def test_a_rolling_window_cannot_be_narrowed_to_fixed_dates(world: World) -> None:
    shop, consumer = world.shop(), world.consumer()
    asked = _request(consumer, shop, data_range={"last_days": 30})
    now = datetime.now(UTC)
    response = shop.keeper.post(
        f"/v1/shops/{shop.id}/consent-requests/{asked['id']}/approve",
        {
            "data_range": {
                "from": rfc3339(now - timedelta(days=29)),
                "until": rfc3339(now + timedelta(days=150)),
            }
        },
    )
    assert response.status_code == 422, response.text
    assert [f["field"] for f in response.json()["fields"]] == ["body.data_range"]
    shorter = shop.keeper.post(
        f"/v1/shops/{shop.id}/consent-requests/{asked['id']}/approve",
        {"data_range": {"last_days": 7}},
    )
    assert shorter.json()["data_range"] == {"last_days": 7}


def test_pause_sharing_leaves_expired_consents_alone(
    world: World, hub: Hub, shop_with_sales: ShopSetup
) -> None:
    shop = shop_with_sales
    live, lapsed = _grant(shop, world.consumer()), _grant(shop, world.consumer())
    with hub.sessions() as session:
        session.execute(
            update(Consent)
            .where(Consent.id == uuid.UUID(lapsed["id"]))
            .values(expires_at=datetime.now(UTC))
        )
        session.commit()

    paused = shop.keeper.post(f"/v1/shops/{shop.id}/pause-sharing").json()["consents"]
    resumed = shop.keeper.post(f"/v1/shops/{shop.id}/resume-sharing").json()["consents"]

    assert [c["id"] for c in paused] == [live["id"]]
    assert [c["id"] for c in resumed] == [live["id"]]
    history = shop.keeper.get(f"/v1/shops/{shop.id}/consent-history").json()["versions"]
    assert [v["version"] for v in history if v["consent_id"] == lapsed["id"]] == [1]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"data_life": "PT0.5S"}, "body.data_life"),
        ({"valid_from": "2000-01-01T00:00:00Z"}, "body.valid_from"),
        ({"max_reads_per_day": 10**12}, "body.max_reads_per_day"),
        ({"data_range": {"last_days": 0}}, "body.data_range.last_days"),
        ({"data_range": {"last_days": 7, "from": "2026-01-01T00:00:00Z"}}, "body.data_range"),
    ],
)
def test_odd_terms_are_refused_naming_the_field(
    world: World, overrides: dict[str, Any], field: str
) -> None:
    shop, consumer = world.shop(), world.consumer()
    response = consumer.post(f"/v1/shops/{shop.id}/consent-requests", _terms(**overrides))
    assert response.status_code == 422, response.text
    assert [f["field"] for f in response.json()["fields"]] == [field]


def test_an_empty_read_window_is_refused_naming_until(
    world: World, shop_with_sales: ShopSetup
) -> None:
    shop, consumer = shop_with_sales, world.consumer()
    _grant(shop, consumer)
    response = _read(consumer, shop, since=rfc3339(T0), until=rfc3339(T0))
    assert response.status_code == 422, response.text
    assert [f["field"] for f in response.json()["fields"]] == ["query.until"]


def test_history_pages_through_every_version_in_order(world: World, hub: Hub) -> None:
    shop, consumer = world.shop(), world.consumer()
    consent = _grant(shop, consumer)
    for change in ("pause", "resume", "pause", "revoke"):
        assert _change(shop, consent["id"], change).status_code == 200

    with hub.sessions() as session:
        paged = list(consent_versions.history(session, shop_id=uuid.UUID(shop.id), page=2))

    assert [(v.version, v.change) for v in paged] == [
        (1, "granted"),
        (2, "paused"),
        (3, "resumed"),
        (4, "paused"),
        (5, "revoked"),
    ]
    whole = shop.keeper.get(f"/v1/shops/{shop.id}/consent-history").json()["versions"]
    assert [v["version"] for v in whole] == [1, 2, 3, 4, 5]


def test_a_lapse_is_recorded_once_as_a_version_with_a_receipt_and_an_event(
    world: World, hub: Hub, shop_with_sales: ShopSetup
) -> None:
    shop, consumer = shop_with_sales, world.consumer()
    hooked = consumer.client.put(
        "/v1/consumers/me/webhook",
        json={"url": "http://127.0.0.1:9/hook"},
        headers=consumer.headers,
    )
    assert hooked.status_code == 200, hooked.text
    # Revoked first: a later grant for the same purpose would supersede a live one.
    revoked = _grant(shop, consumer)
    _change(shop, revoked["id"], "revoke")
    lapsing = _grant(shop, consumer)
    now = datetime.now(UTC)
    with hub.sessions() as session:
        session.execute(
            update(Consent)
            .where(Consent.id.in_([uuid.UUID(lapsing["id"]), uuid.UUID(revoked["id"])]))
            .values(expires_at=now - timedelta(seconds=1))
        )
        session.commit()
    assert _read(consumer, shop).status_code == 404  # refused before anything is recorded

    assert record_expiries(hub) == 1
    assert record_expiries(hub) == 0

    history = shop.keeper.get(f"/v1/shops/{shop.id}/consent-history").json()["versions"]
    lapsed = [v for v in history if v["consent_id"] == lapsing["id"]]
    assert [(v["version"], v["change"], v["status"]) for v in lapsed] == [
        (1, "granted", "active"),
        (2, "expired", "expired"),
    ]
    assert lapsed[1]["changed_by_role"] == "hub"
    receipt = shop.keeper.get(f"/v1/shops/{shop.id}/consents/{lapsing['id']}/receipt").text
    assert json.loads(_b64url_decode(receipt.split(".")[1]))["consentStatus"] == "expired"
    events = consumer.get("/v1/consumers/me/webhook/deliveries").json()["deliveries"]
    assert (events[0]["payload"]["consent_id"], events[0]["payload"]["change"]) == (
        lapsing["id"],
        "expired",
    )
    assert _read(consumer, shop).status_code == 404
    assert _refusal_reasons(world, shop) == ["consent_not_valid_now", "consent_not_valid_now"]
    assert _change(shop, lapsing["id"], "revoke").status_code == 200


def test_a_narrowed_approval_supersedes_the_wider_consent_it_follows(world: World) -> None:
    shop, consumer = world.shop(), world.consumer()
    world.ingest(shop, "sales", [sale(n) for n in range(1, 4)])
    unlimited = world.grant(shop, consumer, "replenishment", ["sales"])
    asked = consumer.post(
        f"/v1/shops/{shop.id}/consent-requests",
        {
            "purpose": "replenishment",
            "categories": ["sales"],
            "expires_at": unlimited["expires_at"],
        },
    )
    assert asked.status_code == 201, asked.text

    approved = shop.keeper.post(
        f"/v1/shops/{shop.id}/consent-requests/{asked.json()['id']}/approve",
        {"max_reads_per_day": 1},
    )
    assert approved.status_code == 200, approved.text

    # The narrowed limit binds: the older, unlimited consent no longer allows a read.
    read = f"/v1/shops/{shop.id}/sales"
    assert consumer.get(read, purpose="replenishment").status_code == 200
    assert consumer.get(read, purpose="replenishment").status_code == 404
    listed = {
        c["id"]: c["status"]
        for c in shop.keeper.get(f"/v1/shops/{shop.id}/consents").json()["consents"]
    }
    assert listed == {unlimited["id"]: "superseded", asked.json()["id"]: "active"}
    # The replaced consent has a version of its own, with its receipt and audit entry.
    history = shop.keeper.get(f"/v1/shops/{shop.id}/consent-history").json()["versions"]
    [superseded] = [v for v in history if v["consent_id"] == unlimited["id"] and v["version"] == 2]
    assert (superseded["status"], superseded["change"]) == ("superseded", "superseded")
    assert superseded["receipt"]
    auditor = world.principal("auditor")
    entries = audit_log(auditor, "/v1/audit/events", action="consent.supersede")
    assert [e["details"]["consent_id"] for e in entries] == [unlimited["id"]]
    # It is over: it cannot be resumed or revoked.
    resumed = shop.keeper.post(f"/v1/shops/{shop.id}/consents/{unlimited['id']}/resume")
    assert resumed.status_code == 409


def test_a_consent_for_another_purpose_is_not_superseded(world: World) -> None:
    shop, consumer = world.shop(), world.consumer()
    analytics = world.grant(shop, consumer, "analytics", ["sales"])
    world.grant(shop, consumer, "replenishment", ["sales"])
    listed = {
        c["id"]: c["status"]
        for c in shop.keeper.get(f"/v1/shops/{shop.id}/consents").json()["consents"]
    }
    assert listed[analytics["id"]] == "active"
