"""A consumer of consent webhooks as the webhook tests play it: its endpoint, and its calls.

The endpoint is a real HTTP server on 127.0.0.1. The ``client`` fixture here
runs the app without its lifespan, so no background deliverer races the tests'
own :func:`deliver_due` calls; a test module that sends webhooks imports both
fixtures (``client_without_lifespan`` and ``receiver_fixture``).
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from consent import webhooks
from cornerstore.db import session_scope
from cornerstore.models.consent import WebhookDelivery
from hub.runtime import Hub
from tests.factories import Actor

WEBHOOK = "/v1/consumers/me/webhook"
DELIVERIES = f"{WEBHOOK}/deliveries"
STATUS_EVENT = "consent.status_changed"


@pytest.fixture(name="client")
def client_without_lifespan(app: FastAPI) -> Iterator[TestClient]:
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


@pytest.fixture(name="receiver")
def receiver_fixture() -> Iterator[Receiver]:
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
    """The HMAC key a shown secret stands for, decoded here without the hub's helper:
    standard base64, as the Standard Webhooks specification has it."""
    assert secret.startswith("whsec_")
    return base64.b64decode(secret.removeprefix("whsec_"), validate=True)


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


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
