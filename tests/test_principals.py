"""Credentials that can be revoked: who am I, list, disable, rotate with a grace period."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime

import httpx2 as httpx
import pytest
from sqlalchemy import LargeBinary, String, Uuid, column, table
from sqlalchemy.orm import Session

from cornerstore.db import UTCDateTime, make_engine
from cornerstore.errors import Unauthenticated
from cornerstore.identity import caller_from_api_key, hash_api_key, new_api_key
from cornerstore.migrations import upgrade
from cornerstore_client import StreamSigner
from hub.runtime import Hub
from tests.cli import Cli
from tests.factories import Actor, World, audit_log
from tests.servers import hub_server


def _as(actor: Actor, api_key: str) -> Actor:
    return Actor(actor.client, actor.id, actor.role, api_key)


@pytest.mark.parametrize("role", ["admin", "auditor", "consumer"])
def test_any_valid_key_can_ask_who_it_belongs_to(world: World, role: str) -> None:
    principal = world.admin if role == "admin" else world.principal(role, name=f"the {role}")
    response = principal.get("/v1/principals/me")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["role"], body["shop_ids"]) == (principal.id, role, [])
    assert body["created_at"]


def test_a_shopkeeper_sees_its_shops(world: World) -> None:
    shop = world.shop()
    body = shop.keeper.get("/v1/principals/me").json()
    assert (body["role"], body["shop_ids"]) == ("shopkeeper", [shop.id])


def test_an_admin_lists_principals_by_role_and_shop_a_page_at_a_time(world: World) -> None:
    shop, other = world.shop(), world.shop()
    consumers = {world.consumer().id for _ in range(3)}

    def page(**params: object) -> dict[str, object]:
        response = world.admin.get("/v1/principals", **params)
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body

    seen: set[str] = set()
    cursor: object = None
    while True:
        body = page(role="consumer", limit=2, **({"cursor": cursor} if cursor else {}))
        principals = body["principals"]
        assert isinstance(principals, list)
        seen |= {p["id"] for p in principals}
        cursor = body["next"]
        if cursor is None:
            break
    assert seen == consumers
    keepers = page(shop_id=shop.id)["principals"]
    assert isinstance(keepers, list)
    assert {p["id"] for p in keepers} == {shop.keeper.id, shop.connector.id}
    assert other.keeper.id not in {p["id"] for p in keepers}


@pytest.mark.parametrize("role", ["shopkeeper", "consumer", "auditor"])
def test_only_an_admin_lists_and_disables(world: World, role: str) -> None:
    shop = world.shop()
    caller = shop.keeper if role == "shopkeeper" else world.principal(role)
    assert caller.get("/v1/principals").status_code == 403
    assert caller.post(f"/v1/principals/{shop.connector.id}/disable").status_code == 403


def test_a_disabled_principal_is_refused_everywhere_at_once(world: World) -> None:
    shop = world.shop()
    assert shop.connector.post(f"/v1/shops/{shop.id}/sales", {"records": []}).status_code == 200

    response = world.admin.post(f"/v1/principals/{shop.connector.id}/disable")

    assert response.status_code == 200, response.text
    assert response.json()["id"] == shop.connector.id
    for method, path in (
        ("POST", f"/v1/shops/{shop.id}/sales"),
        ("GET", "/v1/principals/me"),
        ("GET", f"/v1/shops/{shop.id}/sales"),
    ):
        refused = shop.connector.client.request(
            method, path, headers=shop.connector.headers, json={"records": []}
        )
        assert refused.status_code == 401, (method, path)
    # The shop's access log says who disabled its connector.
    entries = audit_log(shop.keeper, f"/v1/shops/{shop.id}/access-log")
    assert [(e["action"], e["principal_id"]) for e in entries if "disable" in e["action"]] == [
        ("principal.disable", world.admin.id)
    ]


@pytest.mark.parametrize("change", ["disable", "rotate-key"])
def test_every_worker_refuses_a_disabled_or_replaced_key_from_the_answer_on(
    world: World, hub: Hub, change: str
) -> None:
    """Two server processes, as two workers: neither caches keys, so neither lags."""
    shop = world.shop()
    with ExitStack() as stack:
        servers = [stack.enter_context(hub_server(hub)) for _ in range(2)]
        clients = [
            stack.enter_context(
                httpx.Client(base_url=s.base_url, headers=shop.connector.headers, timeout=10)
            )
            for s in servers
        ]
        assert [c.get("/v1/principals/me").status_code for c in clients] == [200, 200]
        if change == "disable":
            answer = clients[0].post(
                f"/v1/principals/{shop.connector.id}/disable", headers=world.admin.headers
            )
            assert answer.status_code == 200, answer.text
        else:
            answer = clients[0].post(
                f"/v1/principals/{shop.connector.id}/keys",
                params={"grace": "PT0S"},
                headers=shop.keeper.headers,
            )
            assert answer.status_code == 201, answer.text
        # From the answer on: the first request after it, in each worker.
        assert [c.get("/v1/principals/me").status_code for c in clients] == [401, 401]
        assert [
            c.post(f"/v1/shops/{shop.id}/sales", json={"records": []}).status_code for c in clients
        ] == [401, 401]


def test_a_rotated_key_works_beside_the_new_one_for_its_grace(world: World) -> None:
    shop = world.shop()
    response = world.admin.post(f"/v1/principals/{shop.connector.id}/keys")
    assert response.status_code == 201, response.text
    new = _as(shop.connector, response.json()["api_key"])
    for key_holder in (shop.connector, new):  # the old key, within its 24 hours, and the new
        assert key_holder.get("/v1/principals/me").status_code == 200


def test_a_rotation_without_grace_ends_the_old_key_at_once(world: World) -> None:
    shop = world.shop()
    response = shop.keeper.client.post(
        f"/v1/principals/{shop.keeper.id}/keys",
        params={"grace": "PT0S"},
        headers=shop.keeper.headers,
    )
    assert response.status_code == 201, response.text
    assert shop.keeper.get("/v1/principals/me").status_code == 401
    new = _as(shop.keeper, response.json()["api_key"])
    assert new.get(f"/v1/shops/{shop.id}/consents").status_code == 200
    entries = audit_log(new, f"/v1/shops/{shop.id}/access-log")
    assert "principal.rotate-key" in {e["action"] for e in entries}


def test_a_shopkeeper_rotates_its_own_connectors_keys_and_no_one_elses(world: World) -> None:
    shop, other = world.shop(), world.shop()
    own = shop.keeper.post(f"/v1/principals/{shop.connector.id}/keys")
    assert own.status_code == 201, own.text
    for stranger in (other.connector.id, other.keeper.id, world.admin.id, str(uuid.uuid4())):
        refused = shop.keeper.post(f"/v1/principals/{stranger}/keys")
        # Alike for every principal not its own, existing or not.
        assert (refused.status_code, refused.json()["error"]) == (404, "not_found")


def test_a_connector_cannot_issue_keys(world: World) -> None:
    shop = world.shop()
    assert shop.connector.post(f"/v1/principals/{shop.connector.id}/keys").status_code == 404


@pytest.mark.parametrize("grace", ["-PT1H", "P31D", "P3000000D"])
def test_a_grace_outside_zero_to_thirty_days_is_a_422(world: World, grace: str) -> None:
    shop = world.shop()
    response = world.admin.client.post(
        f"/v1/principals/{shop.connector.id}/keys",
        params={"grace": grace},
        headers=world.admin.headers,
    )
    assert response.status_code == 422, response.text
    assert response.json()["fields"][0]["field"] == "query.grace"


def test_erasing_a_shop_disables_the_principals_that_act_only_for_it(world: World) -> None:
    shop, other = world.shop(), world.shop()
    both = world.principal("shopkeeper", shops=[shop.id, other.id])

    assert shop.keeper.post(f"/v1/shops/{shop.id}/erasure").status_code == 200

    assert shop.keeper.get("/v1/principals/me").status_code == 401
    assert shop.connector.get("/v1/principals/me").status_code == 401
    me = both.get("/v1/principals/me")
    assert me.status_code == 200
    assert me.json()["shop_ids"] == [other.id]


def test_keys_from_before_rotation_existed_keep_working_after_the_migration(
    fresh_database: Callable[[], str],
) -> None:
    engine = make_engine(fresh_database())
    try:
        upgrade(engine, "0004")  # one key a principal, in principals.api_key_hash
        api_key = new_api_key()
        principal_id, shop_id = uuid.uuid4(), uuid.uuid4()
        now = datetime.now(UTC)
        with engine.begin() as connection:
            connection.execute(
                table(
                    "shops",
                    column("id", Uuid()),
                    column("name", String()),
                    column("created_at", UTCDateTime()),
                )
                .insert()
                .values(id=shop_id, name="old shop", created_at=now)
            )
            connection.execute(
                table(
                    "principals",
                    column("id", Uuid()),
                    column("name", String()),
                    column("role", String()),
                    column("api_key_hash", LargeBinary()),
                    column("created_at", UTCDateTime()),
                )
                .insert()
                .values(
                    id=principal_id,
                    name="old",
                    role="shopkeeper",
                    api_key_hash=hash_api_key(api_key),
                    created_at=now,
                )
            )
            connection.execute(
                table("principal_shops", column("principal_id", Uuid()), column("shop_id", Uuid()))
                .insert()
                .values(principal_id=principal_id, shop_id=shop_id)
            )
        upgrade(engine)
        with Session(engine) as session:
            caller = caller_from_api_key(session, api_key)
            # The key, and the shop it keeps: SQLite's table rebuilds lost neither.
            assert (caller.id, caller.role, caller.shop_ids) == (
                principal_id,
                "shopkeeper",
                frozenset({shop_id}),
            )
            with pytest.raises(Unauthenticated):
                caller_from_api_key(session, new_api_key())
    finally:
        engine.dispose()


def test_the_operator_lists_disables_and_rotates_from_the_command_line(
    world: World, hub: Hub, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = world.shop()
    auditor = world.principal("auditor")
    monkeypatch.setenv("CORNERSTORE_DATABASE_URL", hub.settings.sqlalchemy_url)
    monkeypatch.setenv("CORNERSTORE_DATA_DIR", str(hub.settings.data_dir))

    listed = cli("principals", "list", "--shop", shop.id, "--json")
    assert listed.code == 0, listed.err
    assert {json.loads(line)["id"] for line in listed.out.splitlines()} == {
        shop.keeper.id,
        shop.connector.id,
    }

    rotated = cli("principals", "rotate-key", shop.connector.id, "--grace", "PT0S", "--json")
    assert rotated.code == 0, rotated.err
    assert shop.connector.get("/v1/principals/me").status_code == 401
    new = _as(shop.connector, json.loads(rotated.out)["api_key"])
    assert new.get("/v1/principals/me").status_code == 200

    disabled = cli("principals", "disable", shop.keeper.id)
    assert disabled.code == 0, disabled.err
    assert shop.keeper.get("/v1/principals/me").status_code == 401
    # The audit log names the operator for both.
    entries = audit_log(auditor, "/v1/audit/events", shop_id=shop.id)
    assert {
        (e["action"], e["principal_role"]) for e in entries if e["action"].startswith("principal.")
    } >= {("principal.rotate-key", "operator"), ("principal.disable", "operator")}

    assert cli("principals", "rotate-key", shop.keeper.id).code == 2  # disabled: refused
    refused = cli("principals", "rotate-key", shop.connector.id, "--grace", "a day")
    assert (refused.code, "ISO 8601" in refused.err) == (2, True)


def test_a_shopkeeper_sees_consumers_by_name_and_purpose_not_by_uuid(world: World) -> None:
    shop = world.shop()
    created = world.admin.post(
        "/v1/principals",
        {
            "name": "Fresh Route 鲜达补货",
            "role": "consumer",
            "description": "Restocks your shelves 为您补货",
        },
    )
    assert created.status_code == 201, created.text
    consumer = Actor(world.client, created.json()["id"], "consumer", created.json()["api_key"])
    world.grant(shop, consumer, "replenishment", ["sales"])

    [listed] = shop.keeper.get(f"/v1/shops/{shop.id}/consents").json()["consents"]
    assert (listed["consumer_name"], listed["consumer_description"]) == (
        "Fresh Route 鲜达补货",
        "Restocks your shelves 为您补货",
    )
    profile = shop.keeper.get(f"/v1/consumers/{consumer.id}")
    assert profile.status_code == 200, profile.text
    assert profile.json() == {
        "id": consumer.id,
        "name": "Fresh Route 鲜达补货",
        "description": "Restocks your shelves 为您补货",
    }
    # A shopkeeper's id is not a consumer's; consumers see no one's profile.
    assert shop.keeper.get(f"/v1/consumers/{shop.keeper.id}").status_code == 404
    assert consumer.get(f"/v1/consumers/{consumer.id}").status_code == 403


def test_a_connector_registers_and_revokes_the_key_it_signs_stream_messages_with(
    world: World,
) -> None:
    shop, other = world.shop(), world.shop()
    public_key = StreamSigner.generate().public_key
    url = f"/v1/principals/{shop.connector.id}/signing-keys"

    registered = shop.connector.post(url, {"public_key": public_key})
    again = shop.keeper.post(url, {"public_key": public_key})

    assert registered.status_code == 201, registered.text
    key_id = registered.json()["key_id"]
    assert key_id.startswith("sk_")
    assert (again.status_code, again.json()["key_id"]) == (201, key_id)
    # Another shop's people and a consumer learn nothing of this connector.
    for stranger in (other.keeper, other.connector, world.consumer()):
        assert stranger.post(url, {"public_key": public_key}).status_code == 404
    # The same key for a second principal would make its messages ambiguous.
    assert (
        other.connector.post(
            f"/v1/principals/{other.connector.id}/signing-keys", {"public_key": public_key}
        ).status_code
        == 409
    )
    # A consumer sends no records, so it signs none.
    consumer = world.consumer()
    answer = consumer.post(
        f"/v1/principals/{consumer.id}/signing-keys",
        {"public_key": StreamSigner.generate().public_key},
    )
    assert answer.status_code == 404  # not its to register: policy, before the role check
    revoked = shop.keeper.client.delete(f"{url}/{key_id}", headers=shop.keeper.headers)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None
    assert shop.connector.post(url, {"public_key": public_key}).status_code == 409
    # Listed, revoked ones too: a key someone else registered can be found and revoked.
    listed = shop.keeper.get(url)
    assert listed.status_code == 200, listed.text
    assert [(k["key_id"], k["revoked_at"] is not None) for k in listed.json()["keys"]] == [
        (key_id, True)
    ]
    assert other.keeper.get(url).status_code == 404
    actions = [e["action"] for e in audit_log(shop.keeper, f"/v1/shops/{shop.id}/access-log")]
    assert actions.count("principal.add-signing-key") == 1
    assert actions.count("principal.revoke-signing-key") == 1


@pytest.mark.parametrize(
    ("public_key", "reason"),
    [
        ("not base64 at all!", "not base64url"),
        ("AAAA", "an Ed25519 public key is 32 bytes"),
        # The identity point: it "verifies" a forged signature over any message.
        ("AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "not a usable Ed25519 public key"),
    ],
)
def test_a_signing_key_that_is_not_an_ed25519_public_key_is_a_422(
    world: World, public_key: str, reason: str
) -> None:
    shop = world.shop()
    response = shop.connector.post(
        f"/v1/principals/{shop.connector.id}/signing-keys", {"public_key": public_key}
    )
    assert response.status_code == 422
    [error] = response.json()["fields"]
    assert error["field"] == "body.public_key"
    assert reason in error["reason"]
