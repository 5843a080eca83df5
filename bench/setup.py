"""Bringing up a hub database for a benchmark: migrate, first admin, shop, principals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx

from cornerstore.db import make_engine, session_scope
from cornerstore.migrations import upgrade
from cornerstore.models.principals import Role
from cornerstore.settings import Environment, Settings
from hub.principals import service as principals
from hub.principals.schemas import PrincipalIn
from hub.runtime import Hub

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def sales_lines(count: int, *, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"S-{n}",
            "occurred_at": (T0 + timedelta(seconds=7 * n)).isoformat(),
            "sku": f"SKU-{n % 40:03d}",
            "quantity": 1 + n % 4,
            "unit_price_cents": 250 + (n * 37) % 4000,
            "currency": "CNY",
        }
        for n in range(start, start + count)
    ]


def migrated_admin_key(database_url: str, data_dir: Path) -> str:
    settings = Settings(environment=Environment.test, database_url=database_url, data_dir=data_dir)
    engine = make_engine(database_url)
    upgrade(engine)
    hub = Hub.open(settings, engine=engine)
    try:
        with session_scope(hub.sessions) as session:
            return principals.create(
                session, PrincipalIn(name="bench admin", role=Role.admin)
            ).api_key
    finally:
        hub.close()


@dataclass
class BenchShop:
    shop_id: str
    connector_key: str
    consumer_key: str
    keeper_key: str


def make_shop(client: httpx.Client, admin_key: str) -> BenchShop:
    admin = {"Authorization": f"Bearer {admin_key}"}

    def principal(role: str, shops: list[str]) -> dict[str, Any]:
        response = client.post(
            "/v1/principals", json={"name": role, "role": role, "shop_ids": shops}, headers=admin
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    shop = client.post("/v1/shops", json={"name": "bench shop"}, headers=admin)
    shop.raise_for_status()
    shop_id = shop.json()["id"]
    keeper = principal("shopkeeper", [shop_id])
    consumer = principal("consumer", [])
    grant = client.post(
        f"/v1/shops/{shop_id}/consents",
        json={
            "consumer_id": consumer["id"],
            "purpose": "analytics",
            "categories": ["sales"],
            "expires_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        },
        headers={"Authorization": f"Bearer {keeper['api_key']}"},
    )
    grant.raise_for_status()
    return BenchShop(
        shop_id=shop_id,
        connector_key=principal("connector", [shop_id])["api_key"],
        consumer_key=consumer["api_key"],
        keeper_key=keeper["api_key"],
    )


def post_sales(client: httpx.Client, shop: BenchShop, body: bytes) -> dict[str, Any]:
    """Send one JSON batch of sales lines as the shop's connector."""
    response = client.post(
        f"/v1/shops/{shop.shop_id}/sales",
        content=body,
        headers={
            "Authorization": f"Bearer {shop.connector_key}",
            "Content-Type": "application/json",
        },
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result
