"""consent artefacts, receipts and webhooks

A consent becomes a versioned artefact: the current row gains access mode,
data range, frequency limit, validity, data life and use counts, and every
version is kept in ``consent_versions``. Consents granted before this
release get one version that says so (they have no receipt). Receipt-signing
keys and consumers' webhooks and deliveries get their tables.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 08:20:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import cornerstore.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Consents from before data life existed keep what they read for 30 days.
LEGACY_DATA_LIFE_SECONDS = 30 * 86400


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def upgrade() -> None:
    when = cornerstore.db.UTCDateTime(timezone=True)
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.alter_column("granted_by", existing_type=sa.Uuid(), nullable=True)
        batch_op.alter_column("granted_at", existing_type=when, nullable=True)
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(
            sa.Column("access_mode", sa.String(16), nullable=False, server_default="rows")
        )
        batch_op.add_column(sa.Column("range_from", when, nullable=True))
        batch_op.add_column(sa.Column("range_until", when, nullable=True))
        batch_op.add_column(sa.Column("range_last_days", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("max_reads_per_day", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "data_life_seconds",
                sa.BigInteger(),
                nullable=False,
                server_default=str(LEGACY_DATA_LIFE_SECONDS),
            )
        )
        batch_op.add_column(sa.Column("valid_from", when, nullable=True))
        batch_op.add_column(sa.Column("created_at", when, nullable=True))
        batch_op.add_column(sa.Column("requested_by", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("updated_at", when, nullable=True))
        batch_op.add_column(
            sa.Column("paused_by_shop", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("uses", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("last_used_at", when, nullable=True))
        batch_op.add_column(sa.Column("use_day", sa.String(10), nullable=True))
        batch_op.add_column(sa.Column("day_uses", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE consents SET valid_from = granted_at, created_at = granted_at, "
        "updated_at = COALESCE(revoked_at, granted_at)"
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.alter_column("valid_from", existing_type=when, nullable=False)
        batch_op.alter_column("created_at", existing_type=when, nullable=False)
        batch_op.alter_column("updated_at", existing_type=when, nullable=False)
        # The defaults only filled the existing rows; new ones get theirs from the hub.
        for name, kind in (
            ("version", sa.Integer()),
            ("access_mode", sa.String(16)),
            ("data_life_seconds", sa.BigInteger()),
            ("paused_by_shop", sa.Boolean()),
            ("uses", sa.BigInteger()),
            ("day_uses", sa.Integer()),
        ):
            batch_op.alter_column(name, existing_type=kind, server_default=None)
        batch_op.create_index("ix_consents_consumer", ["consumer_id", "created_at"], unique=False)

    versions = op.create_table(
        "consent_versions",
        sa.Column("consent_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("shop_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("change", sa.String(16), nullable=False),
        sa.Column("changed_by", sa.Uuid(), nullable=False),
        sa.Column("changed_by_role", sa.String(20), nullable=False),
        sa.Column("changed_at", when, nullable=False),
        sa.Column("artefact", sa.JSON(), nullable=False),
        sa.Column("receipt", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["consent_id"],
            ["consents.id"],
            name=op.f("fk_consent_versions_consent_id_consents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("consent_id", "version", name=op.f("pk_consent_versions")),
    )
    with op.batch_alter_table("consent_versions", schema=None) as batch_op:
        batch_op.create_index("ix_consent_versions_shop", ["shop_id", "changed_at"], unique=False)

    op.create_table(
        "consent_receipt_keys",
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("jwk", sa.JSON(), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("retired_at", when, nullable=True),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_consent_receipt_keys")),
    )
    op.create_table(
        "consumer_webhooks",
        sa.Column("consumer_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("secret_salt", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.ForeignKeyConstraint(
            ["consumer_id"],
            ["principals.id"],
            name=op.f("fk_consumer_webhooks_consumer_id_principals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("consumer_id", name=op.f("pk_consumer_webhooks")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("consumer_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", when, nullable=False),
        sa.Column("last_attempt_at", when, nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.Column("created_at", when, nullable=False),
        sa.Column("delivered_at", when, nullable=True),
        sa.ForeignKeyConstraint(
            ["consumer_id"],
            ["principals.id"],
            name=op.f("fk_webhook_deliveries_consumer_id_principals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_deliveries_due", ["state", "next_attempt_at"], unique=False
        )
        batch_op.create_index(
            "ix_webhook_deliveries_consumer", ["consumer_id", "created_at"], unique=False
        )

    # Each consent granted before this release gets its one version.
    consents = sa.table(
        "consents",
        sa.column("id", sa.Uuid()),
        sa.column("shop_id", sa.Uuid()),
        sa.column("consumer_id", sa.Uuid()),
        sa.column("purpose", sa.String()),
        sa.column("categories", sa.JSON()),
        sa.column("status", sa.String()),
        sa.column("granted_by", sa.Uuid()),
        sa.column("granted_at", when),
        sa.column("expires_at", when),
        sa.column("revoked_by", sa.Uuid()),
        sa.column("revoked_at", when),
    )
    bind = op.get_bind()
    rows = [
        {
            "consent_id": row.id,
            "version": 1,
            "shop_id": row.shop_id,
            "status": row.status,
            "change": "revoked" if row.status == "revoked" else "granted",
            "changed_by": row.revoked_by or row.granted_by,
            "changed_by_role": "shopkeeper",
            "changed_at": row.revoked_at or row.granted_at,
            "artefact": {
                "consent_id": str(row.id),
                "version": 1,
                "previous_version": None,
                "shop_id": str(row.shop_id),
                "consumer_id": str(row.consumer_id),
                "purpose": row.purpose,
                "categories": list(row.categories),
                "access_mode": "rows",
                "data_range": {"from": None, "until": None},
                "max_reads_per_day": None,
                "valid_from": _iso(row.granted_at),
                "valid_until": _iso(row.expires_at),
                "data_life": "P30D",
                "status": row.status,
                "granted_before_artefacts": True,
            },
            "receipt": None,
        }
        for row in bind.execute(sa.select(consents))
    ]
    if rows:
        op.bulk_insert(versions, rows)


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("consumer_webhooks")
    op.drop_table("consent_receipt_keys")
    op.drop_table("consent_versions")
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_index("ix_consents_consumer")
        for column in (
            "version",
            "access_mode",
            "range_from",
            "range_until",
            "range_last_days",
            "max_reads_per_day",
            "data_life_seconds",
            "valid_from",
            "created_at",
            "requested_by",
            "updated_at",
            "paused_by_shop",
            "uses",
            "last_used_at",
            "use_day",
            "day_uses",
        ):
            batch_op.drop_column(column)
