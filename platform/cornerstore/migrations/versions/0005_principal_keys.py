"""principal keys: several API keys a principal, each with its own expiry

A principal's API key moves from ``principals.api_key_hash`` to its own row
in ``principal_keys``, so that a rotated key can keep working for a grace
period beside its successor, and be ended at a stated time.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 16:00:00
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import cornerstore.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    when = cornerstore.db.UTCDateTime(timezone=True)
    # Frozen columns, typed so that ids and times read back alike on both databases.
    principals = sa.table(
        "principals",
        sa.column("id", sa.Uuid()),
        sa.column("api_key_hash", sa.LargeBinary()),
        sa.column("created_at", when),
    )
    # Read first: on SQLite, dropping the column rebuilds the table, and a
    # rebuild after principal_keys existed would cascade-delete its rows.
    existing = op.get_bind().execute(sa.select(principals)).all()
    with op.batch_alter_table("principals", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_principals_api_key_hash"), type_="unique")
        batch_op.drop_column("api_key_hash")
    keys = op.create_table(
        "principal_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("principal_id", sa.Uuid(), nullable=False),
        sa.Column("key_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("expires_at", when, nullable=True),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_principal_keys_principal_id_principals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_principal_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_principal_keys_key_hash")),
    )
    op.create_index(
        op.f("ix_principal_keys_principal_id"), "principal_keys", ["principal_id"], unique=False
    )
    if existing:
        op.bulk_insert(
            keys,
            [
                {
                    "id": uuid.uuid4(),
                    "principal_id": row.id,
                    "key_hash": row.api_key_hash,
                    "created_at": row.created_at or datetime.now(UTC),
                    "expires_at": None,
                }
                for row in existing
            ],
        )


def downgrade() -> None:
    # A principal had one key: the newest that has not expired is the one kept.
    with op.batch_alter_table("principals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("api_key_hash", sa.LargeBinary(length=32), nullable=True))
    op.execute(
        "UPDATE principals SET api_key_hash = (SELECT key_hash FROM principal_keys k "
        "WHERE k.principal_id = principals.id AND k.expires_at IS NULL "
        "ORDER BY k.created_at DESC LIMIT 1)"
    )
    with op.batch_alter_table("principals", schema=None) as batch_op:
        batch_op.create_unique_constraint(op.f("uq_principals_api_key_hash"), ["api_key_hash"])
    op.drop_index(op.f("ix_principal_keys_principal_id"), table_name="principal_keys")
    op.drop_table("principal_keys")
