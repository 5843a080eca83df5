"""The audit log as auditors and shopkeepers see it: the reads it records, its filters and
paging, who may read it, that it holds no data values, and the creation of shops and keys.

`cornerstore audit verify` is tested in tests/test_audit_verify.py.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from tests.cli import Cli
from tests.factories import Actor, ShopSetup, World, audit_log, payment, sale

#: The actions that record a new shop or principal rather than the day's activity.
CREATIONS = ("shop.create", "principal.create")

# --- a day of reads, allowed and refused --------------------------------------


@dataclass
class ExpectedRead:
    principal_id: str
    shop_id: str
    category: str
    purpose: str | None
    decision: str
    records: int


@dataclass
class Day:
    shop_a: ShopSetup
    shop_b: ShopSetup
    analyst: Actor
    lender: Actor
    snoop: Actor
    reads: list[ExpectedRead] = field(default_factory=list)


def _read(
    day: Day,
    actor: Actor,
    shop: ShopSetup,
    category: str,
    purpose: str | None,
    *,
    expect: int | None,
    **params: Any,
) -> None:
    """Read, check the answer, and note what the audit log must say about it.

    ``expect`` is the number of records that go out, or None for a refusal.
    """
    if purpose is not None:
        params["purpose"] = purpose
    response = actor.get(f"/v1/shops/{shop.id}/{category}", **params)
    if expect is None:
        assert response.status_code == 404, response.text
    else:
        assert response.status_code == 200, response.text
        assert len(response.json()["records"]) == expect
    own = actor.role == "shopkeeper" and actor is shop.keeper and purpose is None
    day.reads.append(
        ExpectedRead(
            principal_id=actor.id,
            shop_id=shop.id,
            category=category,
            purpose="owner" if own else purpose,
            decision="deny" if expect is None else "allow",
            records=expect or 0,
        )
    )


def _a_day(world: World) -> Day:
    shop_a, shop_b = world.shop("A"), world.shop("B")
    world.ingest(shop_a, "sales", [sale(i) for i in range(5)])
    world.ingest(shop_a, "payments", [payment(i) for i in range(4)])
    world.ingest(shop_b, "sales", [sale(i) for i in range(3)])
    day = Day(
        shop_a=shop_a,
        shop_b=shop_b,
        analyst=world.consumer("analyst"),
        lender=world.consumer("lender"),
        snoop=world.consumer("snoop"),
    )
    world.grant(shop_a, day.analyst, "analytics", ["sales", "payments"])
    world.grant(shop_a, day.lender, "credit-assessment", ["payments"])

    _read(day, day.analyst, shop_a, "sales", "analytics", expect=5)
    _read(day, day.analyst, shop_a, "payments", "analytics", expect=2, limit=2)
    _read(day, day.lender, shop_a, "payments", "credit-assessment", expect=4)
    _read(day, shop_a.keeper, shop_a, "inventory", None, expect=0)
    _read(day, shop_a.keeper, shop_a, "sales", None, expect=5)
    _read(day, day.snoop, shop_a, "sales", "analytics", expect=None)
    _read(day, day.analyst, shop_a, "sales", "replenishment", expect=None)
    _read(day, day.analyst, shop_a, "payments", "replenishment", expect=None)
    _read(day, shop_b.keeper, shop_a, "sales", None, expect=None)
    _read(day, day.analyst, shop_b, "sales", "analytics", expect=None)
    _read(day, shop_b.keeper, shop_b, "sales", None, expect=3)
    return day


def _as_expected(event: dict[str, Any]) -> ExpectedRead:
    return ExpectedRead(
        principal_id=event["principal_id"],
        shop_id=event["shop_id"],
        category=event["category"],
        purpose=event["purpose"],
        decision=event["decision"],
        records=event["details"]["records"],
    )


def test_every_read_allowed_or_refused_is_in_the_audit_log(world: World) -> None:
    day = _a_day(world)
    policy_version = world.client.get("/healthz").json()["policy_version"]

    events = audit_log(world.principal("auditor"), action="read")

    assert [_as_expected(e) for e in events] == day.reads
    for event in events:
        assert event["policy_version"] == policy_version
        assert event["reason"]
        assert event["recorded_at"]
    assert {e["principal_role"] for e in events} == {"consumer", "shopkeeper"}


def test_each_shop_sees_the_reads_of_its_data_in_its_access_log(world: World) -> None:
    day = _a_day(world)

    for shop in (day.shop_a, day.shop_b):
        log = audit_log(shop.keeper, f"/v1/shops/{shop.id}/access-log")
        reads = [e for e in log if e["action"] == "read"]
        assert [_as_expected(e) for e in reads] == [r for r in day.reads if r.shop_id == shop.id]
        assert {e["shop_id"] for e in log} == {shop.id}
        for event in reads:
            assert event["reason"]
            assert event["policy_version"]


def test_access_log_matches_the_auditors_view_of_the_shop(world: World) -> None:
    day = _a_day(world)
    auditor = world.principal("auditor")

    shop_log = audit_log(day.shop_a.keeper, f"/v1/shops/{day.shop_a.id}/access-log")

    assert shop_log == audit_log(auditor, shop_id=day.shop_a.id)
    denied = audit_log(day.shop_a.keeper, f"/v1/shops/{day.shop_a.id}/access-log", decision="deny")
    assert [e["seq"] for e in denied] == [e["seq"] for e in shop_log if e["decision"] == "deny"]
    assert len(denied) == 4


# --- the auditor's filters ----------------------------------------------------


def _seqs(events: list[dict[str, Any]]) -> list[int]:
    return [e["seq"] for e in events]


FilterCase = Callable[[Day], tuple[dict[str, Any], Callable[[dict[str, Any]], bool], int]]

FILTERS: dict[str, FilterCase] = {
    # name: day -> (query, which events must come back, how many)
    "shop_id": lambda d: (
        {"shop_id": d.shop_b.id},
        lambda e: e["shop_id"] == d.shop_b.id,
        # the shop, its keeper and connector created, one ingest, two reads
        6,
    ),
    "principal_id": lambda d: (
        {"principal_id": d.analyst.id},
        lambda e: e["principal_id"] == d.analyst.id,
        5,
    ),
    "purpose": lambda d: ({"purpose": "analytics"}, lambda e: e["purpose"] == "analytics", 5),
    "decision": lambda d: ({"decision": "deny"}, lambda e: e["decision"] == "deny", 5),
    "action": lambda d: ({"action": "consent.grant"}, lambda e: e["action"] == "consent.grant", 2),
    "creation": lambda d: ({"action": "shop.create"}, lambda e: e["action"] == "shop.create", 2),
    "shop_and_decision": lambda d: (
        {"shop_id": d.shop_a.id, "decision": "allow"},
        lambda e: e["shop_id"] == d.shop_a.id and e["decision"] == "allow",
        # the shop, its keeper and connector created, two ingests, two grants, five allowed reads
        12,
    ),
    "principal_and_purpose": lambda d: (
        {"principal_id": d.analyst.id, "purpose": "replenishment"},
        lambda e: e["principal_id"] == d.analyst.id and e["purpose"] == "replenishment",
        2,
    ),
}


@pytest.mark.parametrize("name", list(FILTERS))
def test_auditor_filters_narrow_to_exactly_the_matching_events(world: World, name: str) -> None:
    day = _a_day(world)
    auditor = world.principal("auditor")
    everything = audit_log(auditor)
    query, matches, how_many = FILTERS[name](day)

    filtered = audit_log(auditor, **query)

    expected = [e for e in everything if matches(e)]
    assert len(expected) == how_many
    assert 0 < how_many < len(everything)
    assert filtered == expected


def test_auditor_filters_by_time_since_inclusive_until_exclusive(world: World) -> None:
    _a_day(world)
    auditor = world.principal("auditor")
    everything = audit_log(auditor)
    since, until = everything[3]["recorded_at"], everything[9]["recorded_at"]

    filtered = audit_log(auditor, since=since, until=until)

    lo, hi = datetime.fromisoformat(since), datetime.fromisoformat(until)
    expected = [e for e in everything if lo <= datetime.fromisoformat(e["recorded_at"]) < hi]
    assert filtered == expected
    assert everything[3] in filtered
    assert everything[9] not in filtered
    assert 0 < len(filtered) < len(everything)
    assert audit_log(auditor, since=since) == [
        e for e in everything if datetime.fromisoformat(e["recorded_at"]) >= lo
    ]
    assert audit_log(auditor, until=until) == [
        e for e in everything if datetime.fromisoformat(e["recorded_at"]) < hi
    ]


def test_unknown_decision_filter_is_422(world: World) -> None:
    response = world.principal("auditor").get("/v1/audit/events", decision="maybe")

    assert response.status_code == 422, response.text
    assert "query.decision" in {f["field"] for f in response.json()["fields"]}


# --- paging -------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 3, 4])
def test_following_next_returns_every_event_once(world: World, limit: int) -> None:
    _a_day(world)
    auditor = world.principal("auditor")
    everything = auditor.get("/v1/audit/events", limit=1000).json()
    assert everything["next"] is None

    pages: list[list[int]] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            params["after"] = after
        body = auditor.get("/v1/audit/events", **params).json()
        pages.append(_seqs(body["events"]))
        assert len(body["events"]) <= limit
        after = body["next"]
        if after is None:
            break
        assert len(pages) < 100, "the cursor never ends"

    walked = [seq for page in pages for seq in page]
    assert walked == _seqs(everything["events"])
    assert walked == list(range(1, len(walked) + 1))  # the whole log, every entry once
    # three ingests, two grants and eleven reads, besides the shops and principals created
    assert sum(e["action"] not in CREATIONS for e in everything["events"]) == 16
    assert all(len(page) == limit for page in pages[:-2])


def test_after_returns_only_later_events(world: World) -> None:
    _a_day(world)
    auditor = world.principal("auditor")
    everything = audit_log(auditor)
    cut = everything[6]["seq"]

    response = auditor.get("/v1/audit/events", after=cut)

    assert response.status_code == 200, response.text
    assert response.json()["events"] == everything[7:]


def test_access_log_pages_too(world: World) -> None:
    day = _a_day(world)
    url = f"/v1/shops/{day.shop_a.id}/access-log"

    whole = day.shop_a.keeper.get(url, limit=1000).json()["events"]

    assert audit_log(day.shop_a.keeper, url, limit=2) == whole
    assert Counter(e["action"] for e in whole) == {
        "shop.create": 1,
        "principal.create": 2,  # its keeper and its connector
        "ingest": 2,
        "consent.grant": 2,
        "read": 9,
    }


# --- who may read the log -----------------------------------------------------


@pytest.mark.parametrize("role", ["consumer", "shopkeeper", "connector"])
def test_only_auditors_read_the_audit_log(world: World, role: str) -> None:
    shop = world.shop()
    world.ingest(shop, "sales", [sale(1)])
    actor = {"consumer": world.consumer(), "shopkeeper": shop.keeper, "connector": shop.connector}[
        role
    ]

    response = actor.get("/v1/audit/events")
    filtered = actor.get("/v1/audit/events", shop_id=shop.id)

    for answer in (response, filtered):
        assert answer.status_code == 403, answer.text
        assert answer.json()["error"] == "forbidden"
        assert "events" not in answer.json()
    assert world.principal("auditor").get("/v1/audit/events").status_code == 200


def test_keeper_of_another_shop_gets_404_on_its_access_log(world: World) -> None:
    shop_x, shop_y = world.shop("X"), world.shop("Y")
    world.ingest(shop_y, "sales", [sale(1)])
    nowhere = shop_x.keeper.get(f"/v1/shops/{uuid.uuid4()}/access-log")

    response = shop_x.keeper.get(f"/v1/shops/{shop_y.id}/access-log")

    assert response.status_code == 404, response.text
    assert nowhere.status_code == 404
    assert response.content == nowhere.content
    # Y's keeper sees the attempt.
    log = audit_log(shop_y.keeper, f"/v1/shops/{shop_y.id}/access-log", decision="deny")
    assert [(e["principal_id"], e["action"]) for e in log] == [
        (shop_x.keeper.id, "access-log.read")
    ]


# --- no data values in the log ------------------------------------------------

SECRET_SKU = "SKU-秘密-OOLONG-7781"
SECRET_PAYER = "wx_payer_SECRET_4242"
SECRET_EVENT = "EVT-SECRET-9913"


def test_no_audit_entry_holds_a_data_value(world: World) -> None:
    shop = world.shop()
    world.ingest(shop, "sales", [sale(1, sku=SECRET_SKU, event_id=SECRET_EVENT)])
    world.ingest(shop, "sales", [sale(1, sku=SECRET_SKU, event_id=SECRET_EVENT)])  # duplicate
    world.ingest(shop, "payments", [payment(1, payer_ref=SECRET_PAYER)])
    rejected = world.ingest(
        shop,
        "payments",
        [payment(2, payer_ref=SECRET_PAYER, method=SECRET_SKU), {"sku": SECRET_SKU}],
    )
    assert len(rejected["rejected"]) == 2
    world.ingest(
        shop, "inventory", [{"sku": SECRET_SKU, "on_hand": 3, "counted_at": sale(1)["occurred_at"]}]
    )
    lender, snoop = world.consumer(), world.consumer()
    world.grant(shop, lender, "credit-assessment", ["payments", "sales"])
    for actor, category, purpose in [
        (lender, "payments", "credit-assessment"),
        (lender, "sales", "credit-assessment"),
        (snoop, "payments", "credit-assessment"),
        (shop.keeper, "sales", None),
        (shop.keeper, "payments", None),
        (shop.keeper, "inventory", None),
    ]:
        params = {"purpose": purpose} if purpose else {}
        assert actor.get(f"/v1/shops/{shop.id}/{category}", **params).status_code in (200, 404)
    # The keeper really did get the values back, so they were there to leak.
    keeper_view = shop.keeper.get(f"/v1/shops/{shop.id}/payments").text
    assert SECRET_PAYER in keeper_view

    events = audit_log(world.principal("auditor"))
    access_log = audit_log(shop.keeper, f"/v1/shops/{shop.id}/access-log")

    assert Counter(e["action"] for e in events) == {
        "principal.create": 6,  # admin, keeper, connector, lender, snoop, auditor
        "shop.create": 1,
        "ingest": 5,
        "consent.grant": 1,
        "read": 7,
    }
    for dumped in (
        json.dumps(events, ensure_ascii=False),
        json.dumps(access_log, ensure_ascii=False),
        json.dumps(events),
    ):
        for secret in (SECRET_SKU, SECRET_PAYER, SECRET_EVENT, "OOLONG", "SECRET"):
            assert secret not in dumped


# --- creating shops and principals is audited ---------------------------------


def test_creating_a_shop_and_its_keys_shows_in_its_access_log(world: World) -> None:
    policy_version = world.client.get("/healthz").json()["policy_version"]
    shop = world.shop()
    admin = world.admin

    log = audit_log(shop.keeper, f"/v1/shops/{shop.id}/access-log")

    assert [(e["action"], e["principal_id"], e["principal_role"], e["details"]) for e in log] == [
        ("shop.create", admin.id, "admin", {}),
        (
            "principal.create",
            admin.id,
            "admin",
            {"created_principal_id": shop.keeper.id, "role": "shopkeeper"},
        ),
        (
            "principal.create",
            admin.id,
            "admin",
            {"created_principal_id": shop.connector.id, "role": "connector"},
        ),
    ]
    for entry in log:
        assert entry["shop_id"] == shop.id
        assert entry["decision"] == "allow"
        assert entry["reason"]
        assert entry["policy_version"] == policy_version
        assert entry["principal_name"] == "root"
    auditor = world.principal("auditor")
    assert audit_log(auditor, shop_id=shop.id) == log
    assert [e for e in audit_log(auditor) if e["shop_id"] == shop.id] == log


def test_a_new_key_shows_in_the_access_log_of_every_shop_it_can_act_for(world: World) -> None:
    shop_x, shop_y, shop_z = world.shop("X"), world.shop("Y"), world.shop("Z")
    keeper = world.principal("shopkeeper", shops=[shop_x.id, shop_y.id])
    lender = world.consumer()
    auditor = world.principal("auditor")

    def minting(events: list[dict[str, Any]], of: Actor) -> list[tuple[Any, ...]]:
        return [
            (e["action"], e["principal_id"], e["principal_role"], e["shop_id"], e["details"])
            for e in events
            if e["details"].get("created_principal_id") == of.id
        ]

    for shop in (shop_x, shop_y):
        log = audit_log(shop.keeper, f"/v1/shops/{shop.id}/access-log")
        assert minting(log, keeper) == [
            (
                "principal.create",
                world.admin.id,
                "admin",
                shop.id,
                {"created_principal_id": keeper.id, "role": "shopkeeper"},
            )
        ]
    assert minting(audit_log(shop_z.keeper, f"/v1/shops/{shop_z.id}/access-log"), keeper) == []
    created = audit_log(auditor, action="principal.create")
    assert {e[3] for e in minting(created, keeper)} == {shop_x.id, shop_y.id}
    assert len(minting(created, keeper)) == 2
    # A key that keeps no shop is recorded once, for no shop.
    assert minting(created, lender) == [
        (
            "principal.create",
            world.admin.id,
            "admin",
            None,
            {"created_principal_id": lender.id, "role": "consumer"},
        )
    ]


def test_a_shopkeeper_created_from_the_cli_is_audited_as_the_operator(
    world: World, cli: Cli, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = world.shop()
    monkeypatch.setenv("CORNERSTORE_DATABASE_URL", database_url)
    monkeypatch.setenv("CORNERSTORE_DATA_DIR", str(world.hub.settings.data_dir))

    argv = ["--role", "shopkeeper", "--name", "night keeper", "--shop", shop.id, "--json"]
    result = cli("principals", "create", *argv)

    assert result.code == 0, result.err
    created = json.loads(result.out)
    log = audit_log(shop.keeper, f"/v1/shops/{shop.id}/access-log")
    entry = log[-1]
    assert {k: entry[k] for k in ("action", "decision", "principal_id", "principal_role")} == {
        "action": "principal.create",
        "decision": "allow",
        "principal_id": None,
        "principal_role": "operator",
    }
    assert entry["shop_id"] == shop.id
    assert entry["details"] == {"created_principal_id": created["id"], "role": "shopkeeper"}
    assert entry in audit_log(world.principal("auditor"), action="principal.create")
    # The new key sees its own creation in the shop's access log.
    new_keeper = Actor(world.client, created["id"], "shopkeeper", created["api_key"])
    assert audit_log(new_keeper, f"/v1/shops/{shop.id}/access-log") == log


def test_the_access_log_names_who_read_the_shops_data(world: World) -> None:
    shop = world.shop()
    world.ingest(shop, "sales", [sale(1)])
    lender = world.consumer(name="Neighbourhood Credit 邻里信贷")
    world.grant(shop, lender, "credit-assessment", ["sales"])
    assert lender.get(f"/v1/shops/{shop.id}/sales", purpose="credit-assessment").status_code == 200
    assert (
        lender.get(f"/v1/shops/{shop.id}/payments", purpose="credit-assessment").status_code == 404
    )

    reads = [
        e
        for e in audit_log(shop.keeper, f"/v1/shops/{shop.id}/access-log")
        if e["action"] == "read"
    ]

    assert [(e["principal_name"], e["decision"]) for e in reads] == [
        ("Neighbourhood Credit 邻里信贷", "allow"),
        ("Neighbourhood Credit 邻里信贷", "deny"),
    ]
