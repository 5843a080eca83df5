"""keys, erasures and key versions

Master keys are recorded by id, shops' data keys say how they are wrapped,
every sealed row says which data-key version sealed it, and erasures are kept.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 03:24:27.437616
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cornerstore.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "master_keys",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("created_at", cornerstore.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_master_keys")),
    )
    op.create_table(
        "shop_erasures",
        sa.Column("shop_id", sa.Uuid(), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=True),
        sa.Column("erased_at", cornerstore.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("keys_destroyed_at", cornerstore.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("shop_id", name=op.f("pk_shop_erasures")),
    )
    with op.batch_alter_table("quarantined_records", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("key_version", sa.Integer(), nullable=False, server_default="1")
        )

    with op.batch_alter_table("shop_keys", schema=None) as batch_op:
        # Data keys stored before this revision were wrapped by the master key alone.
        batch_op.add_column(
            sa.Column("wrap_format", sa.Integer(), nullable=False, server_default="1")
        )
        batch_op.create_index(
            batch_op.f("ix_shop_keys_master_key_id"), ["master_key_id"], unique=False
        )

    with op.batch_alter_table("shop_records", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("key_version", sa.Integer(), nullable=False, server_default="1")
        )

    # The defaults only fill the rows that exist; new rows always say their version.
    for table, column in (
        ("quarantined_records", "key_version"),
        ("shop_keys", "wrap_format"),
        ("shop_records", "key_version"),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("shop_records", schema=None) as batch_op:
        batch_op.drop_column("key_version")

    with op.batch_alter_table("shop_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shop_keys_master_key_id"))
        batch_op.drop_column("wrap_format")

    with op.batch_alter_table("quarantined_records", schema=None) as batch_op:
        batch_op.drop_column("key_version")

    op.drop_table("shop_erasures")
    op.drop_table("master_keys")
