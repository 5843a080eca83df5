"""A consent change happens at the time it is handed: no clock to patch, no sleeping."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from consent import service
from consent.schemas import ConsentIn
from cornerstore.authz import PurposeName
from cornerstore.categories import Category
from cornerstore.db import session_scope
from cornerstore.identity import Caller
from cornerstore.models.consent import ConsentVersion
from hub.runtime import Hub
from tests.factories import World

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def _keeper_context(hub: Hub, shop_id: str, keeper_id: str, now: datetime) -> service.Context:
    keeper = Caller(uuid.UUID(keeper_id), "keeper", "shopkeeper", frozenset({uuid.UUID(shop_id)}))
    return service.context(hub, keeper, hub.authorizer.policy_version, now)


def test_a_change_is_recorded_at_the_time_it_is_given(world: World, hub: Hub) -> None:
    shop, consumer = world.shop(), world.consumer()
    shop_id = uuid.UUID(shop.id)
    body = ConsentIn(
        consumer_id=uuid.UUID(consumer.id),
        purpose=PurposeName.replenishment,
        categories=[Category.sales],
        expires_at=T0 + timedelta(days=30),
    )
    with session_scope(hub.sessions) as session:
        granted = service.grant(
            session, _keeper_context(hub, shop.id, shop.keeper.id, T0), shop_id, body
        )
    assert granted.valid_from == T0
    assert granted.granted_at == T0

    later = T0 + timedelta(days=3)
    with session_scope(hub.sessions) as session:
        revoked = service.revoke(
            session, _keeper_context(hub, shop.id, shop.keeper.id, later), shop_id, granted.id
        )
        changed_at = [
            v.changed_at
            for v in session.query(ConsentVersion)
            .filter_by(consent_id=granted.id)
            .order_by(ConsentVersion.version)
        ]
    assert revoked.revoked_at == later
    assert changed_at == [T0, later]


def test_a_listing_reads_expiry_at_the_time_it_is_given(world: World, hub: Hub) -> None:
    shop, consumer = world.shop(), world.consumer()
    expires = T0 + timedelta(days=30)
    body = ConsentIn(
        consumer_id=uuid.UUID(consumer.id),
        purpose=PurposeName.replenishment,
        categories=[Category.sales],
        expires_at=expires,
    )
    with session_scope(hub.sessions) as session:
        service.grant(
            session, _keeper_context(hub, shop.id, shop.keeper.id, T0), uuid.UUID(shop.id), body
        )
    with hub.sessions() as session:
        just_before = service.list_for_shop(
            session, uuid.UUID(shop.id), expires - timedelta(microseconds=1)
        )
        at_expiry = service.list_for_shop(session, uuid.UUID(shop.id), expires)
    assert [c.status for c in just_before] == ["active"]
    assert [c.status for c in at_expiry] == ["expired"]
