"""Alembic environment: runs against the engine the caller handed over."""

from __future__ import annotations

from alembic import context

from cornerstore.models import metadata

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch migrations rebuild a table by copying it and dropping the old
        # one; with foreign keys on, that drop would cascade and delete every
        # row pointing at it (a principal's shops, consents, keys). They are
        # checked instead once the migrations are done. The pragma only takes
        # effect outside a transaction, so it is set before one begins.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    if sqlite:
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()
        if broken:
            raise RuntimeError(f"the migrated database has broken foreign keys: {broken[:5]}")
