"""No oracles: a stranger learns nothing about whether a shop exists, whatever it sends.

Every endpoint under ``/v1/shops/{shop_id}`` is walked from the OpenAPI
document, so a new endpoint is covered the day it is added. A stranger's
request about a real shop must be answered exactly as the same request about
a shop that does not exist, however wrong its body or query.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.factories import Actor, World

#: Bodies that fail validation in different ways, and one that is not JSON at all.
BAD_BODIES: tuple[Any, ...] = ({}, {"records": "x", "purpose": 7}, [1, 2], "\u0000")


def _shop_operations(world: World) -> list[tuple[str, str, bool]]:
    """(method, path template, takes a body) for every operation about one shop."""
    document = world.client.get("/openapi.json").json()
    found = []
    for path, operations in document["paths"].items():
        if not path.startswith("/v1/shops/{shop_id}"):
            continue
        for method, operation in operations.items():
            found.append((method.upper(), path, "requestBody" in operation))
    return sorted(found)


def _fill(path: str, shop_id: str) -> str:
    # Every other path parameter is an id the stranger makes up.
    filled = path.replace("{shop_id}", shop_id)
    for name in ("consent_id", "request_id", "proposal_id"):
        filled = filled.replace(f"{{{name}}}", str(uuid.UUID(int=7)))
    filled = filled.replace("{qid}", "7")
    assert "{" not in filled, filled
    return filled


def _ask(actor: Actor, method: str, path: str, body: Any) -> tuple[int, Any]:
    response = actor.client.request(
        method,
        path,
        headers=actor.headers,
        json=body,
        params={"purpose": "analytics", "since": "yesterday", "limit": "-1"},
    )
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.content


def test_the_walk_covers_every_kind_of_shop_endpoint(world: World) -> None:
    paths = {path for _, path, _ in _shop_operations(world)}
    assert {
        "/v1/shops/{shop_id}/sales",
        "/v1/shops/{shop_id}/sales/csv",
        "/v1/shops/{shop_id}/consents",
        "/v1/shops/{shop_id}/consent-requests",
        "/v1/shops/{shop_id}/consents/{consent_id}/revoke",
        "/v1/shops/{shop_id}/export",
        "/v1/shops/{shop_id}/erasure",
        "/v1/shops/{shop_id}/access-log",
    } <= paths


@pytest.mark.parametrize("stranger_role", ["consumer", "shopkeeper", "connector", "auditor"])
def test_a_stranger_cannot_tell_a_real_shop_from_a_missing_one(
    world: World, stranger_role: str
) -> None:
    real = world.shop()
    other = world.shop("别家小店 Another Shop")
    shops = [other.id] if stranger_role in ("shopkeeper", "connector") else None
    stranger = world.principal(stranger_role, shops=shops)
    missing = str(uuid.uuid4())
    differ = []
    for method, path, takes_body in _shop_operations(world):
        for body in BAD_BODIES if takes_body else (None,):
            on_real = _ask(stranger, method, _fill(path, real.id), body)
            on_missing = _ask(stranger, method, _fill(path, missing), body)
            if on_real != on_missing:
                differ.append((method, path, body, on_real, on_missing))
    assert differ == []
