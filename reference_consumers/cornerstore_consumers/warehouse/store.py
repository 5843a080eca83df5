"""The warehouse's own database (SQLite): its catalogue, its stock and its orders.

An order is placed once per idempotency key: the same key with the same
lines answers the order already placed, the same key with other lines is a
conflict. Stock is taken when an order is accepted, so two orders can never
sell the same case twice.

A reference, not a product: keys are unique across the warehouse (a client
draws them at random), and nothing authenticates callers, delivery included;
a real warehouse would put its own authentication in front.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cornerstore_consumers.database import Database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    sku TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    case_pack INTEGER NOT NULL CHECK (case_pack > 0),
    lead_time_days INTEGER NOT NULL CHECK (lead_time_days >= 0),
    stock INTEGER NOT NULL CHECK (stock >= 0)
);
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    request_hash TEXT NOT NULL,
    shop_ref TEXT NOT NULL,
    lines TEXT NOT NULL,
    status TEXT NOT NULL,
    placed_at TEXT NOT NULL,
    arrives_by TEXT NOT NULL,
    delivered_at TEXT
);
"""


class OrderConflict(Exception):
    """The idempotency key was used before, for other lines."""


class OrderRefused(Exception):
    """Not a SKU the warehouse sells, not in whole cases, or not enough stock."""


@dataclass(frozen=True)
class Item:
    sku: str
    name: str
    case_pack: int
    lead_time_days: int
    stock: int


class Warehouse:
    def __init__(self, path: str | Path) -> None:
        self._db = Database(path, _SCHEMA)

    def close(self) -> None:
        self._db.close()

    def stock(self, items: list[Item]) -> None:
        """Put items in the catalogue (or refill them)."""
        with self._db.write() as db:
            db.executemany(
                "INSERT OR REPLACE INTO items VALUES (?, ?, ?, ?, ?)",
                [(i.sku, i.name, i.case_pack, i.lead_time_days, i.stock) for i in items],
            )

    def items(self) -> list[Item]:
        rows = self._db.rows("SELECT * FROM items ORDER BY sku")
        return [Item(**dict(row)) for row in rows]

    def place(
        self, key: str, shop_ref: str, lines: list[dict[str, Any]]
    ) -> tuple[dict[str, Any], bool]:
        """The order for ``key``, and whether it was placed now (False: placed before)."""
        # The same order in another line order is the same order.
        ordered = sorted(lines, key=lambda line: str(line["sku"]))
        canonical = json.dumps({"shop_ref": shop_ref, "lines": ordered}, sort_keys=True)
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        with self._db.write() as db:
            before = db.execute("SELECT * FROM orders WHERE idempotency_key = ?", (key,)).fetchone()
            if before is not None:
                if before["request_hash"] != digest:
                    raise OrderConflict("this idempotency key was used for another order")
                return _order(before), False
            lead = 0
            for line in lines:
                item = db.execute("SELECT * FROM items WHERE sku = ?", (line["sku"],)).fetchone()
                if item is None:
                    raise OrderRefused(f"{line['sku']}: not sold here")
                if line["quantity"] % item["case_pack"]:
                    raise OrderRefused(f"{line['sku']}: sold in cases of {item['case_pack']}")
                if line["quantity"] > item["stock"]:
                    raise OrderRefused(f"{line['sku']}: only {item['stock']} in stock")
                db.execute(
                    "UPDATE items SET stock = stock - ? WHERE sku = ?",
                    (line["quantity"], line["sku"]),
                )
                lead = max(lead, int(item["lead_time_days"]))
            now = datetime.now(UTC)
            db.execute(
                "INSERT INTO orders VALUES (?, ?, ?, ?, ?, 'accepted', ?, ?, NULL)",
                (
                    str(uuid.uuid4()),
                    key,
                    digest,
                    shop_ref,
                    json.dumps(lines),
                    now.isoformat(),
                    (now + timedelta(days=lead)).isoformat(),
                ),
            )
            placed = db.execute("SELECT * FROM orders WHERE idempotency_key = ?", (key,)).fetchone()
            return _order(placed), True

    def order(self, order_id: str) -> dict[str, Any] | None:
        row = self._db.row("SELECT * FROM orders WHERE id = ?", (order_id,))
        return None if row is None else _order(row)

    def deliver(self, order_id: str) -> dict[str, Any] | None:
        """Mark an accepted order delivered (the van arrived); delivered stays delivered."""
        with self._db.write() as db:
            db.execute(
                "UPDATE orders SET status = 'delivered', delivered_at = ? "
                "WHERE id = ? AND status = 'accepted'",
                (datetime.now(UTC).isoformat(), order_id),
            )
        return self.order(order_id)


def _order(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "shop_ref": row["shop_ref"],
        "lines": json.loads(row["lines"]),
        "status": row["status"],
        "placed_at": row["placed_at"],
        "arrives_by": row["arrives_by"],
        "delivered_at": row["delivered_at"],
    }
