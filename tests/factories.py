"""Factories that build test data through the public API, as a real user would.

Only the first admin is made through the service layer, exactly as
``cornerstore principals create`` does it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from audit import service as audit
from audit import tree
from audit_verifier import merkle
from cornerstore.db import session_scope
from cornerstore.models.audit import AuditEntry, AuditHead, AuditNode
from cornerstore.models.principals import Role
from hub.principals import service as principals
from hub.principals.schemas import PrincipalIn
from hub.runtime import Hub

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def rfc3339(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def sale(n: int, *, at: datetime | None = None, **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "event_id": f"S-{n}",
        "occurred_at": rfc3339(at or T0 + timedelta(minutes=n)),
        "sku": f"SKU-NOODLE-{n % 7}",
        "quantity": 1 + n % 3,
        "unit_price_cents": 450 + n,
        "currency": "CNY",
    }
    record.update(overrides)
    return record


def count(n: int, **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "sku": f"SKU-TEA-{n}",
        "on_hand": 10 + n,
        "counted_at": rfc3339(T0 + timedelta(hours=n)),
    }
    record.update(overrides)
    return record


def payment(n: int, **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "event_id": f"P-{n}",
        "occurred_at": rfc3339(T0 + timedelta(minutes=n)),
        "amount_cents": 1000 + n,
        "method": "qr",
        "payer_ref": f"wx_payer_{n % 4:04d}",
    }
    record.update(overrides)
    return record


@dataclass
class Actor:
    """A principal with its API key, making requests as itself."""

    client: TestClient
    id: str
    role: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def get(self, url: str, **params: Any) -> httpx.Response:
        return self.client.get(url, params=params, headers=self.headers)

    def post(self, url: str, json: Any = None) -> httpx.Response:
        return self.client.post(url, json=json, headers=self.headers)


@dataclass
class ShopSetup:
    id: str
    keeper: Actor
    connector: Actor


class World:
    """Builds shops, principals, consents and data for a test."""

    def __init__(self, client: TestClient, hub: Hub) -> None:
        self.client = client
        self.hub = hub
        self._admin: Actor | None = None

    @property
    def admin(self) -> Actor:
        if self._admin is None:
            with session_scope(self.hub.sessions) as session:
                created = principals.create(session, PrincipalIn(name="root", role=Role.admin))
            self._admin = Actor(self.client, str(created.id), "admin", created.api_key)
        return self._admin

    def principal(
        self, role: str, *, shops: list[str] | None = None, name: str | None = None
    ) -> Actor:
        response = self.admin.post(
            "/v1/principals",
            {
                "name": name or f"{role}-{uuid.uuid4().hex[:6]}",
                "role": role,
                "shop_ids": shops or [],
            },
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return Actor(self.client, body["id"], role, body["api_key"])

    def shop(self, name: str = "王记便利店 Wang's Corner Store") -> ShopSetup:
        response = self.admin.post("/v1/shops", {"name": name, "district": "Hangzhou · Xihu"})
        assert response.status_code == 201, response.text
        shop_id = response.json()["id"]
        return ShopSetup(
            id=shop_id,
            keeper=self.principal("shopkeeper", shops=[shop_id]),
            connector=self.principal("connector", shops=[shop_id]),
        )

    def consumer(self, name: str | None = None) -> Actor:
        return self.principal("consumer", name=name)

    def grant(
        self,
        shop: ShopSetup,
        consumer: Actor,
        purpose: str,
        categories: list[str],
        *,
        expires_at: datetime | None = None,
    ) -> dict[str, Any]:
        response = shop.keeper.post(
            f"/v1/shops/{shop.id}/consents",
            {
                "consumer_id": consumer.id,
                "purpose": purpose,
                "categories": categories,
                "expires_at": rfc3339(expires_at or datetime.now(UTC) + timedelta(days=30)),
            },
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def ingest(
        self, shop: ShopSetup, category: str, records: list[dict[str, Any]]
    ) -> dict[str, Any]:
        response = shop.connector.post(f"/v1/shops/{shop.id}/{category}", {"records": records})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def audit_log(actor: Actor, url: str = "/v1/audit/events", **params: Any) -> list[dict[str, Any]]:
    """Every event of an audit listing (``/v1/audit/events`` or a shop's access log),
    following ``next`` to the end.
    """
    events: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        query = dict(params, **({"after": after} if after is not None else {}))
        response = actor.get(url, **query)
        assert response.status_code == 200, response.text
        body = response.json()
        events.extend(body["events"])
        after = body["next"]
        if after is None:
            return events


def rebuild_audit_tree(session: Session) -> None:
    """What an operator with database access could do: recompute the whole Merkle tree."""
    session.execute(delete(AuditNode))
    leaves = [
        merkle.leaf_hash(audit.encoded(entry))
        for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
    ]
    frontier = tree.extend(session, 0, None, leaves)
    session.execute(update(AuditHead).values(frontier=frontier))
