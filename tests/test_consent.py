"""Consents, as a shopkeeper would notice them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import update

from cornerstore.models.consent import Consent
from hub.runtime import Hub
from tests.factories import Actor, ShopSetup, World, payment, rfc3339, sale


def _consents(shop: ShopSetup) -> list[dict[str, Any]]:
    response = shop.keeper.get(f"/v1/shops/{shop.id}/consents")
    assert response.status_code == 200, response.text
    consents: list[dict[str, Any]] = response.json()["consents"]
    return consents


def _grant_body(consumer_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "consumer_id": consumer_id,
        "purpose": "replenishment",
        "categories": ["sales"],
        "expires_at": rfc3339(datetime.now(UTC) + timedelta(days=30)),
    }
    body.update(overrides)
    return body


def _revoke(actor: Actor, shop_id: str, consent_id: str) -> Any:
    return actor.post(f"/v1/shops/{shop_id}/consents/{consent_id}/revoke")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- grant, list, revoke ------------------------------------------------------------


def test_grant_list_and_revoke_a_consent(world: World) -> None:
    shop = world.shop()
    consumer = world.consumer()
    expires_at = datetime.now(UTC) + timedelta(days=30)

    granted = shop.keeper.post(
        f"/v1/shops/{shop.id}/consents",
        _grant_body(
            consumer.id,
            purpose="analytics",
            categories=["sales", "payments"],
            expires_at=rfc3339(expires_at),
        ),
    )

    assert granted.status_code == 201, granted.text
    consent = granted.json()
    uuid.UUID(consent["id"])
    assert consent["status"] == "active"
    assert consent["shop_id"] == shop.id
    assert consent["consumer_id"] == consumer.id
    assert consent["purpose"] == "analytics"
    assert sorted(consent["categories"]) == ["payments", "sales"]
    assert _parse(consent["expires_at"]) == expires_at
    assert consent["revoked_at"] is None
    assert _consents(shop) == [consent]

    revoked = _revoke(shop.keeper, shop.id, consent["id"])

    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["id"] == consent["id"]
    assert revoked.json()["status"] == "revoked"
    assert revoked.json()["revoked_at"] is not None
    assert _parse(revoked.json()["revoked_at"]) >= _parse(consent["granted_at"])
    [listed] = _consents(shop)
    assert listed["status"] == "revoked"
    assert listed["revoked_at"] == revoked.json()["revoked_at"]

    again = _revoke(shop.keeper, shop.id, consent["id"])

    assert again.status_code == 409, again.text
    assert again.json()["error"] == "conflict"
    assert _consents(shop)[0]["revoked_at"] == listed["revoked_at"]


def test_the_grant_answer_and_the_list_agree_whatever_offset_was_sent(world: World) -> None:
    shop = world.shop()
    consumer = world.consumer()
    expires_at = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    sent = expires_at.astimezone(timezone(timedelta(hours=8))).isoformat()
    assert sent.endswith("+08:00")

    granted = shop.keeper.post(
        f"/v1/shops/{shop.id}/consents", _grant_body(consumer.id, expires_at=sent)
    )

    assert granted.status_code == 201, granted.text
    assert _parse(granted.json()["expires_at"]) == expires_at
    assert _consents(shop) == [granted.json()]


def test_consents_list_in_grant_order_and_only_for_their_shop(world: World) -> None:
    shop, other = world.shop("A"), world.shop("B")
    consumers = [world.consumer() for _ in range(3)]
    ids = [world.grant(shop, c, "replenishment", ["sales"])["id"] for c in consumers]
    world.grant(other, consumers[0], "analytics", ["payments"])

    assert [c["id"] for c in _consents(shop)] == ids
    assert [c["purpose"] for c in _consents(other)] == ["analytics"]


def test_a_shop_without_consents_lists_none(world: World) -> None:
    shop = world.shop()

    assert _consents(shop) == []


def test_revoking_one_consent_leaves_the_others_active(world: World) -> None:
    shop = world.shop()
    first = world.grant(shop, world.consumer(), "replenishment", ["sales"])
    second = world.grant(shop, world.consumer(), "analytics", ["sales"])

    assert _revoke(shop.keeper, shop.id, first["id"]).status_code == 200

    assert {c["id"]: c["status"] for c in _consents(shop)} == {
        first["id"]: "revoked",
        second["id"]: "active",
    }


def test_revoking_an_unknown_consent_is_404(world: World) -> None:
    shop = world.shop()

    response = _revoke(shop.keeper, shop.id, str(uuid.uuid4()))

    assert response.status_code == 404, response.text
    assert response.json()["error"] == "not_found"


# --- grant validation ---------------------------------------------------------------


def _refused_fields(shop: ShopSetup, body: dict[str, Any]) -> list[str]:
    response = shop.keeper.post(f"/v1/shops/{shop.id}/consents", body)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["error"] == "validation_failed"
    assert all(f["reason"] for f in error["fields"])
    fields = [str(f["field"]) for f in error["fields"]]
    assert _consents(shop) == []
    return fields


def test_a_grant_to_an_unknown_principal_is_refused(world: World) -> None:
    shop = world.shop()

    assert _refused_fields(shop, _grant_body(str(uuid.uuid4()))) == ["body.consumer_id"]


@pytest.mark.parametrize("role", ["keeper", "connector", "auditor", "admin"])
def test_a_grant_to_a_principal_who_is_not_a_consumer_is_refused(world: World, role: str) -> None:
    shop = world.shop()
    grantee = {
        "keeper": shop.keeper,
        "connector": shop.connector,
        "auditor": world.principal("auditor"),
        "admin": world.admin,
    }[role]

    assert _refused_fields(shop, _grant_body(grantee.id)) == ["body.consumer_id"]


@pytest.mark.parametrize(
    ("purpose", "categories"),
    [
        ("replenishment", ["payments"]),
        ("replenishment", ["sales", "payments"]),
        ("credit-assessment", ["inventory"]),
    ],
)
def test_a_purpose_never_covers_categories_outside_its_policy(
    world: World, purpose: str, categories: list[str]
) -> None:
    shop = world.shop()
    consumer = world.consumer()

    fields = _refused_fields(shop, _grant_body(consumer.id, purpose=purpose, categories=categories))

    assert fields == ["body.categories"]


@pytest.mark.parametrize(
    ("purpose", "categories"),
    [
        ("replenishment", ["sales", "inventory"]),
        ("analytics", ["sales", "inventory", "payments"]),
        ("credit-assessment", ["sales", "payments"]),
    ],
)
def test_a_purpose_covers_the_categories_its_policy_allows(
    world: World, purpose: str, categories: list[str]
) -> None:
    shop = world.shop()

    consent = world.grant(shop, world.consumer(), purpose, categories)

    assert sorted(consent["categories"]) == sorted(categories)


@pytest.mark.parametrize(
    "categories", [[], ["receipts"], "sales", None], ids=["empty", "unknown", "string", "null"]
)
def test_categories_must_be_a_non_empty_list_of_known_categories(
    world: World, categories: Any
) -> None:
    shop = world.shop()
    consumer = world.consumer()

    fields = _refused_fields(shop, _grant_body(consumer.id, categories=categories))

    assert fields
    assert all(f.startswith("body.categories") for f in fields)


@pytest.mark.parametrize(
    "expires_at",
    [
        rfc3339(datetime.now(UTC) - timedelta(minutes=1)),
        "2020-01-01T00:00:00+08:00",
        "2099-01-01T00:00:00",
        "next tuesday",
        "9999-12-31T23:59:59-01:00",
    ],
    ids=["just-past", "long-past", "no-timezone", "not-a-time", "after-year-9999-in-utc"],
)
def test_expiry_must_be_a_future_time_with_a_timezone(world: World, expires_at: str) -> None:
    shop = world.shop()
    consumer = world.consumer()

    assert _refused_fields(shop, _grant_body(consumer.id, expires_at=expires_at)) == [
        "body.expires_at"
    ]


@pytest.mark.parametrize("purpose", ["marketing", "Replenishment", "", "owner"])
def test_an_unknown_purpose_is_refused(world: World, purpose: str) -> None:
    shop = world.shop()
    consumer = world.consumer()

    assert _refused_fields(shop, _grant_body(consumer.id, purpose=purpose)) == ["body.purpose"]


@pytest.mark.parametrize("missing", ["consumer_id", "purpose", "categories", "expires_at"])
def test_a_grant_missing_a_field_is_refused(world: World, missing: str) -> None:
    shop = world.shop()
    body = _grant_body(world.consumer().id)
    del body[missing]

    assert _refused_fields(shop, body) == [f"body.{missing}"]


def test_a_grant_with_several_faults_names_each_field(world: World) -> None:
    shop = world.shop()

    fields = _refused_fields(
        shop,
        _grant_body(
            shop.connector.id,
            categories=["payments"],
            expires_at="2020-01-01T00:00:00Z",
        ),
    )

    assert sorted(fields) == ["body.categories", "body.consumer_id", "body.expires_at"]


# --- expiry -------------------------------------------------------------------------


def _set_expiry(hub: Hub, consent_id: str, expires_at: datetime) -> None:
    with hub.engine.begin() as connection:
        connection.execute(
            update(Consent).where(Consent.id == uuid.UUID(consent_id)).values(expires_at=expires_at)
        )


def test_a_consent_past_its_expiry_lists_as_expired_and_reads_stop(world: World, hub: Hub) -> None:
    shop = world.shop()
    world.ingest(shop, "sales", [sale(1)])
    consumer = world.consumer()
    consent = world.grant(shop, consumer, "replenishment", ["sales"])
    still_valid = world.grant(shop, world.consumer(), "replenishment", ["sales"])
    url = f"/v1/shops/{shop.id}/sales"
    assert consumer.get(url, purpose="replenishment").status_code == 200

    _set_expiry(hub, consent["id"], datetime.now(UTC) - timedelta(seconds=1))

    statuses = {c["id"]: c["status"] for c in _consents(shop)}
    assert statuses == {consent["id"]: "expired", still_valid["id"]: "active"}
    assert consumer.get(url, purpose="replenishment").status_code == 404


# --- who may manage a shop's consents -----------------------------------------------


def test_another_shops_keeper_gets_404_for_the_shops_consents(world: World) -> None:
    shop_x, shop_y = world.shop("X"), world.shop("Y")
    consumer = world.consumer()
    consent = world.grant(shop_y, consumer, "replenishment", ["sales"])
    nowhere = str(uuid.uuid4())
    keeper_x = shop_x.keeper

    answers = {
        "list": (
            keeper_x.get(f"/v1/shops/{shop_y.id}/consents"),
            keeper_x.get(f"/v1/shops/{nowhere}/consents"),
        ),
        "grant": (
            keeper_x.post(f"/v1/shops/{shop_y.id}/consents", _grant_body(consumer.id)),
            keeper_x.post(f"/v1/shops/{nowhere}/consents", _grant_body(consumer.id)),
        ),
        "revoke": (
            _revoke(keeper_x, shop_y.id, consent["id"]),
            _revoke(keeper_x, nowhere, consent["id"]),
        ),
    }

    for name, (other_shop, no_shop) in answers.items():
        assert other_shop.status_code == 404, (name, other_shop.text)
        assert other_shop.json() == no_shop.json(), name
    assert [(c["id"], c["status"]) for c in _consents(shop_y)] == [(consent["id"], "active")]


def test_a_keeper_cannot_revoke_another_shops_consent_through_their_own_shop(
    world: World,
) -> None:
    shop_x, shop_y = world.shop("X"), world.shop("Y")
    consent = world.grant(shop_y, world.consumer(), "replenishment", ["sales"])

    response = _revoke(shop_x.keeper, shop_x.id, consent["id"])

    assert response.status_code == 404, response.text
    assert _consents(shop_y)[0]["status"] == "active"


def test_a_keeper_of_two_shops_manages_both(world: World) -> None:
    shop_a, shop_b = world.shop("A"), world.shop("B")
    keeper = world.principal("shopkeeper", shops=[shop_a.id, shop_b.id])
    consumer = world.consumer()

    for shop in (shop_a, shop_b):
        response = keeper.post(f"/v1/shops/{shop.id}/consents", _grant_body(consumer.id))
        assert response.status_code == 201, response.text

    assert len(_consents(shop_a)) == len(_consents(shop_b)) == 1


@pytest.mark.parametrize("role", ["consumer", "connector", "auditor", "admin"])
def test_other_roles_get_404_on_a_shops_consents(world: World, role: str) -> None:
    shop = world.shop()
    consumer = world.consumer()
    consent = world.grant(shop, consumer, "replenishment", ["sales"])
    actor = {
        "consumer": consumer,
        "connector": shop.connector,
        "auditor": world.principal("auditor"),
        "admin": world.admin,
    }[role]
    nowhere = str(uuid.uuid4())

    answers = [
        (
            actor.get(f"/v1/shops/{shop.id}/consents"),
            actor.get(f"/v1/shops/{nowhere}/consents"),
        ),
        (
            actor.post(f"/v1/shops/{shop.id}/consents", _grant_body(consumer.id)),
            actor.post(f"/v1/shops/{nowhere}/consents", _grant_body(consumer.id)),
        ),
        (_revoke(actor, shop.id, consent["id"]), _revoke(actor, nowhere, consent["id"])),
    ]

    for response, no_shop in answers:
        assert response.status_code == 404, response.text
        assert response.json() == no_shop.json()
    assert [(c["id"], c["status"]) for c in _consents(shop)] == [(consent["id"], "active")]


def test_consent_endpoints_need_an_api_key(world: World) -> None:
    shop = world.shop()
    consent = world.grant(shop, world.consumer(), "replenishment", ["sales"])
    base = f"/v1/shops/{shop.id}/consents"

    answers = [
        world.client.get(base),
        world.client.post(base, json=_grant_body(str(uuid.uuid4()))),
        world.client.post(f"{base}/{consent['id']}/revoke"),
    ]

    for response in answers:
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "unauthenticated"
    assert _consents(shop)[0]["status"] == "active"


# --- audit --------------------------------------------------------------------------


def test_every_grant_and_revoke_is_audited_without_data_values(world: World) -> None:
    shop = world.shop()
    secret_sku = "SKU-LYCHEE-CONSENT-6604"
    secret_payer = "wx_payer_CONSENT_PERSON_3391"
    world.ingest(shop, "sales", [sale(1, sku=secret_sku)])
    world.ingest(shop, "payments", [payment(1, payer_ref=secret_payer)])
    consumer = world.consumer()
    first = world.grant(shop, consumer, "analytics", ["sales", "payments"])
    second = world.grant(shop, consumer, "replenishment", ["sales"])
    assert _revoke(shop.keeper, shop.id, first["id"]).status_code == 200
    auditor = world.principal("auditor")

    grants = auditor.get("/v1/audit/events", action="consent.grant")
    revokes = auditor.get("/v1/audit/events", action="consent.revoke")

    assert grants.status_code == 200, grants.text
    assert revokes.status_code == 200, revokes.text
    grant_events = grants.json()["events"]
    revoke_events = revokes.json()["events"]
    assert [e["details"]["consent_id"] for e in grant_events] == [first["id"], second["id"]]
    assert [e["details"]["consent_id"] for e in revoke_events] == [first["id"]]
    for event in (*grant_events, *revoke_events):
        assert event["decision"] == "allow"
        assert event["shop_id"] == shop.id
        assert event["principal_id"] == shop.keeper.id
        assert event["principal_role"] == "shopkeeper"
        assert event["details"]["consumer_id"] == consumer.id
    assert [e["purpose"] for e in grant_events] == ["analytics", "replenishment"]
    dumped = json.dumps([*grant_events, *revoke_events])
    for secret in (secret_sku, secret_payer, "S-1", "P-1"):
        assert secret not in dumped


def test_the_keeper_sees_grants_and_revocations_in_the_shops_access_log(world: World) -> None:
    shop = world.shop()
    consent = world.grant(shop, world.consumer(), "replenishment", ["sales"])
    _revoke(shop.keeper, shop.id, consent["id"])

    response = shop.keeper.get(f"/v1/shops/{shop.id}/access-log")

    assert response.status_code == 200, response.text
    consent_events = [
        (e["action"], e["details"]["consent_id"])
        for e in response.json()["events"]
        if e["action"].startswith("consent.")
    ]
    assert consent_events == [
        ("consent.grant", consent["id"]),
        ("consent.revoke", consent["id"]),
    ]


def test_refused_grants_and_revokes_change_nothing_in_the_audit_log(world: World) -> None:
    shop = world.shop()
    consent = world.grant(shop, world.consumer(), "replenishment", ["sales"])
    _revoke(shop.keeper, shop.id, consent["id"])
    _revoke(shop.keeper, shop.id, consent["id"])  # 409
    shop.keeper.post(f"/v1/shops/{shop.id}/consents", _grant_body(str(uuid.uuid4())))  # 422
    auditor = world.principal("auditor")

    allowed = [
        e["action"]
        for e in auditor.get("/v1/audit/events", decision="allow").json()["events"]
        if e["action"].startswith("consent.")
    ]

    assert allowed == ["consent.grant", "consent.revoke"]


def test_a_refused_attempt_on_another_shops_consents_is_audited(world: World) -> None:
    shop_x, shop_y = world.shop("X"), world.shop("Y")
    consent = world.grant(shop_y, world.consumer(), "replenishment", ["sales"])
    _revoke(shop_x.keeper, shop_y.id, consent["id"])
    auditor = world.principal("auditor")

    response = auditor.get("/v1/audit/events", decision="deny", shop_id=shop_y.id)

    assert response.status_code == 200, response.text
    [event] = response.json()["events"]
    assert event["action"] == "consent.write"
    assert event["principal_id"] == shop_x.keeper.id


# --- revocation takes effect at once ------------------------------------------------


def test_revocation_takes_effect_on_the_very_next_read(world: World) -> None:
    shop = world.shop()
    world.ingest(shop, "sales", [sale(i) for i in range(3)])
    consumer, bystander = world.consumer(), world.consumer()
    consent = world.grant(shop, consumer, "replenishment", ["sales"])
    world.grant(shop, bystander, "replenishment", ["sales"])
    url = f"/v1/shops/{shop.id}/sales"

    before = consumer.get(url, purpose="replenishment")
    assert before.status_code == 200, before.text
    assert len(before.json()["records"]) == 3

    assert _revoke(shop.keeper, shop.id, consent["id"]).status_code == 200
    after = consumer.get(url, purpose="replenishment")

    assert after.status_code == 404, after.text
    assert (
        after.json()
        == consumer.get(f"/v1/shops/{uuid.uuid4()}/sales", purpose="replenishment").json()
    )
    assert "S-0" not in after.text
    # Another consumer's consent is untouched.
    assert bystander.get(url, purpose="replenishment").status_code == 200


def test_a_consent_reads_only_its_purpose_and_categories(world: World) -> None:
    shop = world.shop()
    world.ingest(shop, "sales", [sale(1)])
    world.ingest(shop, "payments", [payment(1)])
    consumer = world.consumer()
    world.grant(shop, consumer, "analytics", ["sales"])
    base = f"/v1/shops/{shop.id}"

    assert consumer.get(f"{base}/sales", purpose="analytics").status_code == 200
    assert consumer.get(f"{base}/payments", purpose="analytics").status_code == 404
    assert consumer.get(f"{base}/sales", purpose="credit-assessment").status_code == 404
    assert world.consumer().get(f"{base}/sales", purpose="analytics").status_code == 404


def test_a_new_grant_after_revocation_restores_access(world: World) -> None:
    shop = world.shop()
    world.ingest(shop, "sales", [sale(1)])
    consumer = world.consumer()
    url = f"/v1/shops/{shop.id}/sales"
    consent = world.grant(shop, consumer, "replenishment", ["sales"])
    _revoke(shop.keeper, shop.id, consent["id"])
    assert consumer.get(url, purpose="replenishment").status_code == 404

    renewed = world.grant(shop, consumer, "replenishment", ["sales"])

    assert renewed["id"] != consent["id"]
    assert consumer.get(url, purpose="replenishment").status_code == 200
