"""Consumers' proposals as a shop and a consumer notice them: an order proposed under a consent,
accepted with other quantities, the consumer told; nothing proposed without a consent; nothing
accepted after a revocation; and nothing of it readable in the database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.factories import Actor, ShopSetup, World, audit_log
from tests.test_web_console import sign_in
from tests.webhook_consumer import (
    client_without_lifespan,  # noqa: F401 (a fixture)
    deliveries,
    register,
)

ORDER = {
    "kind": "purchase-order",
    "warehouse": "Lucky Wholesale 幸运批发",
    "lines": [
        {
            "sku": "SKU-WATER",
            "name": "矿泉水 Water",
            "quantity": 24,
            "case_pack": 12,
            "reason": "sells about 8 a day; 5 on the shelf",
        },
        {"sku": "SKU-TEA", "quantity": 6, "case_pack": 6},
    ],
}
OFFER = {
    "kind": "credit-offer",
    "line_cents": 3_000_000,
    "annual_rate": 0.09,
    "reasons": [
        {
            "code": "monthly_volume",
            "en": "You take about ¥30,000 a month.",
            "zh": "您每月收款约 ¥30,000。",
        }
    ],
}


def _grocer_with_consent(world: World, shop: ShopSetup) -> tuple[Actor, dict[str, Any]]:
    grocer = world.consumer("Lucky Wholesale")
    consent = world.grant(shop, grocer, "replenishment", ["sales", "inventory"])
    return grocer, consent


def test_an_order_is_proposed_accepted_with_other_quantities_and_the_consumer_told(
    world: World,
) -> None:
    shop = world.shop()
    grocer, _ = _grocer_with_consent(world, shop)
    register(grocer, "https://grocer.example/hooks")

    proposed = grocer.post(f"/v1/shops/{shop.id}/proposals", ORDER)
    assert proposed.status_code == 201, proposed.text
    proposal = proposed.json()
    listed = shop.keeper.get(f"/v1/shops/{shop.id}/proposals").json()["proposals"]
    assert [(p["id"], p["status"], p["withdrawn"]) for p in listed] == [
        (proposal["id"], "pending", False)
    ]
    assert listed[0]["content"]["lines"][0]["name"] == "矿泉水 Water"
    assert listed[0]["consumer_name"] == "Lucky Wholesale"

    answered = shop.keeper.post(
        f"/v1/shops/{shop.id}/proposals/{proposal['id']}/answer",
        {"decision": "accept", "lines": [{"sku": "SKU-WATER", "quantity": 36}]},
    )

    assert answered.status_code == 200, answered.text
    seen = grocer.get(f"/v1/consumers/me/proposals/{proposal['id']}").json()
    assert seen["status"] == "accepted"
    assert seen["answer"] == {"decision": "accept", "lines": [{"sku": "SKU-WATER", "quantity": 36}]}
    [event] = [
        d for d in deliveries(grocer)["deliveries"] if d["event_type"] == "proposal.answered"
    ]
    assert event["payload"]["proposal_id"] == proposal["id"]
    assert event["payload"]["status"] == "accepted"
    actions = [e["action"] for e in audit_log(shop.keeper, f"/v1/shops/{shop.id}/access-log")]
    assert {"proposal.create", "proposal.answer"} <= set(actions)
    again = shop.keeper.post(
        f"/v1/shops/{shop.id}/proposals/{proposal['id']}/answer", {"decision": "decline"}
    )
    assert again.status_code == 409


def test_nothing_is_proposed_without_a_consent_for_its_purpose(world: World) -> None:
    shop = world.shop()
    grocer, _ = _grocer_with_consent(world, shop)
    stranger = world.consumer()

    # A credit line needs credit-assessment; a stranger has no consent at all.
    assert grocer.post(f"/v1/shops/{shop.id}/proposals", OFFER).status_code == 404
    assert stranger.post(f"/v1/shops/{shop.id}/proposals", ORDER).status_code == 404
    loose = {**ORDER, "lines": [{"sku": "SKU-TEA", "quantity": 5, "case_pack": 6}]}
    refused = grocer.post(f"/v1/shops/{shop.id}/proposals", loose)
    assert refused.status_code == 422
    assert any("lines.0" in f["field"] for f in refused.json()["fields"])


def test_a_proposal_sent_again_with_its_key_asks_the_shopkeeper_once(world: World) -> None:
    shop = world.shop()
    grocer, _ = _grocer_with_consent(world, shop)
    url = f"/v1/shops/{shop.id}/proposals"
    keyed = {**grocer.headers, "Idempotency-Key": "approval-event-1234"}

    first = grocer.client.post(url, json=ORDER, headers=keyed)
    again = grocer.client.post(url, json=ORDER, headers=keyed)
    other = grocer.client.post(url, json={**ORDER, "warehouse": "Elsewhere"}, headers=keyed)
    unkeyed = grocer.post(url, ORDER)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert other.status_code == 409
    assert "Idempotency-Key" in other.json()["detail"]
    assert unkeyed.status_code == 201  # without a key, each request is a proposal of its own
    listed = shop.keeper.get(url).json()["proposals"]
    assert sorted(p["id"] for p in listed) == sorted([first.json()["id"], unkeyed.json()["id"]])
    # Another consumer's key of the same name is its own.
    lender = world.consumer("Neighbourhood Credit")
    world.grant(shop, lender, "credit-assessment", ["sales", "payments"])
    lent = lender.client.post(url, json=OFFER, headers={**lender.headers, **keyed_only(keyed)})
    assert lent.status_code == 201


def keyed_only(headers: dict[str, str]) -> dict[str, str]:
    return {"Idempotency-Key": headers["Idempotency-Key"]}


def test_a_revoked_consent_withdraws_its_proposals(world: World) -> None:
    shop = world.shop()
    grocer, consent = _grocer_with_consent(world, shop)
    proposal = grocer.post(f"/v1/shops/{shop.id}/proposals", ORDER).json()

    shop.keeper.post(f"/v1/shops/{shop.id}/consents/{consent['id']}/revoke")

    [listed] = shop.keeper.get(f"/v1/shops/{shop.id}/proposals").json()["proposals"]
    assert (listed["status"], listed["withdrawn"]) == ("pending", True)
    path = f"/v1/shops/{shop.id}/proposals/{proposal['id']}/answer"
    assert shop.keeper.post(path, {"decision": "accept"}).status_code == 409
    assert shop.keeper.post(path, {"decision": "decline"}).status_code == 200


def test_only_its_shop_and_its_consumer_see_a_proposal_and_the_database_holds_it_sealed(
    world: World,
) -> None:
    shop, other_shop = world.shop(), world.shop("Other")
    grocer, _ = _grocer_with_consent(world, shop)
    proposal = grocer.post(f"/v1/shops/{shop.id}/proposals", ORDER).json()
    rival = world.consumer()

    assert other_shop.keeper.get(f"/v1/shops/{shop.id}/proposals").status_code == 404
    assert rival.get(f"/v1/consumers/me/proposals/{proposal['id']}").status_code == 404
    bad = shop.keeper.post(
        f"/v1/shops/{shop.id}/proposals/{proposal['id']}/answer",
        {"decision": "accept", "lines": [{"sku": "SKU-GOLD", "quantity": 1}]},
    )
    assert bad.status_code == 422
    assert [f["field"] for f in bad.json()["fields"]] == ["body.lines.0.sku"]
    with world.hub.engine.connect() as connection:
        [content] = connection.execute(text("SELECT content FROM proposals")).scalars()
    assert "矿泉水".encode() not in bytes(content)
    assert b"SKU-WATER" not in bytes(content)


def test_the_portal_shows_offers_in_the_shopkeepers_words_and_answers_them(world: World) -> None:
    """The offers page lists through the API's service and answers through it: an order
    accepted with the page's quantities, a credit line's reasons in Chinese."""
    shop = world.shop()
    grocer, _ = _grocer_with_consent(world, shop)
    lender = world.consumer("Neighbourhood Credit")
    world.grant(shop, lender, "credit-assessment", ["sales", "payments"])
    order = grocer.post(f"/v1/shops/{shop.id}/proposals", ORDER).json()
    offer = lender.post(f"/v1/shops/{shop.id}/proposals", OFFER).json()
    signed_in = sign_in(world, shop.keeper.id)

    page = world.client.get(f"/portal/shops/{shop.id}/offers", headers={"Accept-Language": "zh"})
    assert page.status_code == 200
    assert "您每月收款约 ¥30,000。" in page.text
    assert "¥30,000.00" in page.text
    assert 'step="12"' in page.text
    accepted = world.client.post(
        f"/portal/shops/{shop.id}/offers/{order['id']}/accept",
        data={"sku": ["SKU-WATER", "SKU-TEA"], "quantity": ["48", "0"]},
        headers={"X-CSRF-Token": signed_in.csrf},
    )
    declined = world.client.post(
        f"/portal/shops/{shop.id}/offers/{offer['id']}/decline",
        headers={"X-CSRF-Token": signed_in.csrf},
    )

    assert (accepted.status_code, declined.status_code) == (204, 204)
    seen = grocer.get(f"/v1/consumers/me/proposals/{order['id']}").json()
    assert seen["answer"]["lines"] == [
        {"sku": "SKU-WATER", "quantity": 48},
        {"sku": "SKU-TEA", "quantity": 0},
    ]
    assert lender.get(f"/v1/consumers/me/proposals/{offer['id']}").json()["status"] == "declined"
    uneven = world.client.post(
        f"/portal/shops/{shop.id}/offers/{order['id']}/accept",
        data={"sku": ["SKU-WATER"], "quantity": ["5"]},
        headers={"X-CSRF-Token": signed_in.csrf},
    )
    assert uneven.status_code == 409  # answered already: a second answer is refused
