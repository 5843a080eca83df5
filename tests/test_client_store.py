"""The consumer's local store: records go when their data life ends, and at once when the
shop revokes or is erased, on the hub's own webhook."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import cornerstore_client as sdk
from consent.delivery import deliver_due
from cornerstore_client.store import data_life
from hub.runtime import Hub
from tests.factories import ShopSetup, World, sale
from tests.servers import Server, hub_server
from tests.webhook_consumer import (
    Receiver,
    client_without_lifespan,  # noqa: F401 (a fixture)
    receiver_fixture,  # noqa: F401 (a fixture)
    register,
)

#: Above the database: SQLite alone (tests/conftest.py).
pytestmark = pytest.mark.one_backend


MONDAY = datetime(2026, 11, 16, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def server(hub: Hub) -> Iterator[Server]:
    # Its own deliverer may send an event before the test's: it must reach the receiver too.
    with hub_server(hub, webhook_private_hosts='["127.0.0.1"]') as running:
        yield running


def _read_into(store: sdk.LocalStore, server: Server, api_key: str, shop: ShopSetup) -> None:
    with sdk.Client(server.base_url, api_key) as client:
        [consent] = [c for c in client.consents() if str(c.shop_id) == shop.id]
        store.keep(consent, "sales", client.sales(shop.id, purpose="replenishment"))


def _shop_with_sales(world: World, name: str) -> ShopSetup:
    shop = world.shop(name)
    world.ingest(shop, "sales", [sale(n, at=MONDAY + timedelta(minutes=n)) for n in range(3)])
    return shop


def test_records_are_kept_for_their_data_life_and_not_a_second_longer(
    world: World, server: Server, tmp_path: Path
) -> None:
    shop = _shop_with_sales(world, "Corner")
    grocer = world.consumer()
    granted = world.grant(shop, grocer, "replenishment", ["sales"])
    assert granted["data_life"].startswith("P")
    life = data_life(granted["data_life"]).total_seconds()
    with sdk.LocalStore(tmp_path / "records.db") as store:
        before = datetime.now(UTC).timestamp()
        _read_into(store, server, grocer.api_key, shop)
        assert [r["event_id"] for r in store.records(shop.id)] == ["S-0", "S-1", "S-2"]

        assert store.purge_expired(now=before + life - 1) == 0
        assert store.purge_expired(now=before + life + 60) == 3
        assert store.count() == 0


def test_a_revocation_webhook_purges_the_consent_and_an_erasure_the_shop(
    world: World, hub: Hub, server: Server, receiver: Receiver, tmp_path: Path
) -> None:
    revoking, erased, staying = (
        _shop_with_sales(world, name) for name in ("Revoking", "Erased", "Staying")
    )
    grocer = world.consumer()
    secret = register(grocer, receiver.url)["secret"]
    consents = {
        s.id: world.grant(s, grocer, "replenishment", ["sales"])
        for s in (revoking, erased, staying)
    }
    with sdk.LocalStore(tmp_path / "records.db") as store:
        for shop in (revoking, erased, staying):
            _read_into(store, server, grocer.api_key, shop)
        assert store.count() == 9

        revoking.keeper.post(
            f"/v1/shops/{revoking.id}/consents/{consents[revoking.id]['id']}/revoke"
        )
        world.client.post(f"/v1/shops/{erased.id}/erasure", headers=erased.keeper.headers)
        # Delivered by this process or by the server's own deliverer, whichever comes first.
        deliver_due(hub.sessions, hub.settings)
        deadline = time.monotonic() + 10
        while {"revoked", "erased"} - {d.event["change"] for d in receiver.requests}:
            assert time.monotonic() < deadline, "the hub never sent both events"
            time.sleep(0.05)
        for delivery in receiver.requests:
            store.receive(delivery.headers, delivery.body, secret)

        counts = [store.count(shop.id) for shop in (revoking, erased, staying)]
        assert counts == [0, 0, 3]
        # The erasure's event, sent again about the shop that stays: not the hub's, purges nothing.
        [erasure] = [d for d in receiver.requests if d.event["change"] == "erased"]
        forged = erasure.body.replace(erased.id.encode(), staying.id.encode())
        with pytest.raises(sdk.VerificationError):
            store.receive(erasure.headers, forged, secret)
        assert store.count(staying.id) == 3


def test_a_data_life_is_read_as_the_hub_writes_it() -> None:
    assert data_life("P30D") == timedelta(days=30)
    assert data_life("PT90S") == timedelta(seconds=90)
    assert data_life("P1Y") == timedelta(days=365)  # the hub's P365D, as pydantic writes it
    assert data_life("P1W2DT3H") == timedelta(weeks=1, days=2, hours=3)
    for wrong in ("P", "", "PT-", "soon"):
        with pytest.raises(ValueError, match="not an ISO 8601 duration"):
            data_life(wrong)


def test_records_without_their_ids_are_kept_once_each_and_once_again(tmp_path: Path) -> None:
    """A lender sees no event ids: two alike sales stay two, and reading them again adds none."""
    consent = _consent("00000000-0000-0000-0000-000000000001")
    alike = {"occurred_at": "2026-11-16T09:00:00Z", "quantity": 1, "unit_price_cents": 350}
    other = {**alike, "quantity": 2}
    with sdk.LocalStore(tmp_path / "records.db") as store:
        store.keep(consent, "sales", [alike, alike, other])
        store.keep(consent, "sales", [alike, alike, other])
        assert store.count() == 3


def test_a_consent_that_ends_while_it_is_read_keeps_nothing_and_newer_terms_purge(
    tmp_path: Path,
) -> None:
    """The revocation's webhook can beat the end of a long read: the read is not kept after it.
    Superseded terms purge too: the old terms may have allowed more than the new."""
    consent = _consent("00000000-0000-0000-0000-00000000000a")
    newer = _consent("00000000-0000-0000-0000-00000000000b")
    sold = {"event_id": "S-1", "occurred_at": "2026-11-16T09:00:00Z", "sku": "TEA", "quantity": 1}
    store_path = tmp_path / "records.db"
    with sdk.LocalStore(store_path) as store:
        store.on_event(
            {
                "type": "consent.status_changed",
                "consent_id": str(consent.id),
                "shop_id": str(consent.shop_id),
                "status": "revoked",
                "change": "revoked",
            }
        )
        with pytest.raises(sdk.ConsentEnded):
            store.keep(consent, "sales", [sold])
        store.keep(newer, "sales", [sold])
        store.on_event(
            {
                "type": "consent.status_changed",
                "consent_id": str(newer.id),
                "shop_id": str(newer.shop_id),
                "status": "superseded",
                "change": "superseded",
            }
        )
        assert store.count() == 0
    assert store_path.stat().st_mode & 0o777 == 0o600


def _consent(consent_id: str) -> sdk.Consent:
    return sdk.Consent.model_validate(
        {
            "id": consent_id,
            "shop_id": "00000000-0000-0000-0000-000000000002",
            "consumer_id": "00000000-0000-0000-0000-000000000003",
            "consumer_name": "Grocer",
            "consumer_description": None,
            "purpose": "replenishment",
            "categories": ["sales"],
            "status": "active",
            "version": 1,
            "access_mode": "rows",
            "data_range": {},
            "max_reads_per_day": None,
            "valid_from": "2026-11-01T00:00:00Z",
            "expires_at": "2027-11-01T00:00:00Z",
            "data_life": "P30D",
            "created_at": "2026-11-01T00:00:00Z",
            "granted_at": "2026-11-01T00:00:00Z",
            "revoked_at": None,
            "updated_at": "2026-11-01T00:00:00Z",
            "uses": 0,
            "last_used_at": None,
        }
    )
