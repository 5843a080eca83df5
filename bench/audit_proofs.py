"""Audit log ``proofs``: inclusion proofs for random leaves of a 10M-leaf tree, one query each.

A tree of 10M leaves is built without 10M entries: leaf hashes of
synthetic entry bytes go through :class:`audit_verifier.merkle.TreeBuilder`, the nodes
it reports are COPYed into ``audit_nodes`` (about 20M rows) and the head gets
the size and frontier. Then inclusion proofs for random leaves are read as
``GET /v1/audit/proofs/inclusion`` reads them, in a session that has already
run a query (the handler reads the head first): ``merkle.inclusion_proof(index,
size, tree.node_getter(session))``, one query. Every proof is checked against
the root with ``merkle.verify_inclusion`` and against the baseline's. The
baseline computes the same proofs from every node held in a Python dict.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from audit import service, tree
from audit_verifier import merkle
from bench.common import Size, libpq, migrated_postgres, percentile, report, rss_mib
from cornerstore.db import make_engine, make_sessionmaker
from cornerstore.models.audit import AuditHead

PROOF_GOAL_MS = 1.0


def _synthetic_leaf(index: int) -> bytes:
    """The leaf hash of a stand-in for entry ``index``: only the tree's shape matters here."""
    return merkle.leaf_hash(b"bench audit entry %d" % index)


@dataclass(frozen=True)
class _Tree:
    root: bytes
    nodes: dict[tuple[int, int], bytes]
    rows: int
    hash_seconds: float
    seconds: float


def _load_tree(database_url: str, size: int) -> _Tree:
    """Hash ``size`` synthetic leaves, COPY every node into audit_nodes, set the head."""
    started = time.perf_counter()
    builder = merkle.TreeBuilder()
    nodes: dict[tuple[int, int], bytes] = {}
    hashing = 0.0
    with psycopg.connect(libpq(database_url)) as connection:
        with (
            connection.cursor() as cursor,
            cursor.copy("COPY audit_nodes (level, idx, hash) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(["int2", "int8", "bytea"])
            write_row = copy.write_row
            append = builder.append
            chunk = 1 << 16
            for start in range(0, size, chunk):
                tick = time.perf_counter()
                made: list[merkle.Node] = []
                for index in range(start, min(size, start + chunk)):
                    made.extend(append(_synthetic_leaf(index)))
                hashing += time.perf_counter() - tick
                for level, idx, digest in made:
                    write_row((level, idx, digest))
                    nodes[(level, idx)] = digest
        connection.execute(
            "UPDATE audit_head SET seq = %s, entry_hash = %s, frontier = %s WHERE id = %s",
            (size, bytes(32), b"".join(builder.frontier()), service.HEAD_ID),
        )
        connection.commit()
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE audit_nodes")
    return _Tree(builder.root(), nodes, len(nodes), hashing, time.perf_counter() - started)


def _check_stored_tree(sessions: sessionmaker[Session], leaves: int, built: _Tree) -> None:
    """The head's size and root, and the root read from audit_nodes, are the built tree's."""
    with sessions() as session:
        head = session.execute(select(AuditHead.seq, AuditHead.frontier)).one()
        stored_root = merkle.root(leaves, tree.node_getter(session))
    if not head.seq == leaves or not (
        tree.root_of_frontier(head.frontier) == stored_root == built.root
    ):
        raise RuntimeError("the stored tree's root is not the built tree's root")


def _database_proofs(
    sessions: sessionmaker[Session], leaves: int, indices: list[int], warmup: int
) -> tuple[list[float], list[list[bytes]]]:
    """Time each proof as the endpoint reads it; the times (ms) and proofs after the warm-up."""
    db_ms: list[float] = []
    proofs: list[list[bytes]] = []
    for n, index in enumerate(indices):
        with sessions() as session:
            # The handler has read the head (and checked the caller) by then.
            size_now = session.scalar(select(AuditHead.seq).where(AuditHead.id == service.HEAD_ID))
            if size_now != leaves:
                raise RuntimeError(f"the head says {size_now} entries, not {leaves}")
            tick = time.perf_counter()
            leaf, proof = tree.inclusion_proof_with_leaf(session, index, leaves)
            took = (time.perf_counter() - tick) * 1000
        if n >= warmup:
            db_ms.append(took)
            proofs.append(proof)
            if leaf != _synthetic_leaf(index):
                raise RuntimeError(f"leaf {index} is stored with the wrong hash")
    return db_ms, proofs


def _memory_proofs(
    built: _Tree, leaves: int, indices: list[int], warmup: int, proofs: list[list[bytes]]
) -> list[float]:
    """Time the baseline's proofs from the dict (ms); each must equal the database's and verify."""
    nodes = built.nodes

    def from_dict(ids: Sequence[merkle.NodeId]) -> list[bytes]:
        return [nodes[(level, idx)] for level, idx in ids]

    memory_ms: list[float] = []
    for n, index in enumerate(indices):
        tick = time.perf_counter()
        proof = merkle.inclusion_proof(index, leaves, from_dict)
        took = (time.perf_counter() - tick) * 1000
        if n >= warmup:
            memory_ms.append(took)
            if proof != proofs[n - warmup]:
                raise RuntimeError(f"the database and the dict give different proofs for {index}")
            merkle.verify_inclusion(index, leaves, _synthetic_leaf(index), proof, built.root)
    return memory_ms


def run_proofs(size: Size) -> dict[str, float]:
    leaves = size.pick(2_000, 10_000_000)
    samples = size.pick(300, 5_000)
    warmup = size.pick(20, 500)
    rng = random.Random(7)
    indices = [rng.randrange(leaves) for _ in range(warmup + samples)]
    with migrated_postgres() as url:
        built = _load_tree(url, leaves)
        if built.rows != 2 * leaves - leaves.bit_count():
            raise RuntimeError(f"{built.rows} nodes stored for {leaves} leaves")
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        try:
            _check_stored_tree(sessions, leaves, built)
            db_ms, proofs = _database_proofs(sessions, leaves, indices, warmup)
        finally:
            engine.dispose()
    memory_ms = _memory_proofs(built, leaves, indices, warmup, proofs)
    p50, p99 = percentile(db_ms, 0.5), percentile(db_ms, 0.99)
    m50, m99 = percentile(memory_ms, 0.5), percentile(memory_ms, 0.99)
    report(
        f"proofs: inclusion proofs for {samples:,} random leaves of a {leaves:,}-leaf tree "
        f"({built.rows:,} stored nodes), one query each (PostgreSQL)",
        [
            (
                "build: hash leaves (TreeBuilder), COPY nodes, index, analyse",
                f"{built.seconds:7.1f} s  (hashing {built.hash_seconds:.1f} s; "
                f"bench RSS {rss_mib():,.0f} MiB with the dict)",
            ),
            (
                "proof + leaf hash from audit_nodes, as the endpoint reads them",
                f"p50 {p50:6.3f} ms   p99 {p99:6.3f} ms",
            ),
            (
                "baseline: the same proofs from a dict in memory",
                f"p50 {m50:6.3f} ms   p99 {m99:6.3f} ms",
            ),
            ("ratio (p50, database / memory)", f"{p50 / m50:7.1f}x"),
            ("goal", f"p99 <= {PROOF_GOAL_MS:g} ms"),
            ("checked", "every proof verifies against the root and equals the dict's"),
        ],
    )
    return {
        "audit_proof_build_s": built.seconds,
        "audit_proof_p50_ms": p50,
        "audit_proof_p99_ms": p99,
        "audit_proof_memory_p50_ms": m50,
    }
