"""the POS profile a shop's CSV exports are read with; a quarantine the shop can fix

A quarantined record now keeps the file line it came from, and a keyed
fingerprint of what arrived, so uploading the same file again does not
quarantine the same bad line twice.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 17:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("shops") as batch:
        batch.add_column(sa.Column("pos_profile", sa.String(length=40), nullable=True))
    with op.batch_alter_table("quarantined_records") as batch:
        batch.add_column(sa.Column("line", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("fingerprint", sa.LargeBinary(), nullable=True))
        batch.create_unique_constraint(
            "uq_quarantined_records_shop_fingerprint", ["shop_id", "fingerprint"]
        )


def downgrade() -> None:
    with op.batch_alter_table("quarantined_records") as batch:
        batch.drop_constraint("uq_quarantined_records_shop_fingerprint", type_="unique")
        batch.drop_column("fingerprint")
        batch.drop_column("line")
    with op.batch_alter_table("shops") as batch:
        batch.drop_column("pos_profile")
