"""`cornerstore audit verify`: the chain, the tree and the signed checkpoints catch
every edit, deletion and rewrite of the audit log."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
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
from tests.cli import Cli
from tests.factories import World, audit_log, payment, rebuild_audit_tree, sale
from tests.test_audit import _seqs

# --- cornerstore audit verify -------------------------------------------------

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
