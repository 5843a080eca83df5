"""Consent webhooks, as a consumer would notice them: signed events, retries, the delivery log.

The consumer's endpoint is a real HTTP server on 127.0.0.1. The app runs
without its lifespan here, so no background deliverer races the tests' own
:func:`deliver_due` calls; one test runs a :func:`deliverer` of its own.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import itertools
import json
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi import FastAPI
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
from tests.factories import Actor, World

WEBHOOK = "/v1/consumers/me/webhook"
DELIVERIES = f"{WEBHOOK}/deliveries"
STATUS_EVENT = "consent.status_changed"


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """The app without its lifespan: no deliverer thread sends behind the test's back."""
    test_client = TestClient(app)
    yield test_client
    test_client.close()


# --- a consumer's endpoint --------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def signature(self) -> str:
        return self.headers["cornerstore-signature"]

    @property
    def timestamp(self) -> int:
        return int(dict(p.split("=", 1) for p in self.signature.split(","))["t"])


@dataclass
class Receiver:
    """A consumer's webhook endpoint: records each request and answers the next queued status."""

    url: str
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    #: Called while a request is being answered, before the answer is sent.
    during: Callable[[Received], None] | None = None

    def answer(self, received: Received) -> int:
        self.requests.append(received)
        if self.during is not None:
            self.during(received)
        return self.statuses.pop(0) if self.statuses else 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            status = state[0].answer(Received(headers, body))
            # A body the hub must never keep or show.
            reply = b"RECEIVER-SAYS-internal-stack-trace"
            self.send_response(status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.append(Receiver(f"http://127.0.0.1:{server.server_address[1]}/hooks/cornerstore"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state[0]
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


# --- helpers ----------------------------------------------------------------------------------


def register(consumer: Actor, url: str) -> dict[str, Any]:
    response = consumer.client.put(WEBHOOK, json={"url": url}, headers=consumer.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def key_of(secret: str) -> bytes:
    """The HMAC key a shown secret stands for, decoded here without the hub's helper."""
    assert secret.startswith("whsec_")
    encoded = secret.removeprefix("whsec_")
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))


def status_event(n: int = 1) -> dict[str, Any]:
    """An event as the consent service writes it."""
    return {
        "consent_id": str(uuid.UUID(int=n)),
        "shop_id": str(uuid.UUID(int=1000 + n)),
        "version": n,
        "status": "revoked",
        "change": "revoked",
        "changed_at": "2026-11-27T08:00:00Z",
    }


def enqueue(hub: Hub, consumer: Actor, payload: dict[str, Any] | None = None) -> uuid.UUID | None:
    """What the consent service does when a consent changes; the event's id, if one was queued."""
    with session_scope(hub.sessions) as session:
        delivery = webhooks.enqueue(
            session, uuid.UUID(consumer.id), STATUS_EVENT, payload or status_event()
        )
        return delivery.id if delivery else None


def enqueued(hub: Hub, consumer: Actor, payload: dict[str, Any] | None = None) -> uuid.UUID:
    delivery_id = enqueue(hub, consumer, payload)
    assert delivery_id is not None
    return delivery_id


def stored(hub: Hub, delivery_id: uuid.UUID) -> WebhookDelivery:
    with hub.sessions() as session:
        row = session.get(WebhookDelivery, delivery_id)
        assert row is not None
        return row


def deliveries(consumer: Actor, **params: Any) -> dict[str, Any]:
    response = consumer.get(DELIVERIES, **params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- registering ------------------------------------------------------------------------------


def test_register_shows_the_secret_once_and_get_never_shows_it(world: World) -> None:
    consumer = world.consumer()
    assert consumer.get(WEBHOOK).status_code == 404

    registered = register(consumer, "https://lender.example/hooks/cornerstore")

    assert set(registered) == {"url", "secret", "created_at"}
    assert registered["url"] == "https://lender.example/hooks/cornerstore"
    assert len(key_of(registered["secret"])) == 32
    shown = consumer.get(WEBHOOK)
    assert shown.status_code == 200, shown.text
    assert shown.json() == {"url": registered["url"], "created_at": registered["created_at"]}
    assert registered["secret"] not in shown.text


def test_the_database_holds_no_secret(world: World, hub: Hub) -> None:
    consumer = world.consumer()
    shown = register(consumer, "https://lender.example/hook")["secret"]

    with hub.engine.connect() as connection:
        row = connection.execute(
            text("SELECT * FROM consumer_webhooks WHERE url = :url"),
            {"url": "https://lender.example/hook"},
        ).one()
    stored_values = [
        bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in row
    ]
    assert len(stored_values) == 4
    for value in stored_values:
        assert key_of(shown) not in value
        assert shown.encode() not in value
    assert hub.settings.webhook_key_path.stat().st_mode & 0o077 == 0


def test_only_consumers_have_webhooks(world: World) -> None:
    shop = world.shop()
    response = shop.keeper.client.put(
        WEBHOOK, json={"url": "https://shop.example/hook"}, headers=shop.keeper.headers
    )
    assert response.status_code == 403, response.text
    assert shop.keeper.get(DELIVERIES).status_code == 403


@pytest.mark.parametrize(
    "url",
    [
        "ftp://lender.example/hook",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "lender.example/hook",
        "not a url",
        "https://",
        "https:///path-only",
        "http://user:password@lender.example/hook",
        "https://lender.example:99999/hook",
        "https://lender.example/hook#part",
        "https://lender.example/h\u00f6ok",
        "https://lender.example/" + "a" * 2000,
        "",
        12,
        None,
    ],
)
def test_a_bad_url_is_refused_naming_body_url(world: World, url: Any) -> None:
    consumer = world.consumer()

    response = consumer.client.put(WEBHOOK, json={"url": url}, headers=consumer.headers)

    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "validation_failed"
    assert [f["field"] for f in body["fields"]] == ["body.url"]
    assert consumer.get(WEBHOOK).status_code == 404


def test_a_missing_url_is_refused_naming_body_url(world: World) -> None:
    consumer = world.consumer()
    response = consumer.client.put(WEBHOOK, json={}, headers=consumer.headers)
    assert response.status_code == 422, response.text
    assert [f["field"] for f in response.json()["fields"]] == ["body.url"]


def test_production_accepts_only_https(hub: Hub, world: World) -> None:
    consumer = world.consumer()
    production = Settings(
        environment=Environment.production,
        database_url=hub.settings.sqlalchemy_url,
        master_key_file=hub.settings.master_key_path,
        data_dir=hub.settings.data_dir,
    )
    app = create_app(dataclasses.replace(hub, settings=production))
    with_production = TestClient(app)

    plain = with_production.put(
        WEBHOOK, json={"url": "http://lender.example/hook"}, headers=consumer.headers
    )
    tls = with_production.put(
        WEBHOOK, json={"url": "https://lender.example/hook"}, headers=consumer.headers
    )

    assert plain.status_code == 422, plain.text
    assert plain.json()["fields"] == [{"field": "body.url", "reason": "must use https"}]
    assert tls.status_code == 200, tls.text


# --- signed deliveries ------------------------------------------------------------------------


def test_an_event_arrives_signed_and_verifies(world: World, hub: Hub, receiver: Receiver) -> None:
    consumer = world.consumer()
    secret = register(consumer, receiver.url)["secret"]
    delivery_id = enqueued(hub, consumer, {**status_event(), "event_id": "forged", "type": "x"})
    # A whole second (the next), so the milliseconds the call takes leave the signed second as is.
    now = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0)

    assert deliver_due(hub.sessions, hub.settings, now) == 1

    [received] = receiver.requests
    assert received.headers["cornerstore-event-id"] == str(delivery_id)
    assert received.headers["content-type"] == "application/json"
    assert received.event == {
        "event_id": str(delivery_id),
        "type": STATUS_EVENT,
        **status_event(),
    }
    # Recomputed here from the shown secret, with nothing but hmac and hashlib.
    t = received.timestamp
    assert t == int(now.timestamp())
    expected = hmac.new(key_of(secret), f"{t}.".encode() + received.body, hashlib.sha256)
    assert received.signature == f"t={t},v1={expected.hexdigest()}"
    webhooks.verify(webhooks.decode_secret(secret), received.signature, received.body, now=t + 5)

    [logged] = deliveries(consumer)["deliveries"]
    assert logged["id"] == str(delivery_id)
    assert logged["event_type"] == STATUS_EVENT
    assert logged["payload"] == received.event
    assert (logged["state"], logged["attempts"], logged["last_status"]) == ("delivered", 1, 200)
    assert logged["last_error"] is None
    assert logged["next_attempt_at"] is None
    sent_at, answered_at = _parse(logged["last_attempt_at"]), _parse(logged["delivered_at"])
    assert now <= sent_at <= answered_at < now + timedelta(seconds=1)
    assert deliver_due(hub.sessions, hub.settings, now + timedelta(days=1)) == 0
    assert len(receiver.requests) == 1


def test_a_replay_after_the_tolerance_is_refused(
    world: World, hub: Hub, receiver: Receiver
) -> None:
    consumer = world.consumer()
    secret = webhooks.decode_secret(register(consumer, receiver.url)["secret"])
    enqueue(hub, consumer)
    deliver_due(hub.sessions, hub.settings)
    [captured] = receiver.requests
    t = captured.timestamp

    webhooks.verify(secret, captured.signature, captured.body, now=t + 300)
    for later in (t + 301, t + 86400, t - 301):
        with pytest.raises(webhooks.WebhookSignatureError, match="tolerance"):
            webhooks.verify(secret, captured.signature, captured.body, now=later)
    with pytest.raises(webhooks.WebhookSignatureError, match="tolerance"):
        webhooks.verify(secret, captured.signature, captured.body, now=t + 61, tolerance=60)


def test_a_tampered_body_or_a_wrong_secret_is_refused(
    world: World, hub: Hub, receiver: Receiver
) -> None:
    consumer = world.consumer()
    secret = webhooks.decode_secret(register(consumer, receiver.url)["secret"])
    other = world.consumer()
    other_secret = webhooks.decode_secret(register(other, "https://other.example/")["secret"])
    enqueue(hub, consumer)
    deliver_due(hub.sessions, hub.settings)
    [captured] = receiver.requests
    t = captured.timestamp
    tampered = captured.body.replace(b'"revoked"', b'"active"', 1)
    assert tampered != captured.body
    # Moving the timestamp forward (to slip past the tolerance) breaks the signature too.
    v1 = captured.signature.split(",v1=")[1]

    for key, header, body in (
        (secret, captured.signature, tampered),
        (other_secret, captured.signature, captured.body),
        (bytes(32), captured.signature, captured.body),
        (secret, f"t={t + 1000},v1={v1}", captured.body),
    ):
        with pytest.raises(webhooks.WebhookSignatureError, match="no signature matches"):
            webhooks.verify(key, header, body, now=t)
    webhooks.verify(secret, captured.signature, captured.body, now=t)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "t=1700000000",
        "v1=" + "0" * 64,
        "t=soon,v1=" + "0" * 64,
        "t=-5,v1=" + "0" * 64,
        "t=1,t=2,v1=" + "0" * 64,
        "t=\u0661\u0662,v1=" + "0" * 64,
        "t=1700000000,v1=\u00e9",
    ],
)
def test_a_malformed_signature_header_is_refused(header: str) -> None:
    with pytest.raises(webhooks.WebhookSignatureError):
        webhooks.verify(bytes(32), header, b"{}", now=1700000000)


def test_a_signature_verifies_among_several_and_unknown_schemes_are_skipped() -> None:
    secret, body, t = b"k" * 32, b'{"a":1}', 1700000000
    good = webhooks.sign(secret, t, body).split(",v1=")[1]
    header = f"t={t},v0=old,v1={'0' * 64},v1={good}"
    webhooks.verify(secret, header, body, now=t)


def test_re_registering_changes_the_secret(world: World, hub: Hub, receiver: Receiver) -> None:
    consumer = world.consumer()
    first = register(consumer, "https://old.example/hook")
    second = register(consumer, receiver.url)
    assert first["secret"] != second["secret"]
    assert consumer.get(WEBHOOK).json()["url"] == receiver.url

    enqueue(hub, consumer)
    deliver_due(hub.sessions, hub.settings)

    [received] = receiver.requests
    t = received.timestamp
    webhooks.verify(key_of(second["secret"]), received.signature, received.body, now=t)
    with pytest.raises(webhooks.WebhookSignatureError):
        webhooks.verify(key_of(first["secret"]), received.signature, received.body, now=t)


def test_a_consent_granted_then_revoked_reaches_its_consumer(
    world: World, hub: Hub, receiver: Receiver
) -> None:
    shop = world.shop()
    consumer, bystander = world.consumer(), world.consumer()
    secret = key_of(register(consumer, receiver.url)["secret"])
    register(bystander, "https://bystander.example/hook")
    consent = world.grant(shop, consumer, "analytics", ["sales"])
    revoked = shop.keeper.post(f"/v1/shops/{shop.id}/consents/{consent['id']}/revoke")
    assert revoked.status_code == 200, revoked.text

    assert deliver_due(hub.sessions, hub.settings) == 2

    events = [r.event for r in receiver.requests]
    assert [(e["type"], e["consent_id"], e["shop_id"]) for e in events] == [
        (STATUS_EVENT, consent["id"], shop.id)
    ] * 2
    assert [(e["version"], e["status"], e["change"]) for e in events] == [
        (1, "active", "granted"),
        (2, "revoked", "revoked"),
    ]
    for received in receiver.requests:
        webhooks.verify(secret, received.signature, received.body, now=received.timestamp)
    assert deliveries(bystander)["deliveries"] == []


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
        attempted_at = _parse(logged["last_attempt_at"])
        assert at <= attempted_at < at + timedelta(seconds=1)
        following = _parse(logged["next_attempt_at"])
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
