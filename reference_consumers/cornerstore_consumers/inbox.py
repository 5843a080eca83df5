"""Verified webhook events, kept until they are handled: the hub delivers at least once,
a consumer acts once.

An event is stored the moment its signature checks out and the delivery is
answered, so a crash between the answer and the work loses nothing: the
worker picks the event up again when the process restarts. Its id is the
key, so a delivery sent twice is stored once. A failed attempt is tried
again later, waiting twice as long each time up to an hour, for about a
day; then it is left with its reason, counted in ``/inbox`` for an
operator to see.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from cornerstore_consumers.database import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    event_id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at REAL NOT NULL,
    due_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    done_at REAL,
    outcome TEXT
);
CREATE INDEX IF NOT EXISTS inbox_due ON inbox (due_at) WHERE done_at IS NULL;
"""

#: Tries before an event is left with its last failure as its outcome: the
#: waits (2 s, 4 s, ... an hour, an hour, ...) add up to about a day.
MAX_ATTEMPTS = 32
#: The longest wait between two tries.
MAX_WAIT_SECONDS = 3600.0


def _wait(attempts: int, at_least: float | None) -> float:
    return max(min(2.0**attempts, MAX_WAIT_SECONDS), at_least or 0.0)


class Inbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, event: Mapping[str, Any], *, now: float | None = None) -> bool:
        """Keep ``event`` to be handled; False when it was delivered before."""
        at = time.time() if now is None else now
        with self._db.write() as db:
            added = db.execute(
                "INSERT OR IGNORE INTO inbox (event_id, type, body, received_at, due_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (str(event["event_id"]), str(event["type"]), json.dumps(event), at, at),
            ).rowcount
        return bool(added)

    def next(self, *, now: float | None = None) -> dict[str, Any] | None:
        """The oldest event due to be handled, or None."""
        row = self._db.row(
            "SELECT body FROM inbox WHERE done_at IS NULL AND due_at <= ? "
            "ORDER BY received_at, event_id LIMIT 1",
            (time.time() if now is None else now,),
        )
        return None if row is None else dict(json.loads(row["body"]))

    def done(self, event_id: str, outcome: str) -> None:
        with self._db.write() as db:
            db.execute(
                "UPDATE inbox SET done_at = ?, outcome = ?, attempts = attempts + 1 "
                "WHERE event_id = ?",
                (time.time(), outcome, event_id),
            )

    def failed(
        self,
        event_id: str,
        reason: str,
        *,
        now: float | None = None,
        at_least: float | None = None,
    ) -> None:
        """Try again later (``at_least`` seconds on, if a service asked so), or give up at last."""
        at = time.time() if now is None else now
        with self._db.write() as db:
            row = db.execute(
                "SELECT attempts FROM inbox WHERE event_id = ?", (event_id,)
            ).fetchone()
            attempts = int(row["attempts"]) + 1
            if attempts >= MAX_ATTEMPTS:
                db.execute(
                    "UPDATE inbox SET attempts = ?, done_at = ?, outcome = ? WHERE event_id = ?",
                    (attempts, at, f"gave up: {reason}", event_id),
                )
            else:
                db.execute(
                    "UPDATE inbox SET attempts = ?, due_at = ?, outcome = ? WHERE event_id = ?",
                    (attempts, at + _wait(attempts, at_least), f"will retry: {reason}", event_id),
                )

    def pending(self) -> int:
        row = self._db.row("SELECT count(*) AS n FROM inbox WHERE done_at IS NULL")
        return 0 if row is None else int(row["n"])

    def given_up(self) -> int:
        """Events left unhandled after every try: an operator's to look at."""
        row = self._db.row("SELECT count(*) AS n FROM inbox WHERE outcome LIKE 'gave up:%'")
        return 0 if row is None else int(row["n"])

    def forget_handled(self, *, before: float) -> int:
        """Forget events handled before ``before``: their ids have outlived any redelivery."""
        with self._db.write() as db:
            return int(
                db.execute(
                    "DELETE FROM inbox WHERE done_at IS NOT NULL AND done_at < ? "
                    "AND outcome NOT LIKE 'gave up:%'",
                    (before,),
                ).rowcount
            )

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest events, handled or not, with what came of them."""
        rows = self._db.rows(
            "SELECT event_id, type, received_at, done_at, attempts, outcome FROM inbox "
            "ORDER BY received_at DESC, event_id LIMIT ?",
            (limit,),
        )
        return [dict(row) for row in rows]
