"""Audit log ``appends``: durable appends by group commit, against one commit an entry.

8 writer processes, each like one API worker (its own engine and
its own :class:`audit.writer.AuditWriter`), each driven by 32 client threads
(then 128) that call ``writer.append(draft)`` in a loop for a fixed time; a
call returns once its entry is committed (``synchronous_commit`` stays on).
A ceiling row runs the same clients against a writer that answers every batch
without touching the database: what the threads and the handoff alone allow
on this machine. The baseline,
in the same run and the same processes, commits each entry on its own
(``append_many(session, [draft])`` and commit, one transaction an entry) from
2 threads a process, each with its own connection.
After each side the log is checked: the sequence numbers handed back are
1..n once each and match the table and the head, the chain hashes link, and
the head's tree root, the root read from the stored nodes and every stored
node equal those recomputed from the entries' canonical bytes.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import random
import time
import traceback
import uuid
from array import array
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Barrier
from typing import Any

import psycopg
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from audit import service, tree
from audit.writer import AuditWriter
from audit_verifier import chain, merkle
from bench.common import Size, libpq, migrated_postgres, report
from cornerstore.db import make_engine, make_sessionmaker
from cornerstore.models.audit import AuditEntry, AuditHead, AuditNode
from cornerstore.ports import AuditDraft, Decision

APPEND_GOAL = 20_000

#: Writer processes, each one API worker with its own engine and AuditWriter.
APPEND_PROCESSES = 8
#: Client threads per writer process: requests in flight in one API worker,
#: first a moderate load, then one that keeps every writer's queue full.
APPEND_THREADS = 32
SATURATING_THREADS = 128
#: Threads per process for the one-commit-an-entry baseline, each with its own
#: connection. The head row's lock orders every append, so more do not help: with
#: 8 processes, 1, 2, 4 and 8 threads each gave 414, 411, 373 and 314 appends/s
#: (and 8 x 32 connections would pass PostgreSQL's max_connections of 100).
SINGLE_THREADS = 2
#: Distinct drafts each process cycles through.
DRAFT_POOL = 1024


def _drafts(seed: int) -> list[AuditDraft]:
    """Drafts like the gate's read decisions (and a few denials), for a few shops and callers."""
    rng = random.Random(seed)
    shops = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(50)]
    callers = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(20)]
    drafts = []
    for _ in range(DRAFT_POOL):
        allowed = rng.random() < 0.9
        consent = uuid.UUID(int=rng.getrandbits(128)) if rng.random() < 0.7 else None
        drafts.append(
            AuditDraft(
                action="read",
                decision=Decision.allow if allowed else Decision.deny,
                reason=("consent" if consent else "owner") if allowed else "no active consent",
                principal_id=rng.choice(callers),
                principal_role="consumer" if consent else "shopkeeper",
                shop_id=rng.choice(shops),
                category="sales",
                purpose="analytics",
                policy_version="3",
                details={
                    "records": rng.randrange(500) if allowed else 0,
                    "consent_id": str(consent) if consent else None,
                    "fields": ["occurred_at", "sku", "quantity", "unit_price_cents"],
                },
            )
        )
    return drafts


def _reset_log(database_url: str) -> None:
    """Empty the log: no entry, no node, the head back at the genesis hash."""
    with psycopg.connect(libpq(database_url), autocommit=True) as connection:
        connection.execute("TRUNCATE audit_entries, audit_nodes, audit_checkpoints")
        connection.execute(
            "UPDATE audit_head SET seq = 0, entry_hash = %s, frontier = NULL WHERE id = %s",
            (chain.GENESIS_HASH, service.HEAD_ID),
        )


@dataclass(frozen=True)
class _Phase:
    name: str
    #: "group": AuditWriter.append; "single": one transaction an entry.
    mode: str
    threads: int


@dataclass(frozen=True)
class _Done:
    started: float
    last: float
    seqs: bytes


class _NoStoreWriter(AuditWriter):
    """The group writer's clients, queue and handoff, with nothing stored: the ceiling."""

    def _commit(self, batch: list[Any]) -> bool:
        going_on = self._drain(batch)
        for seq, pending in enumerate(batch, start=1):
            pending.answer(seq)
        return going_on


def _append_once(
    mode: str,
    writers: dict[str, AuditWriter],
    sessions: sessionmaker[Session],
    draft: AuditDraft,
) -> int:
    if mode in writers:
        return writers[mode].append(draft)
    with sessions() as session:
        seq = service.append_many(session, [draft])[0]
        session.commit()
    return seq


def _append_loop(
    mode: str,
    writers: dict[str, AuditWriter],
    sessions: sessionmaker[Session],
    drafts: list[AuditDraft],
    offset: int,
    deadline: float,
) -> tuple[list[int], float]:
    """Append until the deadline; return the seqs handed back and when the last one came."""
    seqs: list[int] = []
    last = time.monotonic()
    n = offset
    while last < deadline:
        seqs.append(_append_once(mode, writers, sessions, drafts[n % len(drafts)]))
        n += 1
        last = time.monotonic()
    return seqs, last


def _append_worker(
    database_url: str,
    number: int,
    phases: list[_Phase],
    seconds: float,
    barrier: Barrier,
    results: multiprocessing.Queue[tuple[int, str, object]],
) -> None:
    """One writer process: warm up, then run each phase from the barrier for ``seconds``."""
    try:
        engine = make_engine(database_url)
        sessions = make_sessionmaker(engine)
        writers = {"group": AuditWriter(sessions), "ceiling": _NoStoreWriter(sessions)}
        drafts = _drafts(number)
        threads = max(p.threads for p in phases)
        # Warm up both paths and the pool (the parent empties the log before timing).
        with ThreadPoolExecutor(threads) as pool:
            for phase in phases:
                warm = [
                    pool.submit(_append_once, phase.mode, writers, sessions, drafts[i])
                    for i in range(phase.threads)
                ]
                for ready in warm:
                    ready.result()
        results.put((number, "ready", None))
        with ThreadPoolExecutor(threads) as pool:
            for phase in phases:
                barrier.wait(timeout=600)
                started = time.monotonic()
                deadline = started + seconds
                futures = [
                    pool.submit(
                        _append_loop,
                        phase.mode,
                        writers,
                        sessions,
                        drafts,
                        i * len(drafts) // phase.threads,
                        deadline,
                    )
                    for i in range(phase.threads)
                ]
                seqs = array("q")
                last = started
                for future in futures:
                    got, ended = future.result()
                    seqs.extend(got)
                    last = max(last, ended)
                results.put((number, "done", _Done(started, last, seqs.tobytes())))
        for writer in writers.values():
            writer.close()
        engine.dispose()
    except BaseException:
        results.put((number, "error", traceback.format_exc()))
        barrier.abort()
        raise


def _collect(
    results: multiprocessing.Queue[tuple[int, str, object]],
    workers: Sequence[BaseProcess],
    what: str,
    timeout: float,
) -> list[object]:
    """One ``what`` report from every worker; raise if one fails, dies or takes too long."""
    got: list[object] = []
    deadline = time.monotonic() + timeout
    while len(got) < len(workers):
        try:
            number, kind, payload = results.get(timeout=1)
        except queue.Empty:
            dead = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"a writer process exited with {dead[0]}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"writer processes did not report {what!r} in time") from None
            continue
        if kind == "error":
            raise RuntimeError(f"writer process {number} failed:\n{payload}")
        if kind != what:
            raise RuntimeError(f"writer process {number} said {kind!r}, expected {what!r}")
        got.append(payload)
    return got


@dataclass(frozen=True)
class _Checked:
    entries: int
    commits: int


def _check_log(engine: Engine, returned: array[int]) -> _Checked:
    """Gap- and duplicate-free seqs, a linked chain, and the tree the entries give, node by node."""
    n = len(returned)
    if sorted(returned) != list(range(1, n + 1)):
        dupes = n - len(set(returned))
        raise RuntimeError(f"the seqs handed back are not 1..{n} once each ({dupes} repeated)")
    columns = [getattr(AuditEntry, name) for name in chain.CHAINED_FIELDS]
    with Session(engine) as session:
        head = session.execute(
            select(AuditHead.seq, AuditHead.entry_hash, AuditHead.frontier).where(
                AuditHead.id == service.HEAD_ID
            )
        ).one()
        count, lowest, highest = session.execute(
            select(func.count(), func.min(AuditEntry.seq), func.max(AuditEntry.seq))
        ).one()
        if not count == highest == head.seq == n or (n and lowest != 1):
            raise RuntimeError(
                f"{count} entries stored with seqs {lowest}..{highest}, head at {head.seq}, "
                f"{n} handed back"
            )
        leaves: list[bytes] = []
        prev = chain.GENESIS_HASH
        times: set[datetime] = set()
        rows = session.execute(
            select(*columns, AuditEntry.prev_hash, AuditEntry.entry_hash)
            .order_by(AuditEntry.seq)
            .execution_options(yield_per=10_000)
        )
        for row in rows:
            fields = dict(zip(chain.CHAINED_FIELDS, row[:-2], strict=True))
            seq = int(row.seq)
            if seq != len(leaves) + 1:
                raise RuntimeError(f"entry {len(leaves) + 1} is missing (found {seq} next)")
            encoded = chain.canonical_bytes(fields)
            if bytes(row.prev_hash) != prev or chain.link(prev, encoded) != bytes(row.entry_hash):
                raise RuntimeError(f"entry {seq} does not link to the chain")
            prev = bytes(row.entry_hash)
            leaves.append(merkle.leaf_hash(encoded))
            times.add(row.recorded_at)
        if len(leaves) != n:
            raise RuntimeError(f"{len(leaves)} entries read back, {n} handed back")
        if bytes(head.entry_hash) != prev:
            raise RuntimeError("the head's chain hash is not the newest entry's")
        recomputed = merkle.root_from_leaf_hashes(leaves)
        if tree.root_of_frontier(head.frontier) != recomputed:
            raise RuntimeError("the head's tree root differs from the entries' root")
        if merkle.root(n, tree.node_getter(session)) != recomputed:
            raise RuntimeError("the stored nodes' root differs from the entries' root")
        # Proofs are read from every stored node, not just the root's: all must be right.
        builder = merkle.TreeBuilder()
        expected = {
            (level, idx): digest for leaf in leaves for level, idx, digest in builder.append(leaf)
        }
        stored = session.execute(
            select(AuditNode.level, AuditNode.idx, AuditNode.hash).execution_options(
                yield_per=50_000
            )
        )
        found = 0
        for level, idx, digest in stored:
            if expected.get((level, idx)) != bytes(digest):
                raise RuntimeError(f"stored node ({level}, {idx}) is not the entries' node")
            found += 1
        if found != len(expected):
            raise RuntimeError(f"{found} nodes stored, {len(expected)} expected")
    # Each append_many stamps its entries with one recorded_at: one timestamp, one commit.
    return _Checked(n, len(times))


@dataclass(frozen=True)
class _Measured:
    rate: float
    seconds: float
    threads: int
    #: None for the ceiling, which stores nothing to check.
    checked: _Checked | None


def _run_appends(database_url: str, processes: int, seconds: float) -> dict[str, _Measured]:
    phases = [
        _Phase("group", "group", APPEND_THREADS),
        _Phase("ceiling", "ceiling", APPEND_THREADS),
        _Phase("saturated", "group", SATURATING_THREADS),
        _Phase("saturated ceiling", "ceiling", SATURATING_THREADS),
        _Phase("single", "single", SINGLE_THREADS),
    ]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes + 1)
    results: multiprocessing.Queue[tuple[int, str, object]] = context.Queue()
    workers = [
        context.Process(
            target=_append_worker,
            args=(database_url, number, phases, seconds, barrier, results),
            daemon=True,
        )
        for number in range(processes)
    ]
    engine = make_engine(database_url)
    measured: dict[str, _Measured] = {}
    try:
        for worker in workers:
            worker.start()
        _collect(results, workers, "ready", timeout=120)
        for phase in phases:
            _reset_log(database_url)
            barrier.wait(timeout=60)
            done = _collect(results, workers, "done", seconds + 120)
            finished = [d for d in done if isinstance(d, _Done)]
            started = min(d.started for d in finished)
            elapsed = max(d.last for d in finished) - started
            returned: array[int] = array("q")
            for d in finished:
                returned.frombytes(d.seqs)
            checked = None if phase.mode == "ceiling" else _check_log(engine, returned)
            measured[phase.name] = _Measured(
                len(returned) / elapsed, elapsed, phase.threads, checked
            )
        for worker in workers:
            worker.join(timeout=60)
            if worker.exitcode != 0:
                raise RuntimeError(f"a writer process exited with {worker.exitcode}")
    finally:
        engine.dispose()
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
                worker.join(timeout=10)
    return measured


def _durability(database_url: str) -> str:
    """The settings that make a commit durable, as the server has them."""
    with psycopg.connect(libpq(database_url)) as connection:
        shown = []
        for name in ("synchronous_commit", "fsync"):
            row = connection.execute(f"SHOW {name}").fetchone()
            shown.append(f"{name} {row[0] if row else '?'}")
    return ", ".join(shown)


def _group_row(label: str, measured: _Measured, processes: int) -> tuple[str, str]:
    checked = measured.checked
    assert checked is not None
    # A closed loop: every client always has one append in flight, so the
    # mean time an append takes is the clients over the rate (Little's law).
    latency_ms = processes * measured.threads / measured.rate * 1000
    return (
        f"{label} ({measured.threads} threads a process)",
        f"{measured.rate:9,.0f} appends/s  ({checked.entries:,} in {measured.seconds:.1f} s, "
        f"{checked.entries / checked.commits:.1f} entries a commit, {latency_ms:.1f} ms an append)",
    )


def _ceiling_row(measured: _Measured) -> tuple[str, str]:
    return (
        f"  ceiling: same clients, nothing stored ({measured.threads} threads a process)",
        f"{measured.rate:9,.0f} appends/s",
    )


def run_appends(size: Size) -> dict[str, float]:
    processes = size.pick(2, APPEND_PROCESSES)
    seconds = 1.0 if size.smoke else 12.0
    with migrated_postgres() as url:
        durability = _durability(url)
        measured = _run_appends(url, processes, seconds)
    group, saturated = measured["group"], measured["saturated"]
    ceiling, saturated_ceiling = measured["ceiling"], measured["saturated ceiling"]
    single = measured["single"]
    best = max(group.rate, saturated.rate)
    ratio = best / single.rate
    report(
        f"appends: durable audit appends, {processes} writer processes, "
        f"{seconds:g} s each side, {durability} (PostgreSQL, {os.cpu_count()} cores)",
        [
            _group_row("AuditWriter.append (group commit)", group, processes),
            _ceiling_row(ceiling),
            _group_row("AuditWriter.append (group commit)", saturated, processes),
            _ceiling_row(saturated_ceiling),
            (
                f"baseline: one commit an entry ({SINGLE_THREADS} threads a process)",
                f"{single.rate:9,.0f} appends/s  ({single.rate * single.seconds:,.0f} in "
                f"{single.seconds:.1f} s)",
            ),
            ("ratio (best group / baseline)", f"{ratio:9.1f}x"),
            ("goal", f">= {APPEND_GOAL:,} appends/s"),
            (
                "checked (every stored side)",
                "seqs 1..n once each, chain links, head root and every node from the entries",
            ),
        ],
    )
    assert group.checked is not None
    return {
        "audit_appends_per_s": group.rate,
        "audit_appends_saturated_per_s": saturated.rate,
        "audit_appends_ceiling_per_s": ceiling.rate,
        "audit_appends_saturated_ceiling_per_s": saturated_ceiling.rate,
        "audit_single_commit_appends_per_s": single.rate,
        "audit_appends_ratio": ratio,
        "audit_entries_per_commit": group.checked.entries / group.checked.commits,
    }
