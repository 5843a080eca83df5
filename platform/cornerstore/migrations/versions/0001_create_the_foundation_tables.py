"""create the foundation tables

Revision ID: 0001
Revises:
Create Date: 2026-11-26 23:07:40.326638
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cornerstore.db

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("recorded_at", cornerstore.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("decision", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=80), nullable=False),
        sa.Column("principal_id", sa.Uuid(), nullable=True),
        sa.Column("principal_role", sa.String(length=20), nullable=True),
        sa.Column("shop_id", sa.Uuid(), nullable=True),
        sa.Column("category", sa.String(length=16), nullable=True),
        sa.Column("purpose", sa.String(length=40), nullable=True),
        sa.Column("policy_version", sa.String(length=16), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("entry_hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_entries")),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index("ix_audit_entries_principal", ["principal_id", "seq"], unique=False)
        batch_op.create_index("ix_audit_entries_shop", ["shop_id", "seq"], unique=False)
        batch_op.create_index("ix_audit_entries_time", ["recorded_at"], unique=False)

    audit_head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("entry_hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    # The chain's tip starts at sequence 0 with the all-zero genesis hash.
    op.bulk_insert(audit_head, [{"id": 1, "seq": 0, "entry_hash": bytes(32)}])
    op.create_table(
        "principals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("api_key_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", cornerstore.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", cornerstore.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_principals")),
        sa.UniqueConstraint("api_key_hash", name=op.f("uq_principals_api_key_hash")),
    )
    op.create_table(
        "shops",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("district", sa.String(length=200), nullable=True),
        sa.Column("created_at", cornerstore.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shops")),
    )
    op.create_table(
        "consents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("shop_id", sa.Uuid(), nullable=False),
        sa.Column("consumer_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("granted_by", sa.Uuid(), nullable=False),
        sa.Column("granted_at", cornerstore.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", cornerstore.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_by", sa.Uuid(), nullable=True),
        sa.Column("revoked_at", cornerstore.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["consumer_id"],
            ["principals.id"],
            name=op.f("fk_consents_consumer_id_principals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_consents_shop_id_shops"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consents_lookup", ["shop_id", "consumer_id", "purpose", "status"], unique=False
        )

    op.create_table(
        "principal_shops",
        sa.Column("principal_id", sa.Uuid(), nullable=False),
        sa.Column("shop_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_principal_shops_principal_id_principals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_principal_shops_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("principal_id", "shop_id", name=op.f("pk_principal_shops")),
    )
    with op.batch_alter_table("principal_shops", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_principal_shops_shop_id"), ["shop_id"], unique=False)

    op.create_table(
        "quarantined_records",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("shop_id", sa.Uuid(), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", cornerstore.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_quarantined_records_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantined_records")),
    )
    with op.batch_alter_table("quarantined_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_quarantined_records_batch_id"), ["batch_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_quarantined_records_shop_id"), ["shop_id"], unique=False
        )

    op.create_table(
        "shop_keys",
        sa.Column("shop_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("master_key_id", sa.String(length=16), nullable=False),
        sa.Column("created_at", cornerstore.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_shop_keys_shop_id_shops"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("shop_id", "version", name=op.f("pk_shop_keys")),
    )
    op.create_table(
        "shop_records",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("shop_id", sa.Uuid(), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("record_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("occurred_at", cornerstore.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        sa.Column("ingested_at", cornerstore.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_shop_records_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shop_records")),
        sa.UniqueConstraint("shop_id", "category", "record_key", name="uq_shop_records_natural"),
    )
    with op.batch_alter_table("shop_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_shop_records_window", ["shop_id", "category", "occurred_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("shop_records", schema=None) as batch_op:
        batch_op.drop_index("ix_shop_records_window")

    op.drop_table("shop_records")
    op.drop_table("shop_keys")
    with op.batch_alter_table("quarantined_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quarantined_records_shop_id"))
        batch_op.drop_index(batch_op.f("ix_quarantined_records_batch_id"))

    op.drop_table("quarantined_records")
    with op.batch_alter_table("principal_shops", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_principal_shops_shop_id"))

    op.drop_table("principal_shops")
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_index("ix_consents_lookup")

    op.drop_table("consents")
    op.drop_table("shops")
    op.drop_table("principals")
    op.drop_table("audit_head")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entries_time")
        batch_op.drop_index("ix_audit_entries_shop")
        batch_op.drop_index("ix_audit_entries_principal")

    op.drop_table("audit_entries")
