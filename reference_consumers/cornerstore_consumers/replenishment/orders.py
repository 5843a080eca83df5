"""The replenishment consumer's orders: what each shop bought from the warehouse, and its status.

An order is the shop's purchase, placed because its shopkeeper accepted it:
a record of trade between the two, kept like any supplier's invoice after
the consent ends. It holds SKUs and quantities, no record read from the hub;
the recommendation it came from is derived data (:mod:`cornerstore_consumers.derived`)
and goes with the records.
"""

from __future__ import annotations

import json
from typing import Any

from cornerstore_consumers.database import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY,
    proposal_id TEXT NOT NULL UNIQUE,
    shop_id TEXT NOT NULL,
    lines TEXT NOT NULL,
    status TEXT NOT NULL,
    placed_at TEXT NOT NULL,
    arrives_by TEXT NOT NULL,
    delivered_at TEXT
);
CREATE INDEX IF NOT EXISTS orders_shop ON orders (shop_id);
"""


class Orders:
    def __init__(self, db: Database) -> None:
        self._db = db

    def ordered(self, proposal_id: str, placed: dict[str, Any]) -> None:
        """Keep the warehouse's answer to an order (the same order again changes nothing)."""
        with self._db.write() as db:
            db.execute(
                "INSERT OR IGNORE INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    placed["id"],
                    proposal_id,
                    placed["shop_ref"],
                    json.dumps(placed["lines"]),
                    placed["status"],
                    placed["placed_at"],
                    placed["arrives_by"],
                    placed["delivered_at"],
                ),
            )

    def status(self, order_id: str, status: str, delivered_at: str | None) -> None:
        with self._db.write() as db:
            db.execute(
                "UPDATE orders SET status = ?, delivered_at = ? WHERE order_id = ?",
                (status, delivered_at, order_id),
            )

    def of_shop(self, shop_id: str) -> list[dict[str, Any]]:
        rows = self._db.rows(
            "SELECT * FROM orders WHERE shop_id = ? ORDER BY placed_at", (shop_id,)
        )
        return [{**dict(row), "lines": json.loads(row["lines"])} for row in rows]

    def on_order(self, shop_id: str) -> dict[str, int]:
        """What is ordered for the shop and not delivered yet, per SKU."""
        waiting: dict[str, int] = {}
        for order in self.of_shop(shop_id):
            if order["status"] != "delivered":
                for line in order["lines"]:
                    waiting[line["sku"]] = waiting.get(line["sku"], 0) + int(line["quantity"])
        return waiting
