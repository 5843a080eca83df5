"""analytics: changed weeks, sealed rollups, the privacy budget and ledger, entries' shops

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from cornerstore.db import UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "changed_weeks",
        sa.Column("shop_id", sa.Uuid(), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_changed_weeks_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("shop_id", "category", "week_start", name=op.f("pk_changed_weeks")),
    )
    op.create_table(
        "analytics_rollups",
        sa.Column("shop_id", sa.Uuid(), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("built_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_analytics_rollups_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "shop_id", "category", "week_start", name=op.f("pk_analytics_rollups")
        ),
    )
    op.create_index(
        op.f("ix_analytics_rollups_built_at"), "analytics_rollups", ["built_at"], unique=False
    )
    op.create_table(
        "privacy_budgets",
        sa.Column("consumer_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("period_start", UTCDateTime(), nullable=False),
        sa.Column("epsilon_spent", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["consumer_id"],
            ["principals.id"],
            name=op.f("fk_privacy_budgets_consumer_id_principals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "consumer_id", "purpose", "period_start", name=op.f("pk_privacy_budgets")
        ),
    )
    op.create_table(
        "privacy_spends",
        sa.Column("audit_seq", sa.BigInteger(), nullable=False),
        sa.Column("consumer_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("period_start", UTCDateTime(), nullable=False),
        sa.Column("epsilon", sa.Float(), nullable=False),
        sa.Column("delta", sa.Float(), nullable=False),
        sa.Column("shops", sa.Integer(), nullable=False),
        sa.Column("spent_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("audit_seq", name=op.f("pk_privacy_spends")),
    )
    op.create_index(
        "ix_privacy_spends_consumer",
        "privacy_spends",
        ["consumer_id", "purpose", "spent_at"],
        unique=False,
    )
    op.create_table(
        "audit_entry_shops",
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("shop_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("seq", "shop_id", name=op.f("pk_audit_entry_shops")),
    )
    op.create_index("ix_audit_entry_shops_shop", "audit_entry_shops", ["shop_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_audit_entry_shops_shop", table_name="audit_entry_shops")
    op.drop_table("audit_entry_shops")
    op.drop_index("ix_privacy_spends_consumer", table_name="privacy_spends")
    op.drop_table("privacy_spends")
    op.drop_table("privacy_budgets")
    op.drop_index(op.f("ix_analytics_rollups_built_at"), table_name="analytics_rollups")
    op.drop_table("analytics_rollups")
    op.drop_table("changed_weeks")
