"""Consent webhooks, as a consumer would notice them: retries, the delivery log, events
left by a process that died, and the addresses production never sends to.

The consumer's endpoint is a real HTTP server on 127.0.0.1. The app runs
without its lifespan here, so no background deliverer races the tests' own
:func:`deliver_due` calls; one test runs a :func:`deliverer` of its own.
"""

from __future__ import annotations

import dataclasses
import itertools
import socket
import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import OperationalError

from consent import webhooks
from consent.delivery import deliver_due, deliverer, lease_for, retry_delay
from cornerstore.db import session_scope
from cornerstore.models.consent import WebhookDelivery
from cornerstore.settings import Environment, Settings
from hub.app import create_app
from hub.runtime import Hub
from tests.factories import World
from tests.webhook_consumer import (
    DELIVERIES,
    STATUS_EVENT,
    WEBHOOK,
    Received,
    Receiver,
    client_without_lifespan,  # noqa: F401 (a fixture)
    deliveries,
    enqueue,
    enqueued,
    key_of,
    parse_time,
    receiver_fixture,  # noqa: F401 (a fixture)
    register,
    status_event,
    stored,
)

# --- retries and the delivery log -------------------------------------------------------------


def test_a_failing_receiver_is_retried_with_growing_delays_then_failed(
    world: World, hub: Hub, receiver: Receiver
) -> None:
    settings = hub.settings
    assert (settings.webhook_max_attempts, settings.webhook_backoff_seconds) == (8, 2.0)
    consumer = world.consumer()
    register(consumer, receiver.url)
    receiver.statuses = [500] * 8
    delivery_id = enqueued(hub, consumer)
    at = stored(hub, delivery_id).next_attempt_at
    delays: list[float] = []

    for attempt in range(1, 8):
        # Not a moment before it is due.
        assert deliver_due(hub.sessions, settings, at - timedelta(seconds=1)) == 0
        assert deliver_due(hub.sessions, settings, at) == 1
        [logged] = deliveries(consumer)["deliveries"]
        assert (logged["state"], logged["attempts"]) == ("pending", attempt)
        assert (logged["last_status"], logged["last_error"]) == (500, None)
        attempted_at = parse_time(logged["last_attempt_at"])
        assert at <= attempted_at < at + timedelta(seconds=1)
        following = parse_time(logged["next_attempt_at"])
        delays.append((following - attempted_at).total_seconds())
        at = following

    # 2 s, doubling each time, stretched by at most 10% of jitter; measured from
    # the attempt's start, so the send's own few milliseconds come on top.
    for attempt, delay in enumerate(delays, start=1):
        base = 2.0 * 2 ** (attempt - 1)
        assert base <= delay <= base * 1.1 + 0.5, delays
    assert all(later > earlier * 1.5 for earlier, later in itertools.pairwise(delays)), delays
    assert deliver_due(hub.sessions, settings, at) == 1
    [logged] = deliveries(consumer)["deliveries"]
    assert (logged["state"], logged["attempts"], logged["last_status"]) == ("failed", 8, 500)
    assert logged["next_attempt_at"] is None
    assert logged["delivered_at"] is None
    assert deliver_due(hub.sessions, settings, at + timedelta(days=30)) == 0
    assert len(receiver.requests) == 8
    assert len({r.headers["cornerstore-event-id"] for r in receiver.requests}) == 1
    # The receiver's answers are never kept or shown.
    assert "RECEIVER-SAYS" not in consumer.get(DELIVERIES).text


def test_retries_stop_doubling_at_six_hours(hub: Hub) -> None:
    patient = hub.settings.model_copy(update={"webhook_backoff_seconds": 1e9})
    for settings, attempts in ((hub.settings, 20), (hub.settings, 10_000), (patient, 1)):
        delay = retry_delay(settings, attempts)
        assert timedelta(hours=6) <= delay <= timedelta(hours=6) * 1.1


def test_a_receiver_that_recovers_gets_the_event(
    world: World, hub: Hub, receiver: Receiver
) -> None:
    consumer = world.consumer()
    secret = key_of(register(consumer, receiver.url)["secret"])
    receiver.statuses = [500, 503, 204]
    delivery_id = enqueued(hub, consumer)

    for _ in range(3):
        row = stored(hub, delivery_id)
        assert row.state == "pending"
        assert deliver_due(hub.sessions, hub.settings, row.next_attempt_at) == 1

    row = stored(hub, delivery_id)
    assert (row.state, row.attempts, row.last_status, row.last_error) == ("delivered", 3, 204, None)
    assert row.last_attempt_at is not None
    assert row.delivered_at is not None
    assert row.last_attempt_at <= row.delivered_at
    assert len({r.body for r in receiver.requests}) == 1
    timestamps = [r.timestamp for r in receiver.requests]
    assert timestamps == sorted(timestamps)
    assert timestamps[0] < timestamps[-1]
    for received in receiver.requests:
        webhooks.verify(secret, received.signature, received.body, now=received.timestamp)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_an_unreachable_receiver_is_logged_by_error_type(world: World, hub: Hub) -> None:
    consumer = world.consumer()
    register(consumer, f"http://127.0.0.1:{_closed_port()}/hook")
    enqueue(hub, consumer)

    assert deliver_due(hub.sessions, hub.settings) == 1

    [logged] = deliveries(consumer)["deliveries"]
    assert (logged["state"], logged["attempts"]) == ("pending", 1)
    assert logged["last_status"] is None
    assert logged["last_error"] == "ConnectionRefusedError"


def test_a_redirect_is_a_failed_attempt_not_followed(
    world: World, hub: Hub, receiver: Receiver
) -> None:
    consumer = world.consumer()
    register(consumer, receiver.url)
    receiver.statuses = [307]
    enqueue(hub, consumer)

    assert deliver_due(hub.sessions, hub.settings) == 1

    assert len(receiver.requests) == 1
    [logged] = deliveries(consumer)["deliveries"]
    assert (logged["state"], logged["last_status"]) == ("pending", 307)


def test_no_database_lock_is_held_while_sending(world: World, hub: Hub, receiver: Receiver) -> None:
    consumer = world.consumer()
    register(consumer, receiver.url)
    delivery_id = enqueued(hub, consumer)
    locked: list[bool] = []

    def try_to_write(_received: Received) -> None:
        # Another writer, unwilling to wait: it fails if the hub holds a lock now.
        url = hub.engine.url
        if url.get_backend_name() == "sqlite":
            raw = sqlite3.connect(str(url.database), timeout=0, isolation_level=None)
            try:
                raw.execute("BEGIN IMMEDIATE")
                raw.execute("ROLLBACK")
                locked.append(False)
            except sqlite3.OperationalError:
                locked.append(True)
            finally:
                raw.close()
            return
        engine = create_engine(url)
        try:
            with engine.begin() as connection:
                connection.execute(
                    text("SELECT id FROM webhook_deliveries WHERE id = :id FOR UPDATE NOWAIT"),
                    {"id": delivery_id},
                )
            locked.append(False)
        except OperationalError:
            locked.append(True)
        finally:
            engine.dispose()

    receiver.during = try_to_write
    assert deliver_due(hub.sessions, hub.settings) == 1
    assert locked == [False]
    assert stored(hub, delivery_id).state == "delivered"


def test_processes_racing_never_send_the_same_attempt_twice(
    world: World, hub: Hub, receiver: Receiver
) -> None:
    consumer = world.consumer()
    register(consumer, receiver.url)
    ids = {enqueued(hub, consumer, status_event(n)) for n in range(24)}
    now = datetime.now(UTC)
    counts: list[int] = []
    start = threading.Barrier(4)

    def worker() -> None:
        start.wait()
        counts.append(deliver_due(hub.sessions, hub.settings, now))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    sent = [r.headers["cornerstore-event-id"] for r in receiver.requests]
    assert sorted(sent) == sorted(str(i) for i in ids)
    assert sum(counts) == 24
    with hub.sessions() as session:
        assert set(session.scalars(select(WebhookDelivery.attempts))) == {1}


def test_the_delivery_log_is_the_consumers_own_and_pages_newest_first(
    world: World, hub: Hub
) -> None:
    alice, bob = world.consumer(), world.consumer()
    register(alice, "https://alice.example/hook")
    register(bob, "https://bob.example/hook")
    alices = [enqueued(hub, alice, status_event(n)) for n in range(3)]
    bobs = enqueued(hub, bob, status_event(9))

    first = deliveries(alice, limit=2)
    assert [d["id"] for d in first["deliveries"]] == [str(alices[2]), str(alices[1])]
    assert first["next"] == str(alices[1])
    rest = deliveries(alice, limit=2, after=first["next"])
    assert [d["id"] for d in rest["deliveries"]] == [str(alices[0])]
    assert rest["next"] is None
    assert [d["id"] for d in deliveries(bob)["deliveries"]] == [str(bobs)]

    # Bob's delivery is no cursor for Alice: it names nothing of hers.
    peeked = alice.get(DELIVERIES, after=str(bobs))
    assert peeked.status_code == 422, peeked.text
    assert [f["field"] for f in peeked.json()["fields"]] == ["query.after"]
    assert str(bobs) not in alice.get(DELIVERIES).text


def test_enqueue_without_a_webhook_adds_nothing(world: World, hub: Hub) -> None:
    consumer = world.consumer()

    assert enqueue(hub, consumer) is None

    with hub.sessions() as session:
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
    assert deliveries(consumer) == {"deliveries": [], "next": None}


def test_an_event_exists_only_if_its_transaction_commits(world: World, hub: Hub) -> None:
    consumer = world.consumer()
    register(consumer, "https://lender.example/hook")

    with hub.sessions() as session:
        queued = webhooks.enqueue(session, uuid.UUID(consumer.id), STATUS_EVENT, status_event())
        assert queued is not None
        session.rollback()

    assert deliveries(consumer)["deliveries"] == []


def test_the_deliverer_thread_delivers_in_the_background(
    world: World, hub: Hub, receiver: Receiver
) -> None:
    consumer = world.consumer()
    register(consumer, receiver.url)
    delivery_id = enqueued(hub, consumer)
    poller = deliverer(hub.sessions, hub.settings)

    poller.start()
    try:
        deadline = time.monotonic() + 10
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        poller.stop()

    assert [r.headers["cornerstore-event-id"] for r in receiver.requests] == [str(delivery_id)]
    assert stored(hub, delivery_id).state == "delivered"


def _as_if_a_process_died_mid_send(hub: Hub, delivery_id: uuid.UUID, attempts: int) -> datetime:
    """Leave the event as a process that claimed it and then died would: return the lease's end."""
    claimed_at = datetime.now(UTC)
    with session_scope(hub.sessions) as session:
        row = session.get(WebhookDelivery, delivery_id)
        assert row is not None
        row.attempts = attempts
        row.last_attempt_at = claimed_at
        row.next_attempt_at = claimed_at + lease_for(hub.settings)
        return row.next_attempt_at


def test_an_attempt_whose_process_died_is_sent_again_after_its_lease(
    world: World, hub: Hub, receiver: Receiver
) -> None:
    consumer = world.consumer()
    register(consumer, receiver.url)
    delivery_id = enqueued(hub, consumer)
    lease_ends = _as_if_a_process_died_mid_send(hub, delivery_id, attempts=1)

    assert deliver_due(hub.sessions, hub.settings, lease_ends - timedelta(seconds=1)) == 0
    assert deliver_due(hub.sessions, hub.settings, lease_ends) == 1

    row = stored(hub, delivery_id)
    assert (row.state, row.attempts) == ("delivered", 2)
    assert [r.headers["cornerstore-event-id"] for r in receiver.requests] == [str(delivery_id)]


def test_an_interrupted_last_attempt_fails_without_another_send(
    world: World, hub: Hub, receiver: Receiver
) -> None:
    consumer = world.consumer()
    register(consumer, receiver.url)
    delivery_id = enqueued(hub, consumer)
    last = hub.settings.webhook_max_attempts
    lease_ends = _as_if_a_process_died_mid_send(hub, delivery_id, attempts=last)

    assert deliver_due(hub.sessions, hub.settings, lease_ends) == 0

    row = stored(hub, delivery_id)
    assert (row.state, row.attempts, row.last_error) == ("failed", last + 1, "Interrupted")
    assert receiver.requests == []


def test_a_malformed_cursor_or_limit_is_refused_by_field(world: World) -> None:
    consumer = world.consumer()
    response = consumer.get(DELIVERIES, after="not-a-uuid", limit=0)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation_failed"
    assert sorted(f["field"] for f in response.json()["fields"]) == ["query.after", "query.limit"]


def _production(hub: Hub) -> Settings:
    return Settings(
        environment=Environment.production,
        database_url=hub.settings.sqlalchemy_url,
        master_key_file=hub.settings.master_key_path,
        data_dir=hub.settings.data_dir,
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.0.0.5/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]:8443/hook",
        "https://192.168.1.20:5432/",
    ],
)
def test_production_refuses_webhooks_into_private_networks(
    hub: Hub, world: World, url: str
) -> None:
    consumer = world.consumer()
    with TestClient(create_app(dataclasses.replace(hub, settings=_production(hub)))) as client:
        response = client.put(WEBHOOK, json={"url": url}, headers=consumer.headers)
    assert response.status_code == 422, response.text
    assert [f["field"] for f in response.json()["fields"]] == ["body.url"]


def test_production_never_sends_to_a_name_that_resolves_privately(
    world: World, hub: Hub, receiver: Receiver
) -> None:
    consumer = world.consumer()
    # Registered outside production, as "localhost": a name, resolving to loopback.
    register(consumer, receiver.url.replace("127.0.0.1", "localhost"))
    enqueue(hub, consumer)

    assert deliver_due(hub.sessions, _production(hub)) == 1

    assert receiver.requests == []
    [logged] = deliveries(consumer)["deliveries"]
    assert (logged["state"], logged["last_error"]) == ("pending", "PrivateAddress")


def test_erasing_a_shop_tells_the_consumers_whose_consents_it_ends(world: World) -> None:
    shop = world.shop()
    reader, paused_reader, asker = world.consumer(), world.consumer(), world.consumer()
    for consumer in (reader, paused_reader, asker):
        register(consumer, "http://127.0.0.1:9/hook")
    active = world.grant(shop, reader, "replenishment", ["sales"])
    paused = world.grant(shop, paused_reader, "replenishment", ["sales"])
    shop.keeper.post(f"/v1/shops/{shop.id}/consents/{paused['id']}/pause")
    asked = asker.post(
        f"/v1/shops/{shop.id}/consent-requests",
        {
            "purpose": "analytics",
            "categories": ["sales"],
            "expires_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        },
    )
    assert asked.status_code == 201, asked.text

    erased = shop.keeper.post(f"/v1/shops/{shop.id}/erasure")

    assert erased.status_code in (200, 202), erased.text
    for consumer, consent in ((reader, active), (paused_reader, paused)):
        latest = deliveries(consumer)["deliveries"][0]["payload"]
        assert (latest["consent_id"], latest["status"], latest["change"]) == (
            consent["id"],
            "revoked",
            "erased",
        )
    # A request never granted ends without news: its consumer was never let in.
    assert [d["payload"]["change"] for d in deliveries(asker)["deliveries"]] == ["requested"]
