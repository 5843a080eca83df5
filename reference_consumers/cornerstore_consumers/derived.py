"""What a consumer derived from a shop's records: it lives no longer than they may.

A recommendation or a credit assessment is made of the shop's numbers, so it
is kept until the data life of the records it came from ends
(``keep_until``), and dropped with them the moment their consent ends. The
consumer's runtime calls :meth:`Derived.drop` on the same events as the
SDK's store purges (``cornerstore_client.ended_by``), and
:meth:`Derived.purge_expired` on the same timer.
"""

from __future__ import annotations

import json
import time
from typing import Any

from cornerstore_client import Consent, ConsentEnded
from cornerstore_client.store import data_life
from cornerstore_consumers.database import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS derived (
    id TEXT PRIMARY KEY,
    shop_id TEXT NOT NULL,
    consent_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    made_at REAL NOT NULL,
    keep_until REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS derived_shop ON derived (shop_id, made_at);
CREATE INDEX IF NOT EXISTS derived_consent ON derived (consent_id);
CREATE TABLE IF NOT EXISTS derived_ended (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
"""


class Derived:
    def __init__(self, db: Database) -> None:
        self._db = db

    def keep(
        self, id_: str, consent: Consent, kind: str, body: dict[str, Any], status: str
    ) -> None:
        """Keep what was derived under ``consent``, for as long as its records may be kept."""
        now = time.time()
        with self._db.write() as db:
            ended = db.execute(
                "SELECT 1 FROM derived_ended WHERE (kind = 'consent' AND id = ?) "
                "OR (kind = 'shop' AND id = ?)",
                (str(consent.id), str(consent.shop_id)),
            ).fetchone()
            if ended is not None:
                raise ConsentEnded(f"consent {consent.id} has ended; nothing of it is kept")
            db.execute(
                # The same id again is the same work done twice (a retried event): kept once.
                "INSERT OR IGNORE INTO derived VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    id_,
                    str(consent.shop_id),
                    str(consent.id),
                    kind,
                    json.dumps(body, ensure_ascii=False),
                    status,
                    now,
                    now + data_life(consent.data_life).total_seconds(),
                ),
            )

    def set_status(self, id_: str, status: str) -> None:
        with self._db.write() as db:
            db.execute("UPDATE derived SET status = ? WHERE id = ?", (status, id_))

    def drop(self, kind: str, ended_id: str) -> int:
        """Forget everything of an ended consent (``kind`` "consent") or erased shop ("shop")."""
        column = {"consent": "consent_id", "shop": "shop_id"}[kind]
        with self._db.write() as db:
            db.execute("INSERT OR IGNORE INTO derived_ended VALUES (?, ?)", (kind, ended_id))
            # ``column`` is one of the two names above, never a caller's text.
            sql = f"DELETE FROM derived WHERE {column} = ?"  # noqa: S608
            return int(db.execute(sql, (ended_id,)).rowcount)

    def purge_expired(self, *, now: float | None = None) -> int:
        at = time.time() if now is None else now
        with self._db.write() as db:
            return int(db.execute("DELETE FROM derived WHERE keep_until <= ?", (at,)).rowcount)

    def of_shop(self, shop_id: str) -> list[dict[str, Any]]:
        """Everything kept of a shop, oldest first."""
        rows = self._db.rows(
            "SELECT id, kind, body, status, made_at FROM derived WHERE shop_id = ? "
            "ORDER BY made_at, id",
            (shop_id,),
        )
        return [{**dict(row), "body": json.loads(row["body"])} for row in rows]
