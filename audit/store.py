"""Bulk writes of entries and tree nodes: binary COPY on PostgreSQL, multi-row INSERT elsewhere.

These run while the head row is locked, so every appender in every process
waits for them: an executemany INSERT costs about 25 µs an entry and 15 µs a
node here, binary COPY a fraction of that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.types.json import Json
from sqlalchemy import insert
from sqlalchemy.orm import Session

from cornerstore.models.audit import AuditEntry, AuditNode

_ENTRY_COLUMNS = (
    ("seq", "int8"),
    ("recorded_at", "timestamptz"),
    ("action", "text"),
    ("decision", "text"),
    ("reason", "text"),
    ("principal_id", "uuid"),
    ("principal_role", "text"),
    ("shop_id", "uuid"),
    ("category", "text"),
    ("purpose", "text"),
    ("policy_version", "text"),
    ("details", "json"),
    ("prev_hash", "bytea"),
    ("entry_hash", "bytea"),
)
_NODE_COLUMNS = (("level", "int2"), ("idx", "int8"), ("hash", "bytea"))

# The COPY column lists must name exactly the tables' columns, or a new
# column would reach only small batches (plain INSERT) and verification fail.
for _columns, _table in ((_ENTRY_COLUMNS, AuditEntry), (_NODE_COLUMNS, AuditNode)):
    if {name for name, _ in _columns} != set(_table.__table__.columns.keys()):
        raise RuntimeError(f"audit.store's COPY columns for {_table.__tablename__} are stale")


#: Below this many rows a COPY's set-up costs more than the INSERT it replaces.
COPY_FROM = 16


def _driver(session: Session, rows: int) -> psycopg.Connection[Any] | None:
    if rows < COPY_FROM or session.get_bind().dialect.name != "postgresql":
        return None
    driver = session.connection().connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    return driver


def _copy(
    driver: psycopg.Connection[Any],
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Any]],
) -> None:
    names = ", ".join(name for name, _ in columns)
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types([kind for _, kind in columns])
        for row in rows:
            copy.write_row(row)


def insert_entries(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    driver = _driver(session, len(rows))
    if driver is None:
        session.execute(insert(AuditEntry), list(rows))
        return
    _copy(
        driver,
        "audit_entries",
        _ENTRY_COLUMNS,
        [
            tuple(Json(row[name]) if name == "details" else row[name] for name, _ in _ENTRY_COLUMNS)
            for row in rows
        ],
    )


def insert_nodes(session: Session, nodes: Sequence[tuple[int, int, bytes]]) -> None:
    if not nodes:
        return
    driver = _driver(session, len(nodes))
    if driver is None:
        session.execute(
            insert(AuditNode), [{"level": lv, "idx": ix, "hash": h} for lv, ix, h in nodes]
        )
        return
    _copy(driver, "audit_nodes", _NODE_COLUMNS, nodes)
