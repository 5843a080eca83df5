"""Webhooks reach only the public internet, however their address is written or resolves.

The receivers here are real HTTP servers on 127.0.0.1, which the test settings
name in ``webhook_private_hosts`` (as a developer would); everything else
private is refused in every environment.
"""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from consent import pinned_http, webhooks
from consent.delivery import deliver_due
from cornerstore.settings import Environment, Settings
from hub.app import create_app
from hub.runtime import Hub
from tests.factories import World
from tests.webhook_consumer import (
    WEBHOOK,
    Receiver,
    client_without_lifespan,  # noqa: F401 (a fixture)
    deliveries,
    enqueue,
    receiver_fixture,  # noqa: F401 (a fixture)
    register,
)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",  # the cloud metadata service
        "http://10.0.0.5/hook",
        "http://192.168.1.20:5432/",
        "http://[::1]:8443/hook",
        "http://[fe80::1]/hook",
        # IPv6 forms that carry an IPv4 address are judged by it.
        "http://[::ffff:169.254.169.254]/",  # IPv4-mapped
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
        "http://[2002:a9fe:a9fe::1]/",  # 6to4 of 169.254.169.254
        "http://[64:ff9b::a00:5]/",  # NAT64 of 10.0.0.5
        "http://[::127.0.0.1]/",  # IPv4-compatible
        "http://[::ffff:0:7f00:1]/",  # IPv4-translated
        "http://[fec0::1]/",  # site-local
        "http://224.0.0.1/",  # multicast
        "http://[ff02::1]/",
    ],
)
def test_private_targets_are_refused_outside_production_too(world: World, url: str) -> None:
    consumer = world.consumer()
    response = consumer.client.put(WEBHOOK, json={"url": url}, headers=consumer.headers)
    assert response.status_code == 422, response.text
    assert [f["field"] for f in response.json()["fields"]] == ["body.url"]


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "64:ff9b::5db8:d70e"]
)
def test_public_addresses_stay_public_in_any_form(address: str) -> None:
    assert webhooks.is_public_address(address)


def test_a_named_private_host_is_allowed_for_development_only(hub: Hub, world: World) -> None:
    consumer = world.consumer()
    url = "http://127.0.0.1:9/hook"
    assert hub.settings.webhook_private_hosts  # the test settings name 127.0.0.1
    register(consumer, url)
    without = dataclasses.replace(
        hub, settings=hub.settings.model_copy(update={"webhook_private_hosts": []})
    )
    with TestClient(create_app(without)) as client:
        refused = client.put(WEBHOOK, json={"url": url}, headers=consumer.headers)
    assert refused.status_code == 422, refused.text
    with pytest.raises(ValidationError, match="WEBHOOK_PRIVATE_HOSTS is for development"):
        Settings(
            environment=Environment.production,
            database_url=hub.settings.sqlalchemy_url,
            master_key_file=hub.settings.master_key_path,
            webhook_private_hosts=["127.0.0.1"],
        )


def test_a_delivery_connects_to_the_address_it_checked(receiver: Receiver) -> None:
    # The request names a host that resolves nowhere; it arrives all the same,
    # because the connection goes to the checked address and never looks the
    # name up again (no DNS rebinding between the check and the send).
    port = int(receiver.url.rsplit(":", 1)[1].split("/", 1)[0])
    status = pinned_http.post(
        f"http://receiver.invalid:{port}/hooks/cornerstore",
        "127.0.0.1",
        b"{}",
        {"Content-Type": "application/json"},
        5.0,
    )
    assert status == 200
    [received] = receiver.requests
    assert received.headers["host"] == f"receiver.invalid:{port}"


def test_a_name_that_resolves_privately_is_never_sent_to(
    world: World, hub: Hub, receiver: Receiver
) -> None:
    consumer = world.consumer()
    # Registered while the operator allowed "localhost"; then no longer allowed.
    register(consumer, receiver.url.replace("127.0.0.1", "localhost"))
    assert enqueue(hub, consumer) is not None
    strict = hub.settings.model_copy(update={"webhook_private_hosts": []})

    assert deliver_due(hub.sessions, strict) == 1

    assert receiver.requests == []
    [logged] = deliveries(consumer)["deliveries"]
    assert (logged["state"], logged["last_error"]) == ("pending", "PrivateAddress")
    assert uuid.UUID(logged["id"])
