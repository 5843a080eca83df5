"""Keys: envelope encryption, refusal to start, erasure, backups and the cache of
unwrapped keys.

Every test here runs with both key providers (the key file and a SoftHSM2
token) on both databases, each on a fresh database and fresh key material.
Rotation is tested in tests/test_key_rotation.py.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from cornerstore.crypto import KeyMaterialError
from cornerstore.db import session_scope
from cornerstore.keys.ring import KeyRing
from cornerstore.models.keys import ShopKey
from cornerstore.models.records import ShopRecord
from cornerstore.models.shops import ShopErasure
from hub.app import create_app
from hub.runtime import Hub
from tests.factories import ShopSetup, World, payment, sale
from tests.keyed import Keyed, backup, restore

UNAVAILABLE = {
    "error": "unavailable",
    "detail": "the service cannot answer safely right now; retry later",
    "fields": [],
}


def _event_ids(world: World, shop_id: str, actor: Any, category: str = "sales") -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        response = actor.get(f"/v1/shops/{shop_id}/{category}", **params)
        assert response.status_code == 200, response.text
        body = response.json()
        ids.extend(record["event_id"] for record in body["records"])
        cursor = body["next"]
        if cursor is None:
            return ids


def _sealed_rows(hub: Hub, shop_id: str) -> list[tuple[int, bytes]]:
    with hub.sessions() as session:
        rows = session.execute(
            select(ShopRecord.id, ShopRecord.sealed)
            .where(ShopRecord.shop_id == uuid.UUID(shop_id))
            .order_by(ShopRecord.id)
        ).all()
    return [(row_id, bytes(sealed)) for row_id, sealed in rows]


def _set_sealed(hub: Hub, row_id: int, sealed: bytes) -> None:
    with session_scope(hub.sessions) as session:
        session.execute(update(ShopRecord).where(ShopRecord.id == row_id).values(sealed=sealed))


# --- envelope encryption ------------------------------------------------------------------------


def test_a_ciphertext_moved_to_another_row_or_shop_does_not_decrypt(
    keyed_world: World, keyed_hub: Hub
) -> None:
    world = keyed_world
    shop, other = world.shop(), world.shop()
    world.ingest(shop, "sales", [sale(1, sku="SKU-FIRST"), sale(2, sku="SKU-SECOND")])
    world.ingest(other, "sales", [sale(1, sku="SKU-OTHER")])
    (_, first), (second_id, second) = _sealed_rows(keyed_hub, shop.id)
    ((other_id, other_sealed),) = _sealed_rows(keyed_hub, other.id)
    assert b"SKU-FIRST" not in first  # sealed at rest

    # Within the shop: record 1's ciphertext in record 2's row.
    _set_sealed(keyed_hub, second_id, first)
    within = shop.keeper.get(f"/v1/shops/{shop.id}/sales")
    assert within.status_code == 503
    assert within.json() == UNAVAILABLE
    _set_sealed(keyed_hub, second_id, second)
    assert shop.keeper.get(f"/v1/shops/{shop.id}/sales").status_code == 200

    # Across shops: the same record id under another shop's row and key.
    _set_sealed(keyed_hub, other_id, first)
    across = other.keeper.get(f"/v1/shops/{other.id}/sales")
    assert across.status_code == 503
    assert "SKU-FIRST" not in across.text
    _set_sealed(keyed_hub, other_id, other_sealed)
    assert _event_ids(world, other.id, other.keeper) == ["S-1"]


def test_a_ciphertext_is_bound_to_its_field(keyed_hub: Hub, keyed_world: World) -> None:
    shop = keyed_world.shop()
    keyed_world.ingest(shop, "sales", [sale(1)])
    with keyed_hub.sessions() as session:
        cipher = keyed_hub.keyring.cipher(session, uuid.UUID(shop.id))
    record_key = cipher.record_key("sales", "S-1")
    sealed = cipher.seal("sales", "values", record_key, b"{}")
    assert cipher.open("sales", "values", record_key, sealed) == b"{}"
    from cornerstore.crypto import DecryptionFailed

    for kind, field, key in (
        ("sales", "raw", record_key),
        ("payments", "values", record_key),
        ("sales", "values", cipher.record_key("sales", "S-2")),
    ):
        with pytest.raises(DecryptionFailed):
            cipher.open(kind, field, key, sealed)


def test_data_keys_are_wrapped_by_the_master_key_and_never_stored_plain(
    keyed_hub: Hub, keyed_world: World
) -> None:
    shop = keyed_world.shop()
    with keyed_hub.sessions() as session:
        row = session.scalars(select(ShopKey).where(ShopKey.shop_id == uuid.UUID(shop.id))).one()
        active = keyed_hub.keyring.active_master_id(session)
        data_key = keyed_hub.keyring.unwrap(row)
    assert row.master_key_id == active
    assert row.wrap_format == 2
    assert data_key not in row.wrapped_key
    assert len(data_key) == 32


# --- refusing to start -----------------------------------------------------------------------


def _lose_master(keyed: Keyed, hub: Hub) -> None:
    """Take away the master key the stored data keys were wrapped with."""
    if keyed.provider == "file":
        keyed.settings.master_key_path.unlink()
        return
    provider: Any = hub.keyring.provider
    provider.create_master()  # so that the token still holds *a* master key: the wrong one
    with hub.sessions() as session:
        active = hub.keyring.active_master_id(session)
    provider.destroy_master(active)


def test_a_missing_or_wrong_master_key_refuses_to_start(keyed: Keyed, keyed_hub: Hub) -> None:
    world = World(TestClient(create_app(keyed_hub)), keyed_hub)
    shop = world.shop()
    world.ingest(shop, "sales", [sale(1)])
    with keyed_hub.sessions() as session:
        active = keyed_hub.keyring.active_master_id(session)
    _lose_master(keyed, keyed_hub)
    keyed_hub.close()

    with pytest.raises(KeyMaterialError) as refused:
        Hub.open(keyed.settings)
    message = str(refused.value)
    if keyed.provider == "file":
        assert "missing" in message
        assert str(keyed.settings.master_key_path) in message
        assert not keyed.settings.master_key_path.exists()  # no new key made silently
    else:
        assert active in message
        assert "not the key these data were written with" in message
    assert "backup" in message

    # A key file with another key in it is refused just the same.
    if keyed.provider == "file":
        keyed.settings.master_key_path.write_bytes(os.urandom(32))
        keyed.settings.master_key_path.chmod(0o600)
        with pytest.raises(KeyMaterialError, match="not the key these data were written with"):
            Hub.open(keyed.settings)


# --- erasure ---------------------------------------------------------------------------------


def _raw_bytes(keyed: Keyed, url: str, dump_dir: Path) -> bytes:
    return backup(url, dump_dir / f"scan-{uuid.uuid4().hex[:6]}.dump").read_bytes()


def _read_restored(keyed: Keyed, dump: Path, shop: ShopSetup) -> tuple[int, str]:
    """Restore ``dump`` into a fresh database and read the shop's sales from it as its keeper."""
    restored = keyed.fresh_database()
    restore(dump, restored)
    hub = Hub.open(keyed.with_database(restored))
    try:
        with TestClient(create_app(hub)) as client:
            response = client.get(f"/v1/shops/{shop.id}/sales", headers=shop.keeper.headers)
            return response.status_code, response.text
    finally:
        hub.close()


def test_erasure_leaves_a_copy_taken_before_it_unreadable(
    keyed: Keyed, keyed_hub: Hub, keyed_world: World, tmp_path: Path
) -> None:
    world = keyed_world
    marker = uuid.uuid4().hex[:10]
    sku, payer = f"SKU-ERASE-{marker}", f"wx_secret_{marker}"
    shop, neighbour = world.shop(), world.shop()
    consumer = world.consumer()
    consent = world.grant(shop, consumer, "credit-assessment", ["payments"])
    world.ingest(shop, "sales", [sale(1, sku=sku), sale(2, sku=sku)])
    world.ingest(shop, "payments", [payment(1, payer_ref=payer)])
    world.ingest(shop, "sales", [{"event_id": "BAD", "sku": sku, "quantity": "x"}])
    world.ingest(neighbour, "sales", [sale(1, sku="SKU-NEIGHBOUR")])
    url = keyed.settings.sqlalchemy_url
    copy = backup(url, tmp_path / "before-erasure.dump")
    assert sku.encode() not in copy.read_bytes()  # encrypted at rest, even in the copy

    # Control: the copy, restored with the key material, reads back in full.
    status, body = _read_restored(keyed, copy, shop)
    assert status == 200
    assert sku in body

    erased = shop.keeper.post(f"/v1/shops/{shop.id}/erasure")
    assert erased.status_code == 200, erased.text
    assert erased.json() == {
        "shop_id": shop.id,
        "status": "erased",
        "consents_ended": [consent["id"]],
        "records_deleted": {"sales": 2, "payments": 1},
        "quarantined_deleted": 1,
    }
    # The shop is gone for everyone, its keeper's key with it; its neighbour is untouched.
    assert shop.keeper.get(f"/v1/shops/{shop.id}/sales").status_code == 401
    assert (
        consumer.get(f"/v1/shops/{shop.id}/payments", purpose="credit-assessment").status_code
        == 404
    )
    assert _event_ids(world, neighbour.id, neighbour.keeper) == ["S-1"]
    assert not keyed_hub.keyring.provider.has_shop_key(uuid.UUID(shop.id))

    # The copy taken before, with the master key, now recovers nothing of the shop.
    status, body = _read_restored(keyed, copy, shop)
    assert status == 503
    assert sku not in body
    restored = keyed.fresh_database()
    restore(copy, restored)
    hub = Hub.open(keyed.with_database(restored))
    try:
        with hub.sessions() as session:
            with pytest.raises(KeyMaterialError):
                hub.keyring.cipher(session, uuid.UUID(shop.id))
            # The master layer still opens; what it holds is useless without the shop's key.
            row = session.scalars(
                select(ShopKey).where(ShopKey.shop_id == uuid.UUID(shop.id))
            ).one()
            with pytest.raises(KeyMaterialError):
                hub.keyring.unwrap(row)
            hub.keyring.cipher(session, uuid.UUID(neighbour.id))  # others are unaffected
    finally:
        hub.close()

    # The audit log records the erasure and what it ended, and no value.
    auditor = world.principal("auditor")
    events = auditor.get("/v1/audit/events", shop_id=shop.id, action="shop.erase").json()["events"]
    assert len(events) == 1
    assert events[0]["principal_id"] == shop.keeper.id
    assert events[0]["details"]["consents_ended"] == [consent["id"]]
    everything = auditor.get("/v1/audit/events", limit=1000).text
    assert sku not in everything
    assert payer not in everything
    live = _raw_bytes(keyed, url, tmp_path)
    assert sku.encode() not in live
    assert payer.encode() not in live


def test_only_the_shop_or_an_admin_can_erase_it(keyed_world: World) -> None:
    world = keyed_world
    shop, other = world.shop(), world.shop()
    world.ingest(shop, "sales", [sale(1)])
    consumer = world.consumer()
    for actor in (other.keeper, shop.connector, consumer, world.principal("auditor")):
        refused = actor.post(f"/v1/shops/{shop.id}/erasure")
        assert refused.status_code == 404, refused.text
    assert _event_ids(world, shop.id, shop.keeper) == ["S-1"]
    by_admin = world.admin.post(f"/v1/shops/{shop.id}/erasure")
    assert by_admin.status_code == 200
    assert by_admin.json()["records_deleted"] == {"sales": 1}
    assert world.admin.post(f"/v1/shops/{shop.id}/erasure").status_code == 404


def test_an_interrupted_erasure_finishes_at_the_next_start(
    keyed: Keyed, keyed_hub: Hub, keyed_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = keyed_world
    shop = world.shop()
    world.ingest(shop, "sales", [sale(1)])
    provider = keyed_hub.keyring.provider

    def fail(_shop_id: uuid.UUID) -> None:
        raise OSError("the key store is unreachable")

    monkeypatch.setattr(provider, "destroy_shop_key", fail)
    pending = shop.keeper.post(f"/v1/shops/{shop.id}/erasure")
    assert pending.status_code == 202
    assert pending.json()["status"] == "keys_pending"
    monkeypatch.undo()
    assert provider.has_shop_key(uuid.UUID(shop.id))

    keyed_hub.close()
    reopened = Hub.open(keyed.settings)
    try:
        assert not reopened.keyring.provider.has_shop_key(uuid.UUID(shop.id))
        with reopened.sessions() as session:
            destroyed_at = session.scalar(
                select(ShopErasure.keys_destroyed_at).where(
                    ShopErasure.shop_id == uuid.UUID(shop.id)
                )
            )
        assert destroyed_at is not None
    finally:
        reopened.close()


# --- backups ---------------------------------------------------------------------------------


def test_a_backup_restores_into_a_fresh_database_and_reads_back(
    keyed: Keyed, keyed_world: World, tmp_path: Path
) -> None:
    world = keyed_world
    shop = world.shop()
    consumer = world.consumer()
    world.grant(shop, consumer, "replenishment", ["sales"])
    records = [sale(n, sku=f"SKU-茶叶-{n}") for n in range(30)]
    world.ingest(shop, "sales", records)
    dump = backup(keyed.settings.sqlalchemy_url, tmp_path / "nightly.dump")

    target = keyed.fresh_database()
    restore(dump, target)
    hub = Hub.open(keyed.with_database(target))
    try:
        with TestClient(create_app(hub)) as client:
            own = client.get(f"/v1/shops/{shop.id}/sales", headers=shop.keeper.headers)
            assert own.status_code == 200
            assert [r["sku"] for r in own.json()["records"]] == [r["sku"] for r in records]
            shared = client.get(
                f"/v1/shops/{shop.id}/sales",
                params={"purpose": "replenishment"},
                headers=consumer.headers,
            )
            assert shared.status_code == 200
            assert len(shared.json()["records"]) == 30
    finally:
        hub.close()


# --- the cache of unwrapped keys ---------------------------------------------------------------


def test_unwrapped_data_keys_are_cached_within_a_bound_and_a_time_limit(
    keyed_hub: Hub, keyed_world: World
) -> None:
    shops = [uuid.UUID(keyed_world.shop().id) for _ in range(3)]
    now = [0.0]
    ring = KeyRing(
        keyed_hub.keyring.provider, cache_size=2, ttl=60, current_ttl=5, clock=lambda: now[0]
    )
    with keyed_hub.sessions() as session:
        for shop_id in shops:
            ring.cipher(session, shop_id, 1)
        assert ring.cached_count() == 2

        first = ring.cipher(session, shops[0], 1)
        keyed_hub.keyring.provider.destroy_shop_key(shops[0])
        now[0] += 59
        assert ring.cipher(session, shops[0], 1) is first  # still cached
        now[0] += 2
        with pytest.raises(KeyMaterialError):
            ring.cipher(session, shops[0], 1)  # expired: unwrapping again fails
