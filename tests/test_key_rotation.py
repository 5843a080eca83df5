"""Key rotation: the master key under concurrent reads and writes and after a kill,
a shop's data key, and the `cornerstore keys` commands that rotate them.

The tests with a ``keyed`` hub run with both key providers (the key file and a
SoftHSM2 token) on both databases, each on a fresh database and fresh key material.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cornerstore.crypto import KeyMaterialError
from cornerstore.db import session_scope
from cornerstore.keys import rotation
from cornerstore.keys.ring import _legacy_aad
from cornerstore.models.keys import MasterKeyRecord, ShopKey
from cornerstore.models.records import QuarantinedRecord, ShopRecord
from cornerstore.records import repository
from cornerstore.settings import Settings, get_settings
from hub import cli
from hub.app import create_app
from hub.runtime import Hub
from tests.factories import ShopSetup, World, sale
from tests.keyed import Keyed
from tests.test_keys import _event_ids

# --- rotation --------------------------------------------------------------------------------


def test_master_rotation_under_concurrent_reads_and_writes_loses_nothing(
    keyed_hub: Hub, keyed_world: World
) -> None:
    world = keyed_world
    consumer = world.consumer()
    shops = [world.shop() for _ in range(4)]
    for shop in shops:
        world.grant(shop, consumer, "analytics", ["sales"])
        world.ingest(shop, "sales", [sale(n) for n in range(20)])
    with keyed_hub.sessions() as session:
        old_master = keyed_hub.keyring.active_master_id(session)

    stop = threading.Event()
    failures: list[str] = []
    written: dict[str, set[str]] = {shop.id: {f"S-{n}" for n in range(20)} for shop in shops}
    created: list[str] = []

    def writer(shop_index: int) -> None:
        shop, n = shops[shop_index], 1000
        while not stop.is_set():
            batch = [sale(n + i) for i in range(5)]
            response = shop.connector.post(f"/v1/shops/{shop.id}/sales", {"records": batch})
            if response.status_code != 200:
                failures.append(f"write {response.status_code}")
                return
            written[shop.id].update(record["event_id"] for record in batch)
            n += 5

    def reader() -> None:
        while not stop.is_set():
            for shop in shops:
                response = consumer.get(f"/v1/shops/{shop.id}/sales", purpose="analytics")
                if response.status_code != 200:
                    failures.append(f"read {response.status_code}")
                    return

    def creator() -> None:
        while not stop.is_set():
            response = world.admin.post("/v1/shops", {"name": "新店 New shop"})
            if response.status_code != 201:
                failures.append(f"create {response.status_code}")
                return
            created.append(response.json()["id"])

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    threads += [threading.Thread(target=reader), threading.Thread(target=creator)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.3)
        done = rotation.rotate_master(
            keyed_hub.sessions, keyed_hub.keyring, batch_size=2, pause=0.02
        )
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert failures == []
    assert done.retiring == {old_master}
    assert created, "no shop was created during the rotation"
    with keyed_hub.sessions() as session:
        wrapping = set(session.scalars(select(ShopKey.master_key_id).distinct()))
        recorded = set(session.scalars(select(MasterKeyRecord.id)))
    assert wrapping == recorded == {done.active}
    assert old_master not in keyed_hub.keyring.provider.master_ids()
    # Every record written before, during and after the rotation reads back.
    _assert_everything_reads_back(keyed_hub.settings, shops, written, created)


def _assert_everything_reads_back(
    settings: Settings, shops: list[ShopSetup], written: dict[str, set[str]], created: list[str]
) -> None:
    """A hub opened afresh reads back every record ``written`` to each of ``shops``, and
    unwraps the data key of every shop ``created`` during the rotation."""
    fresh = Hub.open(settings)
    try:
        client = TestClient(create_app(fresh))
        for shop in shops:
            reread = World(client, fresh)
            keeper = shop.keeper.__class__(
                client, shop.keeper.id, "shopkeeper", shop.keeper.api_key
            )
            assert sorted(_event_ids(reread, shop.id, keeper)) == sorted(written[shop.id])
        with fresh.sessions() as session:
            for shop_id in created:
                fresh.keyring.cipher(session, uuid.UUID(shop_id))  # unwraps under the new key
    finally:
        fresh.close()


def _count_under(hub: Hub, master_id: str) -> int:
    with hub.sessions() as session:
        return int(
            session.scalar(select(func.count()).where(ShopKey.master_key_id == master_id)) or 0
        )


def test_a_killed_master_rotation_resumes(
    keyed: Keyed, keyed_hub: Hub, keyed_world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world = keyed_world
    shops = [world.shop() for _ in range(40)]
    world.ingest(shops[0], "sales", [sale(1, sku="SKU-BEFORE-ROTATION")])
    with keyed_hub.sessions() as session:
        old_master = keyed_hub.keyring.active_master_id(session)

    command = [sys.executable, "-m", "hub.cli", "keys", "rotate-master"]
    child = subprocess.Popen(  # noqa: S603 (our own CLI)
        [*command, "--batch-size", "4", "--pause", "0.2"],
        env={**os.environ, **keyed.env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    new_master = None
    while time.monotonic() < deadline and child.poll() is None:
        with keyed_hub.sessions() as session:
            new_master = session.scalar(
                select(MasterKeyRecord.id).where(MasterKeyRecord.state == "active")
            )
        if new_master != old_master and new_master and _count_under(keyed_hub, new_master) >= 8:
            break
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    _, errors = child.communicate()
    assert child.returncode == -signal.SIGKILL, errors.decode(errors="replace")
    assert new_master is not None
    assert new_master != old_master
    moved, left = _count_under(keyed_hub, new_master), _count_under(keyed_hub, old_master)
    assert moved > 0
    assert left > 0, "the rotation finished before it could be killed"

    # Half rotated, the hub still serves every shop.
    assert shops[0].keeper.get(f"/v1/shops/{shops[0].id}/sales").json()["records"][0]["sku"] == (
        "SKU-BEFORE-ROTATION"
    )

    for name, value in keyed.env().items():
        os.environ[name] = value
    try:
        get_settings.cache_clear()
        capsys.readouterr()
        assert cli.main(["keys", "rotate-master", "--batch-size", "7"]) == 0
        out = capsys.readouterr().out
    finally:
        for name in keyed.env():
            os.environ.pop(name, None)
        get_settings.cache_clear()
    assert f"resuming the rotation from master key {old_master} to {new_master}" in out
    assert _count_under(keyed_hub, old_master) == 0
    assert _count_under(keyed_hub, new_master) == len(shops)
    assert keyed_hub.keyring.provider.master_ids() == {new_master}
    if keyed.provider == "file":
        assert keyed.settings.master_key_path.stat().st_size == 32
    fresh = Hub.open(keyed.settings)
    try:
        with fresh.sessions() as session:
            for shop in shops:
                fresh.keyring.cipher(session, uuid.UUID(shop.id))
    finally:
        fresh.close()


def test_shop_rotation_keeps_old_records_readable_and_reencrypts_them(
    keyed_hub: Hub, keyed_world: World
) -> None:
    world = keyed_world
    shop = world.shop()
    shop_id = uuid.UUID(shop.id)
    world.ingest(shop, "sales", [sale(n) for n in range(5)])
    world.ingest(shop, "sales", [{"event_id": "BAD", "quantity": "many"}])  # quarantined
    sessions, keyring = keyed_hub.sessions, keyed_hub.keyring

    assert rotation.rotate_shop(sessions, keyring, shop_id) == 2
    world.ingest(shop, "sales", [sale(n) for n in range(5, 8)])
    with sessions() as session:
        versions = dict(
            session.execute(
                select(ShopRecord.key_version, func.count())
                .where(ShopRecord.shop_id == shop_id)
                .group_by(ShopRecord.key_version)
            ).all()
        )
    assert versions == {1: 5, 2: 3}
    assert sorted(_event_ids(world, shop.id, shop.keeper)) == sorted(f"S-{n}" for n in range(8))

    moved = rotation.reencrypt_shop(sessions, keyring, shop_id, batch_size=2)
    assert moved == 6  # five sales and the quarantined record
    with sessions() as session:
        assert repository.count_below_version(session, shop_id, 2) == 0
        # The old version stays: a write that raced the rotation may still be sealed under it.
        stmt = select(ShopKey.version).where(ShopKey.shop_id == shop_id)
        assert set(session.scalars(stmt)) == {1, 2}
        quarantined = session.scalars(
            select(QuarantinedRecord.key_version).where(QuarantinedRecord.shop_id == shop_id)
        ).all()
    assert quarantined == [2]
    assert sorted(_event_ids(world, shop.id, shop.keeper)) == sorted(f"S-{n}" for n in range(8))


# --- rotating from the command line ----------------------------------------------------------


def test_the_rotate_shop_command_reencrypts_and_shows_progress(
    world: World, hub: Hub, cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shop = world.shop()
    world.ingest(shop, "sales", [sale(n) for n in range(12)])
    cli_env.setenv("CORNERSTORE_DATABASE_URL", hub.settings.sqlalchemy_url)
    cli_env.setenv("CORNERSTORE_DATA_DIR", str(hub.settings.data_dir))
    cli_env.setenv("CORNERSTORE_ENVIRONMENT", "test")
    get_settings.cache_clear()

    assert cli.main(["keys", "rotate-shop", shop.id, "--reencrypt", "--batch-size", "5"]) == 0

    captured = capsys.readouterr()
    assert f"shop {shop.id}: new writes use data key version 2" in captured.out
    assert "re-encrypted 12 records" in captured.out
    assert "re-encrypting records" in captured.err  # the progress bar
    assert "12/12" in captured.err
    with hub.sessions() as session:
        assert repository.count_below_version(session, uuid.UUID(shop.id), 2) == 0
    assert sorted(_event_ids(world, shop.id, shop.keeper)) == sorted(f"S-{n}" for n in range(12))
    assert cli.main(["keys", "rotate-shop", str(uuid.uuid4())]) == 2
    assert "no data key" in capsys.readouterr().err


def test_data_keys_from_before_shop_keys_are_upgraded_by_rotate_master(
    keyed: Keyed, keyed_hub: Hub, keyed_world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """A database from the foundation release wrapped data keys with the master key alone."""
    shop = keyed_world.shop()
    keyed_world.ingest(shop, "sales", [sale(1, sku="SKU-LEGACY")])
    shop_id = uuid.UUID(shop.id)
    ring = keyed_hub.keyring
    with session_scope(keyed_hub.sessions) as session:
        row = session.scalars(select(ShopKey).where(ShopKey.shop_id == shop_id)).one()
        data_key = ring.unwrap(row)
        row.wrapped_key = ring.provider.master_encrypt(
            row.master_key_id, data_key, _legacy_aad(shop_id, row.version)
        )
        row.wrap_format = 1
    ring.provider.destroy_shop_key(shop_id)
    keyed_hub.close()

    with pytest.raises(KeyMaterialError, match="run: cornerstore keys rotate-master"):
        Hub.open(keyed.settings)

    for name, value in keyed.env().items():
        os.environ[name] = value
    try:
        get_settings.cache_clear()
        assert cli.main(["keys", "rotate-master"]) == 0, capsys.readouterr().err
    finally:
        for name in keyed.env():
            os.environ.pop(name, None)
        get_settings.cache_clear()

    upgraded = Hub.open(keyed.settings)
    try:
        assert upgraded.keyring.provider.has_shop_key(shop_id)
        with TestClient(create_app(upgraded)) as client:
            own = client.get(f"/v1/shops/{shop.id}/sales", headers=shop.keeper.headers)
        assert own.json()["records"][0]["sku"] == "SKU-LEGACY"
        with upgraded.sessions() as session:
            assert (
                session.scalar(select(ShopKey.wrap_format).where(ShopKey.shop_id == shop_id)) == 2
            )
    finally:
        upgraded.close()
