"""Consent artefacts as shopkeepers and consumers meet them: the catalogue, the
request/approve/refuse flow, pauses, one test per constraint a read must meet, and
the versions, receipts and history every change leaves.

The edges a review asked for are in tests/test_consent_artefact_edges.py, which
shares this module's helpers."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from cornerstore.models.audit import AuditEntry
from cornerstore.models.consent import Consent
from hub.runtime import Hub
from tests.factories import T0, Actor, ShopSetup, World, audit_log, rfc3339, sale

SALES = "sales"


def _future(days: int = 30) -> str:
    return rfc3339(datetime.now(UTC) + timedelta(days=days))


def _terms(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "purpose": "replenishment",
        "categories": ["sales"],
        "expires_at": _future(),
    }
    body.update(overrides)
    return body


def _request(consumer: Actor, shop: ShopSetup, **overrides: Any) -> dict[str, Any]:
    response = consumer.post(f"/v1/shops/{shop.id}/consent-requests", _terms(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _grant(shop: ShopSetup, consumer: Actor, **overrides: Any) -> dict[str, Any]:
    response = shop.keeper.post(
        f"/v1/shops/{shop.id}/consents", {"consumer_id": consumer.id, **_terms(**overrides)}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _read(consumer: Actor, shop: ShopSetup, category: str = SALES, **params: Any) -> Any:
    params.setdefault("purpose", "replenishment")
    return consumer.get(f"/v1/shops/{shop.id}/{category}", **params)


def _change(shop: ShopSetup, consent_id: str, what: str) -> Any:
    return shop.keeper.post(f"/v1/shops/{shop.id}/consents/{consent_id}/{what}")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _refusal_reasons(world: World, shop: ShopSetup) -> list[str]:
    auditor = world.principal("auditor")
    entries = audit_log(auditor, shop_id=shop.id, action="read", decision="deny")
    return [e["reason"] for e in entries]


@pytest.fixture(name="shop_with_sales")
def shop_with_sales_fixture(world: World) -> ShopSetup:
    shop = world.shop()
    world.ingest(shop, SALES, [sale(i, at=T0 + timedelta(days=i)) for i in range(5)])
    return shop


# --- the catalogue ---------------------------------------------------------------------------


def test_the_purpose_catalogue_is_public_bilingual_and_names_dpv_terms(world: World) -> None:
    response = world.client.get("/v1/purposes")
    assert response.status_code == 200, response.text
    purposes = {p["code"]: p for p in response.json()["purposes"]}
    assert set(purposes) == {"replenishment", "analytics", "credit-assessment"}
    credit = purposes["credit-assessment"]
    assert credit["dpv"] == "https://w3id.org/dpv#CreditChecking"
    assert credit["name"] == {"en": "Credit assessment", "zh": "信用评估"}
    assert "payer_ref" not in credit["fields"]["payments"]
    assert credit["max_validity"] == "P180D"
    assert "unit_price_cents" not in purposes["replenishment"]["fields"]["sales"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"expires_at": _future(400)}, "body.expires_at"),
        ({"data_life": "P31D"}, "body.data_life"),
        ({"data_range": {"last_days": 181}}, "body.data_range"),
        (
            {"data_range": {"from": "2026-01-01T00:00:00Z", "until": "2026-12-01T00:00:00Z"}},
            "body.data_range",
        ),
    ],
)
def test_terms_beyond_the_purposes_limits_are_refused_naming_the_field(
    world: World, overrides: dict[str, Any], field: str
) -> None:
    shop, consumer = world.shop(), world.consumer()
    response = consumer.post(f"/v1/shops/{shop.id}/consent-requests", _terms(**overrides))
    assert response.status_code == 422, response.text
    assert [f["field"] for f in response.json()["fields"]] == [field]


def test_terms_at_the_purposes_limits_are_accepted(world: World) -> None:
    shop, consumer = world.shop(), world.consumer()
    asked = _request(
        consumer,
        shop,
        expires_at=_future(364),
        data_life="P30D",
        data_range={"last_days": 180},
    )
    assert asked["data_life"] == "P30D"
    assert asked["data_range"] == {"last_days": 180}


# --- request, approve, narrow, refuse --------------------------------------------------------


def test_a_request_waits_for_the_shopkeeper_and_approval_opens_reads(
    world: World, shop_with_sales: ShopSetup
) -> None:
    shop, consumer = shop_with_sales, world.consumer()
    asked = _request(consumer, shop)
    assert (asked["status"], asked["version"]) == ("requested", 1)
    assert _read(consumer, shop).status_code == 404
    listed = shop.keeper.get(f"/v1/shops/{shop.id}/consents").json()["consents"]
    assert [(c["id"], c["status"]) for c in listed] == [(asked["id"], "requested")]

    approved = shop.keeper.post(f"/v1/shops/{shop.id}/consent-requests/{asked['id']}/approve")

    assert approved.status_code == 200, approved.text
    assert (approved.json()["status"], approved.json()["version"]) == ("active", 2)
    assert _read(consumer, shop).status_code == 200
    mine = consumer.get("/v1/consumers/me/consents").json()["consents"]
    assert [(c["id"], c["status"]) for c in mine] == [(asked["id"], "active")]


def test_approval_may_narrow_but_never_widen(world: World, shop_with_sales: ShopSetup) -> None:
    shop, consumer = shop_with_sales, world.consumer()
    world.ingest(shop, "inventory", [{"sku": "A", "on_hand": 3, "counted_at": rfc3339(T0)}])
    asked = _request(consumer, shop, categories=["sales", "inventory"], max_reads_per_day=10)
    url = f"/v1/shops/{shop.id}/consent-requests/{asked['id']}/approve"

    wider = shop.keeper.post(url, {"max_reads_per_day": 11, "data_life": "P365D"})
    assert wider.status_code == 422, wider.text
    assert sorted(f["field"] for f in wider.json()["fields"]) == [
        "body.data_life",
        "body.max_reads_per_day",
    ]

    narrowed = shop.keeper.post(url, {"categories": ["sales"], "max_reads_per_day": 3})
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["categories"] == ["sales"]
    assert narrowed.json()["max_reads_per_day"] == 3
    assert _read(consumer, shop).status_code == 200
    assert _read(consumer, shop, "inventory").status_code == 404


def test_a_refused_request_never_opens_and_cannot_be_approved_later(
    world: World, shop_with_sales: ShopSetup
) -> None:
    shop, consumer = shop_with_sales, world.consumer()
    asked = _request(consumer, shop)
    base = f"/v1/shops/{shop.id}/consent-requests/{asked['id']}"

    refused = shop.keeper.post(f"{base}/refuse")

    assert refused.status_code == 200, refused.text
    assert refused.json()["status"] == "refused"
    assert shop.keeper.post(f"{base}/approve").status_code == 409
    assert _read(consumer, shop).status_code == 404


def test_a_consumer_cannot_approve_its_own_request(
    world: World, shop_with_sales: ShopSetup
) -> None:
    shop, consumer = shop_with_sales, world.consumer()
    asked = _request(consumer, shop)
    response = consumer.post(f"/v1/shops/{shop.id}/consent-requests/{asked['id']}/approve")
    assert response.status_code == 404
    assert _read(consumer, shop).status_code == 404


def test_a_request_for_a_shop_that_does_not_exist_is_404(world: World) -> None:
    consumer = world.consumer()
    response = consumer.post(
        "/v1/shops/00000000-0000-4000-8000-000000000000/consent-requests", _terms()
    )
    assert response.status_code == 404


# --- pause, resume, revoke, pause-sharing ----------------------------------------------------


def test_pause_stops_reads_and_resume_restores_them(
    world: World, shop_with_sales: ShopSetup
) -> None:
    shop, consumer = shop_with_sales, world.consumer()
    consent = _grant(shop, consumer)

    assert _change(shop, consent["id"], "pause").json()["status"] == "paused"
    assert _read(consumer, shop).status_code == 404
    assert _change(shop, consent["id"], "pause").status_code == 409
    assert _change(shop, consent["id"], "resume").json()["status"] == "active"
    assert _read(consumer, shop).status_code == 200
    assert _change(shop, consent["id"], "revoke").json()["version"] == 4
    assert _change(shop, consent["id"], "resume").status_code == 409
    assert _read(consumer, shop).status_code == 404


def test_pause_sharing_stops_every_consent_and_resume_sharing_restores_only_those(
    world: World, shop_with_sales: ShopSetup
) -> None:
    shop = shop_with_sales
    a, b, c = world.consumer(), world.consumer(), world.consumer()
    consent_a, consent_b = _grant(shop, a), _grant(shop, b)
    consent_c = _grant(shop, c)
    _change(shop, consent_c["id"], "pause")

    paused = shop.keeper.post(f"/v1/shops/{shop.id}/pause-sharing")

    assert paused.status_code == 200, paused.text
    assert {x["id"] for x in paused.json()["consents"]} == {consent_a["id"], consent_b["id"]}
    assert [_read(x, shop).status_code for x in (a, b, c)] == [404, 404, 404]

    resumed = shop.keeper.post(f"/v1/shops/{shop.id}/resume-sharing")

    assert {x["id"] for x in resumed.json()["consents"]} == {consent_a["id"], consent_b["id"]}
    assert [_read(x, shop).status_code for x in (a, b, c)] == [200, 200, 404]


# --- one test per constraint: refused exactly outside it --------------------------------------


def test_purpose_a_consent_reads_only_for_its_purpose(
    world: World, shop_with_sales: ShopSetup
) -> None:
    shop, consumer = shop_with_sales, world.consumer()
    _grant(shop, consumer)
    assert _read(consumer, shop, purpose="replenishment").status_code == 200
    assert _read(consumer, shop, purpose="analytics").status_code == 404


def test_category_a_consent_reads_only_its_categories(
    world: World, shop_with_sales: ShopSetup
) -> None:
    shop, consumer = shop_with_sales, world.consumer()
    world.ingest(shop, "inventory", [{"sku": "A", "on_hand": 3, "counted_at": rfc3339(T0)}])
    _grant(shop, consumer, categories=["sales"])
    assert _read(consumer, shop, SALES).status_code == 200
    assert _read(consumer, shop, "inventory").status_code == 404
    assert _refusal_reasons(world, shop) == ["category_not_consented"]


def test_mode_an_aggregate_only_consent_gives_no_rows(
    world: World, shop_with_sales: ShopSetup
) -> None:
    shop, rows_consumer, aggregate_consumer = shop_with_sales, world.consumer(), world.consumer()
    _grant(shop, rows_consumer, access_mode="rows")
    _grant(shop, aggregate_consumer, access_mode="aggregate-only")
    assert _read(rows_consumer, shop).status_code == 200
    assert _read(aggregate_consumer, shop).status_code == 404
    assert _refusal_reasons(world, shop) == ["aggregate_only"]


def test_range_a_fixed_range_answers_exactly_the_records_inside_it(
    world: World, shop_with_sales: ShopSetup
) -> None:
    shop, consumer = shop_with_sales, world.consumer()
    # Sales at T0 + 0..4 days; the consent covers [T0 + 1 day, T0 + 3 days).
    _grant(
        shop,
        consumer,
        data_range={
            "from": rfc3339(T0 + timedelta(days=1)),
            "until": rfc3339(T0 + timedelta(days=3)),
        },
    )

    everything = _read(consumer, shop)
    assert everything.status_code == 200, everything.text
    assert [r["event_id"] for r in everything.json()["records"]] == ["S-1", "S-2"]
    inside = _read(consumer, shop, since=rfc3339(T0 + timedelta(days=2)))
    assert [r["event_id"] for r in inside.json()["records"]] == ["S-2"]
    outside = _read(consumer, shop, since=rfc3339(T0 + timedelta(days=3)))
    assert outside.status_code == 404
    assert _refusal_reasons(world, shop) == ["outside_data_range"]


def test_range_a_rolling_window_moves_with_time(world: World) -> None:
    shop, consumer = world.shop(), world.consumer()
    now = datetime.now(UTC)
    world.ingest(
        shop,
        SALES,
        [sale(1, at=now - timedelta(days=9)), sale(2, at=now - timedelta(days=6))],
    )
    _grant(shop, consumer, data_range={"last_days": 7})
    answered = _read(consumer, shop)
    assert [r["event_id"] for r in answered.json()["records"]] == ["S-2"]


def test_frequency_reads_beyond_the_daily_limit_are_refused_and_uses_are_counted(
    world: World, shop_with_sales: ShopSetup
) -> None:
    shop, consumer = shop_with_sales, world.consumer()
    consent = _grant(shop, consumer, max_reads_per_day=2)

    assert [_read(consumer, shop).status_code for _ in range(3)] == [200, 200, 404]

    listed = {
        c["id"]: c for c in shop.keeper.get(f"/v1/shops/{shop.id}/consents").json()["consents"]
    }
    assert listed[consent["id"]]["uses"] == 2
    assert listed[consent["id"]]["last_used_at"] is not None
    assert _refusal_reasons(world, shop) == ["frequency_limit"]


def test_frequency_the_count_starts_again_on_a_new_day(
    world: World, hub: Hub, shop_with_sales: ShopSetup
) -> None:
    shop, consumer = shop_with_sales, world.consumer()
    consent = _grant(shop, consumer, max_reads_per_day=1)
    assert _read(consumer, shop).status_code == 200
    assert _read(consumer, shop).status_code == 404
    with hub.sessions() as session:
        session.execute(
            update(Consent)
            .where(Consent.id == uuid.UUID(consent["id"]))
            .values(use_day="2000-01-01")
        )
        session.commit()
    assert _read(consumer, shop).status_code == 200


def test_status_only_an_active_consent_reads(world: World, shop_with_sales: ShopSetup) -> None:
    shop, consumer = shop_with_sales, world.consumer()
    consent = _grant(shop, consumer)
    assert _read(consumer, shop).status_code == 200
    _change(shop, consent["id"], "revoke")
    assert _read(consumer, shop).status_code == 404
    assert _refusal_reasons(world, shop) == ["consent_not_active"]


def test_validity_a_consent_reads_from_valid_from_until_its_expiry(
    world: World, hub: Hub, shop_with_sales: ShopSetup
) -> None:
    shop, consumer = shop_with_sales, world.consumer()
    later = _grant(shop, consumer, valid_from=_future(1))
    assert _read(consumer, shop).status_code == 404
    assert _refusal_reasons(world, shop) == ["consent_not_valid_now"]

    now = datetime.now(UTC)
    with hub.sessions() as session:
        session.execute(
            update(Consent)
            .where(Consent.id == uuid.UUID(later["id"]))
            .values(valid_from=now - timedelta(seconds=1))
        )
        session.commit()
    assert _read(consumer, shop).status_code == 200
    with hub.sessions() as session:
        session.execute(
            update(Consent).where(Consent.id == uuid.UUID(later["id"])).values(expires_at=now)
        )
        session.commit()
    # Expiry needs no job: the consent denies, and reads as expired, from that instant.
    assert _read(consumer, shop).status_code == 404
    listed = shop.keeper.get(f"/v1/shops/{shop.id}/consents").json()["consents"]
    assert [c["status"] for c in listed] == ["expired"]


# --- versions, receipts, history -------------------------------------------------------------


def test_every_change_is_a_new_version_with_its_own_receipt(
    world: World, shop_with_sales: ShopSetup
) -> None:
    shop, consumer, stranger = shop_with_sales, world.consumer(), world.consumer()
    asked = _request(consumer, shop)
    shop.keeper.post(f"/v1/shops/{shop.id}/consent-requests/{asked['id']}/approve")
    _change(shop, asked["id"], "pause")
    url = f"/v1/shops/{shop.id}/consents/{asked['id']}/receipt"

    receipts = [consumer.get(url, version=v) for v in (1, 2, 3)]

    assert [r.status_code for r in receipts] == [200, 200, 200]
    assert all(r.headers["content-type"].startswith("application/jose") for r in receipts)
    claims = [json.loads(_b64url_decode(r.text.split(".")[1])) for r in receipts]
    assert [c["consentStatus"] for c in claims] == ["requested", "active", "paused"]
    assert [c["artefact"]["version"] for c in claims] == [1, 2, 3]
    assert claims[0]["previous"] is None
    for earlier, later in zip(receipts, claims[1:], strict=False):
        digest = hashlib.sha256(earlier.text.encode()).digest()
        assert later["previous"]["receipt_sha256"] == _b64url(digest)
    assert shop.keeper.get(url).text == receipts[2].text
    assert stranger.get(url).status_code == 404
    assert consumer.get(url, version=4).status_code == 404


def test_the_shopkeeper_sees_the_history_and_auditors_export_it_as_csv(
    world: World, shop_with_sales: ShopSetup
) -> None:
    shop, consumer = shop_with_sales, world.consumer()
    other_shop = world.shop("other")
    asked = _request(consumer, shop)
    shop.keeper.post(f"/v1/shops/{shop.id}/consent-requests/{asked['id']}/approve")
    _change(shop, asked["id"], "revoke")

    history = shop.keeper.get(f"/v1/shops/{shop.id}/consent-history")
    assert history.status_code == 200, history.text
    changes = [(v["version"], v["change"], v["status"]) for v in history.json()["versions"]]
    assert changes == [
        (1, "requested", "requested"),
        (2, "approved", "active"),
        (3, "revoked", "revoked"),
    ]
    assert [v["changed_by"] for v in history.json()["versions"]] == [
        consumer.id,
        shop.keeper.id,
        shop.keeper.id,
    ]
    assert other_shop.keeper.get(f"/v1/shops/{shop.id}/consent-history").status_code == 404

    auditor = world.principal("auditor")
    exported = auditor.get("/v1/consent-history", format="csv")
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/csv")
    rows = [r for r in csv.DictReader(io.StringIO(exported.text)) if r["consent_id"] == asked["id"]]
    assert [(r["version"], r["change"], r["purpose"]) for r in rows] == [
        ("1", "requested", "replenishment"),
        ("2", "approved", "replenishment"),
        ("3", "revoked", "replenishment"),
    ]
    assert shop.keeper.get("/v1/consent-history").status_code == 403


def test_every_change_is_in_the_audit_log(
    world: World, hub: Hub, shop_with_sales: ShopSetup
) -> None:
    shop, consumer = shop_with_sales, world.consumer()
    asked = _request(consumer, shop)
    shop.keeper.post(f"/v1/shops/{shop.id}/consent-requests/{asked['id']}/approve")
    _change(shop, asked["id"], "pause")
    with hub.sessions() as session:
        actions = [
            (e.action, e.details["version"])
            for e in session.scalars(
                select(AuditEntry)
                .where(
                    AuditEntry.action.like("consent.%"), AuditEntry.shop_id == uuid.UUID(shop.id)
                )
                .order_by(AuditEntry.seq)
            )
        ]
    assert actions == [("consent.request", 1), ("consent.approve", 2), ("consent.pause", 3)]
