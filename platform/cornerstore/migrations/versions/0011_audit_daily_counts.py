"""audit daily counts: entries per UTC day and kind, for the console's charts

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 20:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_daily_counts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("decision", sa.String(length=8), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=80), nullable=False),
        sa.Column("principal_id", sa.String(length=36), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day",
            "action",
            "decision",
            "purpose",
            "reason",
            "principal_id",
            name=op.f("pk_audit_daily_counts"),
        ),
    )
    mark = op.create_table(
        "audit_daily_count_mark",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_daily_count_mark")),
    )
    # Nothing counted yet: the first rounds count every entry already in the log.
    op.bulk_insert(mark, [{"id": 1, "seq": 0}])


def downgrade() -> None:
    op.drop_table("audit_daily_count_mark")
    op.drop_table("audit_daily_counts")
