"""The ingest stream on a real NATS JetStream, as a push connector and an operator notice it.

A signed message is stored once however often it arrives; a connector of one
shop cannot write into another's; bad records land in the shop's quarantine;
what keeps failing waits in the dead-letter stream and comes back on replay;
and while the database is held up the stream buffers without losing a thing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from cornerstore_client import StreamSigner
from hub.runtime import Hub
from tests import nats
from tests.cli import Cli
from tests.factories import Actor, ShopSetup, World, audit_log, payment, sale
from tests.nats import nats_url  # noqa: F401 (a fixture)


@pytest.fixture
def streamed(hub: Hub, nats_url: str) -> Iterator[Hub]:  # noqa: F811 (the fixture above)
    """The session's hub, told of this test process's NATS server, with fresh streams."""
    settings = nats.settings_with(
        hub,
        nats_url,
        ingest_max_deliver=3,
        ingest_backoff_seconds=0.05,
        ingest_ack_wait_seconds=2.0,
    )
    nats.status(settings)  # Creates the streams, as the worker's first start would.
    yield dataclasses.replace(hub, settings=settings)
    nats.delete_streams(settings)


def _signer(actor: Actor) -> StreamSigner:
    signer = StreamSigner.generate()
    response = actor.post(
        f"/v1/principals/{actor.id}/signing-keys", {"public_key": signer.public_key}
    )
    assert response.status_code == 201, response.text
    return signer.named(response.json()["key_id"])


def _records(shop: ShopSetup, category: str) -> list[dict[str, Any]]:
    response = shop.keeper.get(f"/v1/shops/{shop.id}/{category}", limit=5000)
    assert response.status_code == 200, response.text
    records: list[dict[str, Any]] = response.json()["records"]
    return records


def _settled(hub: Hub) -> None:
    nats.wait_until(lambda: nats.drained(hub.settings), what="the stream to drain")


def test_a_signed_message_is_stored_once_and_a_retry_is_dropped_by_jetstream(
    world: World, streamed: Hub
) -> None:
    shop = world.shop()
    signer = _signer(shop.connector)
    one = signer.message(shop.id, "sales", sale(1), msg_id="S-1")
    batch = signer.message(shop.id, "sales", [sale(2), sale(3)], msg_id="batch-2-3")

    acks = nats.publish(nats.url_of(streamed.settings), [one, batch, one, batch])

    assert [ack.duplicate for ack in acks] == [None, None, True, True]
    with nats.worker(streamed):
        nats.wait_until(lambda: len(_records(shop, "sales")) == 3, what="three sales")
        _settled(streamed)
    stored = _records(shop, "sales")
    assert sorted(r["event_id"] for r in stored) == ["S-1", "S-2", "S-3"]
    assert stored[0]["unit_price_cents"] == sale(int(stored[0]["event_id"][2:]))["unit_price_cents"]
    # Sent again after the window (a new Nats-Msg-Id), the hub's natural ids still hold.
    nats.publish(
        nats.url_of(streamed.settings), [signer.message(shop.id, "sales", sale(1), msg_id="x")]
    )
    with nats.worker(streamed):
        _settled(streamed)
    assert len(_records(shop, "sales")) == 3
    ingests = [e for e in audit_log(shop.keeper, f"/v1/shops/{shop.id}/access-log")]
    assert any(e["action"] == "ingest" and e["principal_id"] == shop.connector.id for e in ingests)


def test_a_connector_cannot_publish_into_another_shops_subjects(
    world: World, streamed: Hub
) -> None:
    mine, theirs = world.shop(), world.shop("李家小卖部")
    signer = _signer(mine.connector)
    # Signed by shop A's connector, published on shop B's subject.
    forged = signer.message(theirs.id, "sales", sale(7), msg_id="S-7")
    nats.publish(nats.url_of(streamed.settings), [forged])

    with nats.worker(streamed):
        _settled(streamed)

    assert _records(theirs, "sales") == []
    refusals = [
        e
        for e in audit_log(world.principal("auditor"))
        if e["action"] == "ingest" and e["decision"] == "deny"
    ]
    assert [(r["shop_id"], r["principal_id"], r["reason"]) for r in refusals] == [
        (theirs.id, mine.connector.id, "policy")
    ]
    # Refused, not failed: nothing waits to be replayed.
    assert nats.status(streamed.settings).dead_lettered == 0


def test_unsigned_forged_and_revoked_messages_are_refused(world: World, streamed: Hub) -> None:
    shop = world.shop()
    signer = _signer(shop.connector)
    subject, body, headers = signer.message(shop.id, "sales", sale(1), msg_id="S-1")
    tampered = body.replace(b'"quantity":2', b'"quantity":9')
    assert tampered != body
    revoked = _signer(shop.connector)
    other_key = StreamSigner.generate().named(signer.key_id)  # claims a key it does not hold
    nats.publish(
        nats.url_of(streamed.settings),
        [
            (subject, body, {"Nats-Msg-Id": "unsigned"}),
            (subject, tampered, headers | {"Nats-Msg-Id": "tampered"}),
            revoked.message(shop.id, "sales", sale(3), msg_id="S-3"),
            other_key.message(shop.id, "sales", sale(2), msg_id="S-2"),
            signer.message(shop.id, "sales", sale(4), msg_id="S-4"),  # the one good message
        ],
    )
    # Revoked after its message was published, before the hub took it: refused all the same.
    response = shop.keeper.client.delete(
        f"/v1/principals/{shop.connector.id}/signing-keys/{revoked.key_id}",
        headers=shop.keeper.headers,
    )
    assert response.status_code == 200, response.text

    with nats.worker(streamed):
        _settled(streamed)

    assert [r["event_id"] for r in _records(shop, "sales")] == ["S-4"]
    assert nats.status(streamed.settings).dead_lettered == 0


def test_bad_records_on_the_stream_wait_in_the_shops_quarantine(
    world: World, streamed: Hub
) -> None:
    shop = world.shop()
    signer = _signer(shop.connector)
    subject, _, _ = signer.message(shop.id, "payments", {}, msg_id="unused")
    not_json = b"{payment 12"
    nats.publish(
        nats.url_of(streamed.settings),
        [
            signer.message(
                shop.id, "payments", [payment(1), payment(2, method="cash-ish")], msg_id="b1"
            ),
            (subject, not_json, signer.headers(subject, not_json, msg_id="b2")),
        ],
    )
    with nats.worker(streamed):
        _settled(streamed)

    assert [r["event_id"] for r in _records(shop, "payments")] == ["P-1"]
    response = shop.keeper.get(f"/v1/shops/{shop.id}/quarantine")
    assert response.status_code == 200, response.text
    quarantined = {r["field"]: r for r in response.json()["records"]}
    assert quarantined["method"]["values"]["event_id"] == "P-2"
    assert quarantined[""]["reason"] == "the message is not JSON"
    assert quarantined[""]["values"] == not_json.decode()


def _refuse_writes(hub: Hub, shop_id: str | None = None) -> None:
    """The database refuses every new record (of one shop), as one down for maintenance would."""
    sqlite = hub.engine.dialect.name == "sqlite"
    which = "" if shop_id is None else f"'{shop_id.replace('-', '') if sqlite else shop_id}'"
    with hub.engine.begin() as connection:
        if sqlite:
            when = f"WHEN NEW.shop_id = {which} " if which else ""
            connection.execute(
                text(
                    f"CREATE TRIGGER refuse_records BEFORE INSERT ON shop_records {when}"
                    "BEGIN SELECT RAISE(ABORT, 'down for maintenance'); END"
                )
            )
        else:
            test = f"NEW.shop_id = {which}" if which else "true"
            connection.execute(
                text(
                    "CREATE FUNCTION refuse_records() RETURNS trigger LANGUAGE plpgsql AS "
                    f"$$ BEGIN IF {test} THEN RAISE EXCEPTION 'down for maintenance'; END IF; "
                    "RETURN NEW; END $$"
                )
            )
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_records BEFORE INSERT ON shop_records "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_records()"
                )
            )


def _accept_writes(hub: Hub) -> None:
    with hub.engine.begin() as connection:
        if hub.engine.dialect.name == "sqlite":
            connection.execute(text("DROP TRIGGER IF EXISTS refuse_records"))
        else:
            connection.execute(text("DROP TRIGGER IF EXISTS refuse_records ON shop_records"))
            connection.execute(text("DROP FUNCTION IF EXISTS refuse_records()"))


def test_a_message_that_keeps_failing_is_dead_lettered_and_replayed(
    world: World, streamed: Hub, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = world.shop()
    signer = _signer(shop.connector)
    url = nats.url_of(streamed.settings)
    _refuse_writes(streamed)
    try:
        nats.publish(url, [signer.message(shop.id, "sales", [sale(1), sale(2)], msg_id="b1")])
        with nats.worker(streamed):
            nats.wait_until(
                lambda: nats.status(streamed.settings).dead_lettered == 1, what="a dead letter"
            )
            _settled(streamed)
    finally:
        _accept_writes(streamed)
    # The operator sees it waiting, and sends it back.
    monkeypatch.setenv("CORNERSTORE_NATS_URL", nats.url_of(streamed.settings))
    failed = cli("ingest", "status", "--json")
    assert failed.code == 0, failed.err
    assert json.loads(failed.out) | {"buffered_bytes": 0} == {
        "pending": 0,
        "in_flight": 0,
        "redelivered": 0,
        "dead_lettered": 1,
        "buffered_bytes": 0,
    }
    assert "dead-lettered           1" in cli("ingest", "status").out
    assert _records(shop, "sales") == []

    replayed = cli("ingest", "replay")

    assert (replayed.code, replayed.out) == (
        0,
        "sent 1 dead-lettered messages back to CORNERSTORE_INGEST\n",
    )
    assert nats.status(streamed.settings).dead_lettered == 0
    with nats.worker(streamed):
        nats.wait_until(lambda: len(_records(shop, "sales")) == 2, what="the replayed sales")
        _settled(streamed)
    # The replayed letter left the dead-letter stream: replaying again sends nothing.
    assert cli("ingest", "replay").out.startswith("sent 0 ")
    assert len(_records(shop, "sales")) == 2


def test_while_the_database_is_held_up_the_stream_buffers_and_loses_nothing(
    world: World, streamed: Hub
) -> None:
    shop = world.shop()
    signer = _signer(shop.connector)
    messages = [signer.message(shop.id, "sales", sale(n), msg_id=f"S-{n}") for n in range(40)]
    held = streamed.engine.connect()
    try:
        # A long transaction holding the records table: every write waits behind it.
        if streamed.engine.dialect.name == "sqlite":
            held.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            held.execute(text("BEGIN"))
            held.execute(text("LOCK TABLE shop_records IN EXCLUSIVE MODE"))
        with nats.worker(streamed):
            nats.publish(nats.url_of(streamed.settings), messages)
            time.sleep(2.0)  # long past the milliseconds storing 40 sales takes
            waiting = nats.status(streamed.settings)
            assert _stored(streamed, shop) == 0
            assert waiting.pending + waiting.in_flight == 40
            assert waiting.dead_lettered == 0
            held.rollback()
            nats.wait_until(lambda: len(_records(shop, "sales")) == 40, what="every sale")
            _settled(streamed)
    finally:
        held.close()
    assert json.dumps(sorted(r["event_id"] for r in _records(shop, "sales"))) == json.dumps(
        sorted(f"S-{n}" for n in range(40))
    )


def _stored(hub: Hub, shop: ShopSetup) -> int:
    with hub.engine.connect() as connection:
        found = connection.execute(
            text("SELECT count(*) FROM shop_records WHERE shop_id = :shop AND category = 'sales'"),
            {"shop": shop.id if hub.engine.dialect.name != "sqlite" else shop.id.replace("-", "")},
        ).scalar_one()
    return int(found)


def test_a_worker_killed_mid_stream_loses_nothing_and_stores_nothing_twice(
    world: World, streamed: Hub
) -> None:
    shop = world.shop()
    signer = _signer(shop.connector)
    url = nats.url_of(streamed.settings)
    total = 1000
    batches = [[sale(n * 5 + i) for i in range(5)] for n in range(total // 5)]
    messages = [signer.message(shop.id, "sales", b, msg_id=f"b-{n}") for n, b in enumerate(batches)]
    # Small fetches: many commits, so that the kill lands between two of them.
    slow = dataclasses.replace(
        streamed, settings=streamed.settings.model_copy(update={"ingest_fetch_batch": 5})
    )
    nats.publish(url, messages)

    with nats.worker_process(slow) as process:
        nats.wait_until(lambda: _stored(slow, shop) > 0, what="the first records")
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    at_kill = _stored(slow, shop)
    assert 0 < at_kill < total, at_kill

    # The publisher, not knowing what was stored, sends everything again: with the
    # same ids (JetStream drops them) and, as a retry after the window would, new ones.
    assert all(ack.duplicate for ack in nats.publish(url, messages))
    retries = [signer.message(shop.id, "sales", b, msg_id=f"r-{n}") for n, b in enumerate(batches)]
    nats.publish(url, retries)
    with nats.worker_process(slow):
        nats.wait_until(lambda: nats.drained(slow.settings), seconds=60, what="the stream to drain")

    stored = sorted(r["event_id"] for r in _records(shop, "sales"))
    assert stored == sorted(f"S-{n}" for n in range(total))
    assert nats.status(slow.settings).dead_lettered == 0


def test_two_shops_may_send_the_same_event_id_at_once(world: World, streamed: Hub) -> None:
    """JetStream's duplicate window spans the whole stream, not one subject: the
    SDK's message ids must not make one shop's event drop another's."""
    first, second = world.shop(), world.shop("李家小卖部")
    messages = [
        _signer(shop.connector).message(shop.id, "sales", sale(1), msg_id="S-1")
        for shop in (first, second)
    ]

    acks = nats.publish(nats.url_of(streamed.settings), messages)

    assert [ack.duplicate for ack in acks] == [None, None]
    with nats.worker(streamed):
        _settled(streamed)
    assert [r["event_id"] for r in _records(first, "sales")] == ["S-1"]
    assert [r["event_id"] for r in _records(second, "sales")] == ["S-1"]


def test_one_shop_failing_does_not_hold_back_another(world: World, streamed: Hub) -> None:
    failing, fine = world.shop(), world.shop("李家小卖部")
    _refuse_writes(streamed, failing.id)
    try:
        nats.publish(
            nats.url_of(streamed.settings),
            [
                _signer(shop.connector).message(shop.id, "sales", sale(n), msg_id=f"S-{n}")
                for n, shop in enumerate((failing, fine, failing))
            ],
        )
        with nats.worker(streamed):
            nats.wait_until(
                lambda: nats.status(streamed.settings).dead_lettered == 2, what="two dead letters"
            )
            _settled(streamed)
    finally:
        _accept_writes(streamed)
    assert [r["event_id"] for r in _records(fine, "sales")] == ["S-1"]
    assert _records(failing, "sales") == []
