"""Limits that hold: 429 with Retry-After, counted in the database so every worker shares them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cornerstore.ratelimit import DAY, RateLimiter, window_of
from hub.app import create_app
from hub.runtime import Hub
from tests.factories import Actor, World


@pytest.fixture
def limited(hub: Hub) -> Iterator[TestClient]:
    """The app with small limits, as an operator could set them."""
    settings = hub.settings.model_copy(
        update={
            "rate_consent_requests_per_day": 3,
            "rate_refusals_per_minute": 5,
            "rate_failed_logins_per_minute": 4,
        }
    )
    with TestClient(create_app(dataclasses.replace(hub, settings=settings))) as client:
        yield client


def _as(client: TestClient, actor: Actor) -> Actor:
    return Actor(client, actor.id, actor.role, actor.api_key)


def _request_body() -> dict[str, Any]:
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    return {"purpose": "replenishment", "categories": ["sales"], "expires_at": expires}


def test_a_consumer_may_send_a_shop_only_so_many_consent_requests_a_day(
    world: World, limited: TestClient
) -> None:
    shop, other = world.shop(), world.shop()
    consumer = _as(limited, world.consumer())
    answers = [
        consumer.post(f"/v1/shops/{shop.id}/consent-requests", _request_body()).status_code
        for _ in range(5)
    ]
    assert answers == [201, 201, 201, 429, 429]
    refused = consumer.post(f"/v1/shops/{shop.id}/consent-requests", _request_body())
    assert refused.json()["error"] == "too_many_requests"
    assert 0 < int(refused.headers["retry-after"]) <= 86400
    # Per shop: another shop can still be asked.
    assert (
        consumer.post(f"/v1/shops/{other.id}/consent-requests", _request_body()).status_code == 201
    )
    # The refused ones left nothing for the shopkeeper to wade through.
    listed = shop.keeper.get(f"/v1/shops/{shop.id}/consents", status="requested")
    assert len(listed.json()["consents"]) == 3


def test_a_principal_refused_too_often_is_answered_429(world: World, limited: TestClient) -> None:
    shop = world.shop()
    prober = _as(limited, world.consumer())
    answers = [
        prober.get(f"/v1/shops/{shop.id}/payments", purpose="replenishment").status_code
        for _ in range(7)
    ]
    assert answers == [404] * 5 + [429, 429]
    # Another principal is not held back by it.
    other = _as(limited, world.consumer())
    assert other.get(f"/v1/shops/{shop.id}/payments", purpose="replenishment").status_code == 404


def test_failed_logins_from_one_address_are_answered_429(world: World, limited: TestClient) -> None:
    shop = world.shop()
    answers = [
        limited.get("/v1/principals/me", headers={"Authorization": f"Bearer cs_wrong{n}"})
        for n in range(6)
    ]
    assert [a.status_code for a in answers] == [401] * 4 + [429, 429]
    assert int(answers[-1].headers["retry-after"]) <= 60
    # A valid key still works: only failures are counted.
    keeper = _as(limited, shop.keeper)
    assert keeper.get("/v1/principals/me").status_code == 200


def test_counts_are_shared_by_every_limiter_on_the_database(hub: Hub) -> None:
    # Two limiters stand for two worker processes: they count into one bucket.
    now = datetime.now(UTC)
    first, second = (RateLimiter(hub.settings.sqlalchemy_url) for _ in range(2))
    try:
        first.hit("shared-bucket", 3, DAY, now)
        second.hit("shared-bucket", 3, DAY, now)
        first.hit("shared-bucket", 3, DAY, now)
        with pytest.raises(Exception, match="too many requests"):
            second.hit("shared-bucket", 3, DAY, now)
        # The next window starts afresh.
        second.hit("shared-bucket", 3, DAY, window_of(now, DAY) + DAY)
    finally:
        first.close()
        second.close()
