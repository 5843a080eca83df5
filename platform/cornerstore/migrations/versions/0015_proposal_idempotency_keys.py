"""a consumer's Idempotency-Key on a proposal: sending it again answers the same proposal

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 17:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("proposals") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(length=200), nullable=True))
        batch.create_unique_constraint(
            "uq_proposals_consumer_idempotency_key", ["consumer_id", "idempotency_key"]
        )


def downgrade() -> None:
    with op.batch_alter_table("proposals") as batch:
        batch.drop_constraint("uq_proposals_consumer_idempotency_key", type_="unique")
        batch.drop_column("idempotency_key")
