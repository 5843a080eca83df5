"""The Merkle tree's storage: extending it as entries are appended, and reading proofs from it.

Every perfect subtree's root is stored (:class:`cornerstore.models.audit.AuditNode`), so a
proof is one indexed read of O(log n) nodes. The right frontier of the tree
is kept in the head row, so an append reads nothing but that row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from audit import store
from audit_verifier import merkle
from cornerstore.models.audit import AuditNode


def split_frontier(frontier: bytes | None) -> list[bytes]:
    raw = frontier or b""
    return [raw[i : i + merkle.HASH_SIZE] for i in range(0, len(raw), merkle.HASH_SIZE)]


def extend(
    session: Session, size: int, frontier: bytes | None, leaf_hashes: Sequence[bytes]
) -> bytes:
    """Append leaves to a tree of ``size`` leaves; store the new nodes; return the new frontier."""
    builder = merkle.TreeBuilder.restore(size, split_frontier(frontier))
    nodes: list[merkle.Node] = []
    for leaf in leaf_hashes:
        nodes.extend(builder.append(leaf))
    store.insert_nodes(session, nodes)
    return b"".join(builder.frontier())


def root_of_frontier(frontier: bytes | None) -> bytes:
    """The tree's root hash, from its frontier alone (no node is read)."""
    hashes = split_frontier(frontier)
    return merkle.fold(hashes) if hashes else merkle.EMPTY_ROOT


#: PostgreSQL: the node ids travel as two arrays, so the statement text is the
#: same for every proof and is prepared once per connection (a tuple IN list is
#: not). It runs on the driver, prepared from the first call: SQLAlchemy's own
#: execution and the unprepared planning were 40% of a proof's time.
_NODES_BY_ARRAYS = (
    "SELECT level, idx, hash FROM unnest(%s::int2[], %s::int8[]) AS wanted(level, idx) "
    "JOIN audit_nodes USING (level, idx)"
)


def node_getter(session: Session) -> merkle.NodeGetter:
    """Reads the requested nodes in one query, in the order asked; a missing node is an error."""
    postgres = session.get_bind().dialect.name == "postgresql"

    def get(ids: Sequence[merkle.NodeId]) -> list[bytes]:
        if not ids:
            return []
        rows: Sequence[Any]
        if postgres:
            driver = session.connection().connection.driver_connection
            assert isinstance(driver, psycopg.Connection)
            rows = driver.execute(
                _NODES_BY_ARRAYS, ([n[0] for n in ids], [n[1] for n in ids]), prepare=True
            ).fetchall()
        else:
            rows = session.execute(
                select(AuditNode.level, AuditNode.idx, AuditNode.hash).where(
                    tuple_(AuditNode.level, AuditNode.idx).in_([(n[0], n[1]) for n in ids])
                )
            ).all()
        found = {(level, idx): bytes(digest) for level, idx, digest in rows}
        missing = [node for node in ids if (node[0], node[1]) not in found]
        if missing:
            raise LookupError(f"the tree lacks node {missing[0]}: it is not that large")
        return [found[(node[0], node[1])] for node in ids]

    return get


def inclusion_proof_with_leaf(
    session: Session, index: int, tree_size: int
) -> tuple[bytes, list[bytes]]:
    """The leaf hash at ``index`` and its inclusion proof in the tree of ``tree_size``.

    The leaf's own hash rides along in the proof's query: one round trip.
    """
    get = node_getter(session)
    leaf: list[bytes] = []

    def with_the_leaf(ids: Sequence[merkle.NodeId]) -> Sequence[bytes]:
        hashes = get([*ids, (0, index)])
        leaf.append(hashes[-1])
        return hashes[:-1]

    proof = merkle.inclusion_proof(index, tree_size, with_the_leaf)
    if not leaf:  # a one-leaf tree needs no other node
        leaf.extend(get([(0, index)]))
    return leaf[0], proof


def inclusion_proofs_with_leaves(
    session: Session, indices: Sequence[int], tree_size: int
) -> dict[int, tuple[bytes, list[bytes]]]:
    """Each leaf's hash and inclusion proof, as :func:`inclusion_proof_with_leaf`, in one query.

    For a page that shows many entries at once: their proofs share most of
    their nodes, and one round trip fetches them all.
    """
    plans = {index: merkle.inclusion_plan(index, tree_size) for index in indices}
    wanted = list(
        dict.fromkeys(
            [node for plan in plans.values() for element in plan for node in element]
            + [(0, index) for index in indices]
        )
    )
    found = dict(zip(wanted, node_getter(session)(wanted), strict=True))

    def from_found(ids: Sequence[merkle.NodeId]) -> list[bytes]:
        return [found[node] for node in ids]

    return {
        index: (found[(0, index)], merkle.inclusion_proof(index, tree_size, from_found))
        for index in indices
    }
