"""merkle tree, checkpoints and signing keys

The audit log becomes an RFC 9162 Merkle tree: every perfect subtree's hash
is stored, the head keeps the tree's frontier, and signed checkpoints and the
keys that signed them are kept. An existing log gets its tree built here.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 03:57:53.687446
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cornerstore.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_checkpoints",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", cornerstore.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_audit_checkpoints")),
    )
    op.create_table(
        "audit_nodes",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_audit_nodes")),
    )
    op.create_table(
        "audit_signing_keys",
        sa.Column("key_id", sa.String(length=8), nullable=False),
        sa.Column("verifier_key", sa.Text(), nullable=False),
        sa.Column("created_at", cornerstore.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("retired_at", cornerstore.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_audit_signing_keys")),
    )
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.add_column(sa.Column("frontier", sa.LargeBinary(), nullable=True))

    _build_tree_for_existing_entries()


def _build_tree_for_existing_entries(batch: int = 5000) -> None:
    """Hash the entries already stored into the tree, as they were at this revision.

    Frozen here with Core tables, not the application's models: only the
    entry encoding (audit_verifier.chain) and the tree (audit_verifier.merkle), which are the
    log's specification and never change, come from the application.
    """
    from audit_verifier import chain, merkle

    bind = op.get_bind()
    entries = sa.table(
        "audit_entries",
        sa.column("seq", sa.BigInteger()),
        sa.column("recorded_at", cornerstore.db.UTCDateTime(timezone=True)),
        *(sa.column(name, sa.String()) for name in ("action", "decision", "reason")),
        sa.column("principal_id", sa.Uuid()),
        sa.column("principal_role", sa.String()),
        sa.column("shop_id", sa.Uuid()),
        *(sa.column(name, sa.String()) for name in ("category", "purpose", "policy_version")),
        sa.column("details", sa.JSON()),
    )
    nodes = sa.table(
        "audit_nodes",
        sa.column("level", sa.SmallInteger()),
        sa.column("idx", sa.BigInteger()),
        sa.column("hash", sa.LargeBinary()),
    )
    head = sa.table("audit_head", sa.column("id"), sa.column("frontier", sa.LargeBinary()))
    builder, after = merkle.TreeBuilder(), 0
    while True:
        rows = bind.execute(
            sa.select(entries).where(entries.c.seq > after).order_by(entries.c.seq).limit(batch)
        ).all()
        if not rows:
            break
        new_nodes: list[dict[str, object]] = []
        for row in rows:
            leaf = merkle.leaf_hash(chain.canonical_bytes(dict(row._mapping)))
            new_nodes.extend(
                {"level": level, "idx": idx, "hash": digest}
                for level, idx, digest in builder.append(leaf)
            )
        bind.execute(nodes.insert(), new_nodes)
        after = rows[-1].seq
    if builder.size:
        bind.execute(
            head.update().where(head.c.id == 1).values(frontier=b"".join(builder.frontier()))
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.drop_column("frontier")

    op.drop_table("audit_signing_keys")
    op.drop_table("audit_nodes")
    op.drop_table("audit_checkpoints")
