"""The lender's credit lines: opened when a shopkeeper accepts an offer.

A credit line is a contract between the lender and the shop, kept after the
consent ends as any lender keeps its loans. It holds the amount and the
rate, nothing read from the hub; the assessment behind it is derived data
(:mod:`cornerstore_consumers.derived`) and goes with the records.
"""

from __future__ import annotations

import time
from typing import Any

from cornerstore_consumers.database import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS credit_lines (
    proposal_id TEXT PRIMARY KEY,
    shop_id TEXT NOT NULL,
    line_cents INTEGER NOT NULL,
    annual_rate REAL NOT NULL,
    opened_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS credit_lines_shop ON credit_lines (shop_id);
"""


class CreditLines:
    def __init__(self, db: Database) -> None:
        self._db = db

    def open(self, proposal_id: str, shop_id: str, line_cents: int, annual_rate: float) -> None:
        """Open the line the shopkeeper accepted (accepting twice opens it once)."""
        with self._db.write() as db:
            db.execute(
                "INSERT OR IGNORE INTO credit_lines VALUES (?, ?, ?, ?, ?)",
                (proposal_id, shop_id, line_cents, annual_rate, time.time()),
            )

    def of_shop(self, shop_id: str) -> list[dict[str, Any]]:
        rows = self._db.rows(
            "SELECT * FROM credit_lines WHERE shop_id = ? ORDER BY opened_at", (shop_id,)
        )
        return [dict(row) for row in rows]
