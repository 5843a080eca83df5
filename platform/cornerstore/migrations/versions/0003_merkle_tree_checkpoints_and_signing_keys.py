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

    from sqlalchemy.orm import Session

    from audit.service import build_tree_for_existing_entries

    session = Session(bind=op.get_bind())
    build_tree_for_existing_entries(session)
    session.flush()


def downgrade() -> None:
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.drop_column("frontier")

    op.drop_table("audit_signing_keys")
    op.drop_table("audit_nodes")
    op.drop_table("audit_checkpoints")
