"""The audit log as auditors and shopkeepers see it, and `cornerstore audit verify`."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.event import listen
from sqlalchemy.orm import ORMExecuteState

from audit import service as audit
from audit import tree
from audit_verifier.chain import (
    CHAINED_FIELDS,
    GENESIS_HASH,
    ChainHead,
    ChainReport,
    canonical_bytes,
    entry_hash,
    verify_chain,
)
from cornerstore.db import session_scope
from cornerstore.models.audit import AuditCheckpoint, AuditEntry, AuditHead
from cornerstore.ports import AuditDraft, Decision
from cornerstore.settings import get_settings
from hub.cli import main
from tests.factories import (
    Actor,
    ShopSetup,
    World,
    audit_log,
    payment,
    rebuild_audit_tree,
    sale,
)

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


# --- cornerstore audit verify -------------------------------------------------


@dataclass
class CliRun:
    code: int
    out: str
    err: str


Cli = Callable[..., CliRun]


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> Iterator[Cli]:
    """Run `cornerstore ...` in-process in a clean operator shell (set CORNERSTORE_* first)."""
    for name in list(os.environ):
        if name.startswith("CORNERSTORE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)

    def run(*argv: str) -> CliRun:
        get_settings.cache_clear()
        capsys.readouterr()
        try:
            code = main(list(argv))
        finally:
            get_settings.cache_clear()
        captured = capsys.readouterr()
        return CliRun(code, captured.out, captured.err)

    get_settings.cache_clear()
    yield run
    get_settings.cache_clear()


Verify = Callable[[], tuple[int, str]]


@pytest.fixture
def verify(database_url: str, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> Verify:
    """Run `cornerstore audit verify` in-process against the test database."""
    monkeypatch.setenv("CORNERSTORE_DATABASE_URL", database_url)

    def run() -> tuple[int, str]:
        result = cli("audit", "verify")
        assert result.err == ""
        return result.code, result.out

    return run


def _small_log(world: World) -> list[dict[str, Any]]:
    """A log whose grant is followed by a read that differs from it, and which ends in reads."""
    shop = world.shop()
    world.ingest(shop, "sales", [sale(i) for i in range(3)])
    world.ingest(shop, "payments", [payment(i) for i in range(3)])
    consumer = world.consumer()
    auditor = world.principal("auditor")
    world.grant(shop, consumer, "analytics", ["sales"])
    assert consumer.get(f"/v1/shops/{shop.id}/sales", purpose="analytics").status_code == 200
    assert consumer.get(f"/v1/shops/{shop.id}/payments", purpose="analytics").status_code == 404
    assert shop.keeper.get(f"/v1/shops/{shop.id}/payments").status_code == 200
    events = audit_log(auditor)
    assert [e["action"] for e in events] == [
        "principal.create",  # the first admin
        "shop.create",
        "principal.create",  # the shop's keeper
        "principal.create",  # and its connector
        "ingest",
        "ingest",
        "principal.create",  # the consumer
        "principal.create",  # the auditor
        "consent.grant",
        "read",
        "read",
        "read",
    ]
    assert _seqs(events) == list(range(1, len(events) + 1))
    return events


def _seq_of(events: list[dict[str, Any]], action: str) -> int:
    seq: int = next(e["seq"] for e in events if e["action"] == action)
    return seq


def _assert_intact(verify: Verify, entries: int) -> None:
    code, out = verify()
    assert code == 0, out
    assert f"audit log intact: {entries} entries verified" in out


def _assert_broken_at(verify: Verify, seq: int) -> str:
    code, out = verify()
    assert code == 1, out
    assert f"FAILED verification at entry {seq}:" in out
    return out


def test_verify_passes_on_an_intact_log_and_counts_it(world: World, verify: Verify) -> None:
    events = _small_log(world)

    _assert_intact(verify, len(events))


def test_verify_passes_on_an_empty_log(world: World, verify: Verify) -> None:
    _assert_intact(verify, 0)


def test_verify_finds_an_edited_entry(world: World, verify: Verify) -> None:
    events = _small_log(world)
    _assert_intact(verify, len(events))
    grant = _seq_of(events, "consent.grant")

    with world.hub.engine.begin() as connection:
        connection.execute(update(AuditEntry).where(AuditEntry.seq == grant).values(reason="x"))

    _assert_broken_at(verify, grant)


def test_verify_finds_a_deleted_entry(world: World, verify: Verify) -> None:
    events = _small_log(world)
    _assert_intact(verify, len(events))
    grant = _seq_of(events, "consent.grant")

    with world.hub.engine.begin() as connection:
        connection.execute(delete(AuditEntry).where(AuditEntry.seq == grant))

    _assert_broken_at(verify, grant)


@pytest.mark.parametrize("with_hashes", [False, True], ids=["contents", "whole-rows"])
def test_verify_finds_two_swapped_entries(world: World, verify: Verify, with_hashes: bool) -> None:
    events = _small_log(world)
    _assert_intact(verify, len(events))
    grant = _seq_of(events, "consent.grant")
    read = grant + 1
    assert events[read - 1]["action"] == "read"
    columns = [name for name in CHAINED_FIELDS if name != "seq"]
    if with_hashes:
        columns += ["prev_hash", "entry_hash"]

    with world.hub.engine.begin() as connection:
        rows = {
            row.seq: row._mapping
            for row in connection.execute(
                select(AuditEntry.seq, *(getattr(AuditEntry, c) for c in columns)).where(
                    AuditEntry.seq.in_([grant, read])
                )
            )
        }
        for seq, other in ((grant, read), (read, grant)):
            connection.execute(
                update(AuditEntry)
                .where(AuditEntry.seq == seq)
                .values({c: rows[other][c] for c in columns})
            )

    _assert_broken_at(verify, grant)


def test_verify_finds_the_newest_entries_deleted(world: World, verify: Verify) -> None:
    events = _small_log(world)
    _assert_intact(verify, len(events))
    cut = events[-2]["seq"]

    with world.hub.engine.begin() as connection:
        connection.execute(delete(AuditEntry).where(AuditEntry.seq >= cut))

    _assert_broken_at(verify, cut)


def test_verify_finds_the_newest_entry_deleted(world: World, verify: Verify) -> None:
    events = _small_log(world)
    newest = events[-1]["seq"]

    with world.hub.engine.begin() as connection:
        connection.execute(delete(AuditEntry).where(AuditEntry.seq == newest))

    _assert_broken_at(verify, newest)


@pytest.mark.parametrize("kept", [2, None], ids=["with-the-newest-entries", "alone"])
def test_verify_fails_when_the_head_row_is_deleted(
    world: World, verify: Verify, kept: int | None
) -> None:
    events = _small_log(world)
    kept = len(events) if kept is None else kept

    with world.hub.engine.begin() as connection:
        connection.execute(delete(AuditEntry).where(AuditEntry.seq > kept))
        connection.execute(delete(AuditHead))

    out = _assert_broken_at(verify, kept + 1)
    assert "the chain's head row is missing" in out
    assert f"entries 1..{kept} verified before it" in out


@pytest.mark.parametrize("seq", [0, -1])
def test_verify_finds_an_entry_numbered_below_one(world: World, verify: Verify, seq: int) -> None:
    _small_log(world)
    with world.hub.engine.connect() as connection:
        first = dict(
            connection.execute(select(AuditEntry).where(AuditEntry.seq == 1)).one()._mapping
        )
    # A well-formed entry in every way but its number, chained from genesis.
    forged = dict(first, seq=seq, reason="inserted", prev_hash=GENESIS_HASH)
    forged["entry_hash"] = entry_hash(GENESIS_HASH, forged)

    with world.hub.engine.begin() as connection:
        connection.execute(insert(AuditEntry).values(forged))

    out = _assert_broken_at(verify, seq)
    assert f"entry {seq} is out of order (the chain starts at entry 1)" in out
    assert "no entry verified before it" in out


def test_verify_finds_a_head_wound_back(world: World, verify: Verify) -> None:
    events = _small_log(world)
    grant = _seq_of(events, "consent.grant")
    with world.hub.engine.begin() as connection:
        grant_hash = connection.scalar(select(AuditEntry.entry_hash).where(AuditEntry.seq == grant))
        connection.execute(update(AuditHead).values(seq=grant, entry_hash=grant_hash))

    out = _assert_broken_at(verify, grant + 1)
    assert f"entry {grant + 1} is not in the chain's head" in out


def test_verify_leaves_out_entries_appended_while_it_runs(world: World) -> None:
    events = _small_log(world)
    appended: list[int] = []

    def append_before_a_page_of_entries(state: ORMExecuteState) -> None:
        # Another session appends before each of the first four pages is read
        # (not every page: an appender that keeps pace would make paging endless).
        paging = state.is_select and any(m.class_ is AuditEntry for m in state.all_mappers)
        if paging and len(appended) < 4:
            with session_scope(world.hub.sessions) as other:
                draft = AuditDraft(action="test.append", decision=Decision.allow, reason="live")
                appended.append(audit.append(other, draft))

    with world.hub.sessions() as session:
        listen(session, "do_orm_execute", append_before_a_page_of_entries)
        report = audit.verify(session, batch=2)

    # Checked up to the head as read at the start; the later appends are outside it.
    assert report == ChainReport(len(events))
    assert appended == list(range(len(events) + 1, len(events) + 5))
    with world.hub.sessions() as session:
        assert audit.verify(session, batch=2) == ChainReport(len(events) + len(appended))


def test_verify_chain_checks_entries_against_the_head_it_is_given(world: World) -> None:
    events = _small_log(world)
    with world.hub.engine.connect() as connection:
        rows = [dict(r._mapping) for r in connection.execute(select(AuditEntry).order_by("seq"))]
    last = rows[-1]
    head = ChainHead(last["seq"], last["entry_hash"])

    assert verify_chain(rows, head=head) == ChainReport(len(events))
    assert verify_chain(rows[:-1], head=ChainHead(last["seq"] - 1, last["prev_hash"])).ok
    after = len(events) + 1
    assert verify_chain(rows, head=None) == ChainReport(
        len(events),
        after,
        f"the chain's head row is missing, so entries from {after} on may have been removed",
    )
    beyond = verify_chain(rows, head=ChainHead(last["seq"] - 1, last["prev_hash"]))
    assert (beyond.first_bad_seq, beyond.problem) == (
        last["seq"],
        f"entry {last['seq']} is not in the chain's head",
    )
    assert verify_chain([], head=ChainHead(0, GENESIS_HASH)) == ChainReport(0)
    assert not verify_chain([], head=ChainHead(0, last["entry_hash"])).ok


def test_verify_on_an_unmigrated_database_says_so_in_one_line(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CORNERSTORE_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")

    result = cli("audit", "verify")

    assert result.code == 2
    assert result.out == ""
    assert result.err.startswith("cornerstore: the database is empty")
    assert result.err.endswith("run: cornerstore db upgrade\n")
    assert result.err.count("\n") == 1


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


# --- rewrites that recompute the hashes ------------------------------------------------------


def _rewrite(world: World, seq: int, *, rebuild_tree: bool) -> None:
    """What an operator with database access could do: edit an entry and recompute the chain."""
    with session_scope(world.hub.sessions) as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == seq).values(reason="nothing"))
        prev = GENESIS_HASH
        for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.seq)):
            entry.prev_hash = prev
            entry.entry_hash = prev = entry_hash(
                prev, {name: getattr(entry, name) for name in CHAINED_FIELDS}
            )
        session.execute(update(AuditHead).values(entry_hash=prev))
        if rebuild_tree:
            rebuild_audit_tree(session)


def test_a_rewritten_chain_is_caught_by_the_tree(world: World, verify: Verify) -> None:
    events = _small_log(world)
    grant = _seq_of(events, "consent.grant")

    _rewrite(world, grant, rebuild_tree=False)

    out = _assert_broken_at(verify, grant)
    assert f"entry {grant} differs from its leaf in the tree" in out


def test_a_rewritten_chain_and_tree_are_caught_by_the_signed_checkpoints(
    world: World, verify: Verify
) -> None:
    events = _small_log(world)
    grant = _seq_of(events, "consent.grant")
    auditor = world.principal("auditor")
    signed_before = auditor.get("/v1/audit/checkpoint")  # the log up to here is signed
    assert signed_before.status_code == 200
    _assert_intact(verify, len(events) + 1)

    _rewrite(world, grant, rebuild_tree=True)

    code, out = verify()
    assert code == 1, out
    # The checkpointer may have signed sizes in between: the report names the
    # range between the last checkpoint that still matches and the first that does not.
    found = re.search(r"at entry (\d+): the signed checkpoint of size (\d+) does not match", out)
    assert found, out
    first, size = int(found[1]), int(found[2])
    assert first <= grant <= size <= len(events) + 1
    assert f"an entry from {first} to {size} was rewritten" in out


def test_a_rewrite_that_also_fixes_the_stored_roots_is_caught_by_the_signatures(
    world: World, verify: Verify
) -> None:
    events = _small_log(world)
    grant = _seq_of(events, "consent.grant")
    assert world.principal("auditor").get("/v1/audit/checkpoint").status_code == 200
    _rewrite(world, grant, rebuild_tree=True)
    with session_scope(world.hub.sessions) as session:
        # The attacker also rewrites the root stored beside each signed note.
        frontier = session.scalar(select(AuditHead.frontier))
        session.execute(update(AuditCheckpoint).values(root_hash=tree.root_of_frontier(frontier)))

    code, out = verify()
    assert code == 1, out
    assert "does not match the entries" in out


def test_removing_signed_entries_and_winding_the_head_back_is_caught(
    world: World, verify: Verify
) -> None:
    events = _small_log(world)
    assert world.principal("auditor").get("/v1/audit/checkpoint").status_code == 200
    signed = len(events) + 1  # the auditor's creation is signed too
    keep = signed - 3
    with session_scope(world.hub.sessions) as session:
        tip = session.scalar(select(AuditEntry.entry_hash).where(AuditEntry.seq == keep))
        session.execute(delete(AuditEntry).where(AuditEntry.seq > keep))
        session.execute(update(AuditHead).values(seq=keep, entry_hash=tip))

    code, out = verify()
    assert code == 1, out
    assert f"FAILED verification at entry {keep + 1}:" in out
    assert f"a signed checkpoint covers {signed} entries but the log holds {keep}" in out


def test_upgrading_a_log_from_before_the_tree_builds_the_tree(
    fresh_database: Callable[[], str],
) -> None:
    from sqlalchemy import insert as sql_insert

    from audit_verifier import merkle
    from cornerstore.db import make_engine, make_sessionmaker
    from cornerstore.migrations import upgrade

    engine = make_engine(fresh_database())
    try:
        upgrade(engine, "0002")  # the foundation's schema: a hash chain, no tree
        prev, leaves = GENESIS_HASH, []
        with engine.begin() as connection:
            for seq in range(1, 12):
                fields: dict[str, Any] = {
                    "seq": seq,
                    "recorded_at": datetime(2026, 11, 1, 9, seq, tzinfo=UTC),
                    "action": "read",
                    "decision": "allow",
                    "reason": "consent",
                    "principal_id": uuid.uuid4(),
                    "principal_role": "consumer",
                    "shop_id": uuid.uuid4(),
                    "category": "sales",
                    "purpose": "analytics",
                    "policy_version": "abc",
                    "details": {"records": seq},
                }
                digest = entry_hash(prev, fields)
                connection.execute(
                    sql_insert(AuditEntry), [{**fields, "prev_hash": prev, "entry_hash": digest}]
                )
                leaves.append(merkle.leaf_hash(canonical_bytes(fields)))
                prev = digest
            connection.execute(update(AuditHead).values(seq=11, entry_hash=prev))

        upgrade(engine)

        with make_sessionmaker(engine)() as session:
            assert audit.verify(session) == ChainReport(11)
            frontier = session.scalar(select(AuditHead.frontier))
        assert tree.root_of_frontier(frontier) == merkle.root_from_leaf_hashes(leaves)
    finally:
        engine.dispose()
