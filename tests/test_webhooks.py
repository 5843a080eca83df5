"""Consent webhooks, as a consumer would notice them: registering, and signed events.

The consumer's endpoint is a real HTTP server on 127.0.0.1. The app runs
without its lifespan here, so no background deliverer races the tests' own
:func:`deliver_due` calls. Retries and the delivery log are tested in
tests/test_webhook_deliveries.py.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from consent import webhooks
from consent.delivery import deliver_due
from cornerstore.settings import Environment, Settings
from hub.app import create_app
from hub.runtime import Hub
from tests.factories import World
from tests.webhook_consumer import (
    DELIVERIES,
    STATUS_EVENT,
    WEBHOOK,
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
)

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
    sent_at, answered_at = parse_time(logged["last_attempt_at"]), parse_time(logged["delivered_at"])
    assert now <= sent_at <= answered_at < now + timedelta(seconds=1)
    assert deliver_due(hub.sessions, hub.settings, now + timedelta(days=1)) == 0
    assert len(receiver.requests) == 1


def test_a_standard_webhooks_library_verifies_every_delivery(
    world: World, hub: Hub, receiver: Receiver
) -> None:
    """A consumer that knows nothing of Cornerstore verifies with the specification's library;
    a tampered body, another event's id or another secret fails it."""
    consumer = world.consumer()
    secret = register(consumer, receiver.url)["secret"]
    delivery_id = enqueued(hub, consumer, status_event())
    deliver_due(hub.sessions, hub.settings)
    [received] = receiver.requests

    assert received.headers["webhook-id"] == str(delivery_id)
    assert int(received.headers["webhook-timestamp"]) == received.timestamp
    assert received.headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(received.body, received.headers) == received.event
    tampered = received.body.replace(b"revoked", b"resumed")
    assert tampered != received.body
    other_id = {**received.headers, "webhook-id": str(uuid.uuid4())}
    other_secret = register(world.consumer(), "https://other.example/")["secret"]
    for body, headers, key in (
        (tampered, received.headers, secret),
        (received.body, other_id, secret),
        (received.body, received.headers, other_secret),
    ):
        with pytest.raises(WebhookVerificationError):
            Webhook(key).verify(body, headers)


def test_a_secret_handed_out_before_standard_webhooks_still_decodes() -> None:
    key = bytes(range(250, 256)) + bytes(26)  # base64url of it has "-" or "_"
    legacy = "whsec_" + base64.urlsafe_b64encode(key).rstrip(b"=").decode()
    assert "-" in legacy or "_" in legacy

    assert webhooks.decode_secret(legacy) == key
    assert webhooks.decode_secret(webhooks.encode_secret(key)) == key
    assert webhooks.encode_secret(key) == "whsec_" + base64.b64encode(key).decode()


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
