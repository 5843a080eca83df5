"""The consumer's side of the data-life contract: a local store that forgets on time.

What a consumer signs up to when it reads through the hub (docs/consumers.md):

- every record read is kept with the consent it came under and the moment its
  data life ends (read time + the consent's ``data_life``);
- :meth:`LocalStore.purge_expired` deletes what has outlived its data life;
  run it at least daily (a consumer process calls it on a timer);
- a revocation or an erasure deletes at once: :meth:`LocalStore.on_event`
  takes the hub's webhook event and purges the consent, or for an erasure
  everything of the shop.

SQLite by default (the standard library's), one file; rows are deleted, and
the file is vacuumed by :meth:`LocalStore.vacuum` so deleted values do not
linger in free pages.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from cornerstore_client.models import Category, Consent
from cornerstore_client.verify import verify_webhook

#: The fields that name a record, per category (the hub's natural ids).
NATURAL_ID = {
    "sales": ("event_id",),
    "inventory": ("sku", "counted_at"),
    "payments": ("event_id",),
    "catalogue": ("sku",),
}

_DURATION = TypeAdapter(timedelta)


def data_life(text: str) -> timedelta:
    """An ISO 8601 duration as the hub writes it (pydantic's reading: a year is 365 days)."""
    try:
        return _DURATION.validate_python(text)
    except ValidationError:
        raise ValueError(f"not an ISO 8601 duration: {text!r}") from None


def _natural_id(category: str, record: Mapping[str, Any], text: str, seen: Counter[str]) -> str:
    """What makes a record the same record when it is read again.

    The hub's natural id where the purpose lets it through; where it does not
    (a lender sees no event ids), the record's content and how many records
    alike came before it in this read, so reading the same window again
    replaces rather than doubles.
    """
    fields = NATURAL_ID[category]
    if all(record.get(f) is not None for f in fields):
        return json.dumps([record[f] for f in fields])
    digest = hashlib.sha256(text.encode()).hexdigest()
    seen[digest] += 1
    return f"{digest}#{seen[digest]}"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    consent_id TEXT NOT NULL,
    shop_id TEXT NOT NULL,
    category TEXT NOT NULL,
    natural_id TEXT NOT NULL,
    record TEXT NOT NULL,
    kept_at REAL NOT NULL,
    keep_until REAL NOT NULL,
    PRIMARY KEY (consent_id, category, natural_id)
);
CREATE INDEX IF NOT EXISTS records_keep_until ON records (keep_until);
CREATE INDEX IF NOT EXISTS records_shop ON records (shop_id);
-- Consents that ended and shops that were erased: nothing more is kept under them.
CREATE TABLE IF NOT EXISTS ended (
    kind TEXT NOT NULL CHECK (kind IN ('consent', 'shop')),
    id TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
"""
_KEEP = "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?, ?, ?)"


class ConsentEnded(Exception):
    """The consent ended (or its shop was erased) while its records were being read: none kept."""


#: What ends a consent for good, as its webhook event's status says.
_ENDING = frozenset({"revoked", "refused", "expired", "superseded"})


def ended_by(event: Mapping[str, Any]) -> tuple[str, str] | None:
    """What a webhook event ends for good: ``("shop", id)``, ``("consent", id)`` or None.

    An erasure ends the whole shop; a revocation, refusal, expiry or
    replacement by newer terms (``superseded``: what the old terms allowed
    may be more than the new ones do) ends the consent. A pause ends nothing
    (the consent may resume) though the hub refuses reads meanwhile. A
    consumer drops what it derived from a consent's records on the same
    events as the store purges them.
    """
    if event.get("type") != "consent.status_changed":
        return None
    if event.get("change") == "erased":
        return ("shop", str(event["shop_id"]))
    if event.get("status") in _ENDING:
        return ("consent", str(event["consent_id"]))
    return None


class LocalStore:
    """Records read under consents, each with when it must be gone.

    One process at a time; its threads (a webhook handler beside a reader)
    take turns on the one connection.
    """

    def __init__(self, path: str | Path = "cornerstore-records.db") -> None:
        file = Path(path)
        # Shop data: readable by this user alone, from the first byte.
        os.close(os.open(file, os.O_CREAT | os.O_WRONLY, 0o600))
        self._db = sqlite3.connect(str(file), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA secure_delete = ON")  # deleted values are overwritten
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def keep(
        self,
        consent: Consent,
        category: Category,
        records: Iterable[Mapping[str, Any]],
        *,
        now: float | None = None,
    ) -> int:
        """Keep ``records`` read under ``consent``; a record read again is kept once, anew."""
        kept_at = time.time() if now is None else now
        until = kept_at + data_life(consent.data_life).total_seconds()
        rows = []
        seen: Counter[str] = Counter()
        for record in records:
            text = json.dumps(dict(record), ensure_ascii=False, sort_keys=True)
            rows.append(
                (
                    str(consent.id),
                    str(consent.shop_id),
                    category,
                    _natural_id(category, record, text, seen),
                    text,
                    kept_at,
                    until,
                )
            )
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            # A revocation that came while the records were read wins: they are not kept.
            ended = self._db.execute(
                "SELECT 1 FROM ended WHERE (kind = 'consent' AND id = ?) "
                "OR (kind = 'shop' AND id = ?)",
                (str(consent.id), str(consent.shop_id)),
            ).fetchone()
            if ended is not None:
                raise ConsentEnded(f"consent {consent.id} has ended; nothing of it is kept")
            self._db.executemany(_KEEP, rows)
        return len(rows)

    def records(
        self, shop_id: uuid.UUID | str, category: Category | None = None
    ) -> Iterator[dict[str, Any]]:
        """What is kept of a shop (of one category), oldest first."""
        query = "SELECT record FROM records WHERE shop_id = ?"
        params: list[str] = [str(shop_id)]
        if category is not None:
            query += " AND category = ?"
            params.append(category)
        with self._lock:  # read them all at once: a generator must not hold the lock
            rows = self._db.execute(query + " ORDER BY kept_at, rowid", params).fetchall()
        for (record,) in rows:
            yield json.loads(record)

    def count(
        self, shop_id: uuid.UUID | str | None = None, category: Category | None = None
    ) -> int:
        """How many records are kept (of one shop, of one category)."""
        where, params = [], []
        if shop_id is not None:
            where.append("shop_id = ?")
            params.append(str(shop_id))
        if category is not None:
            where.append("category = ?")
            params.append(category)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._lock:
            # ``clause`` joins this method's fixed conditions, never a caller's text.
            sql = f"SELECT count(*) FROM records{clause}"  # noqa: S608
            (n,) = self._db.execute(sql, params).fetchone()
        return int(n)

    def purge_expired(self, *, now: float | None = None) -> int:
        """Delete every record past its data life; how many went."""
        moment = time.time() if now is None else now
        return self._delete("keep_until <= ?", moment)

    def purge_consent(self, consent_id: uuid.UUID | str) -> int:
        """Delete at once everything read under one consent, and keep nothing under it again."""
        return self._delete("consent_id = ?", str(consent_id), ended=("consent", str(consent_id)))

    def purge_shop(self, shop_id: uuid.UUID | str) -> int:
        """Delete at once everything of one shop (it was erased), and keep nothing of it again."""
        return self._delete("shop_id = ?", str(shop_id), ended=("shop", str(shop_id)))

    def on_event(self, event: Mapping[str, Any]) -> int:
        """Act on a verified webhook event: what it ends (:func:`ended_by`) is purged."""
        ended = ended_by(event)
        if ended is None:
            return 0
        kind, ended_id = ended
        return self.purge_shop(ended_id) if kind == "shop" else self.purge_consent(ended_id)

    def receive(
        self, headers: Mapping[str, str], body: bytes, secret: str, *, tolerance: int = 300
    ) -> dict[str, Any]:
        """A webhook delivery, verified and acted on: what a consumer's endpoint calls.

        Raises ``VerificationError`` (and purges nothing) for a delivery that is
        not the hub's; returns the event otherwise.
        """
        event = verify_webhook(headers, body, secret, tolerance=tolerance)
        self.on_event(event)
        return event

    def vacuum(self) -> None:
        """Rewrite the file so nothing deleted remains in it."""
        with self._lock:
            self._db.execute("VACUUM")

    def _delete(
        self, where: str, value: float | str, *, ended: tuple[str, str] | None = None
    ) -> int:
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            if ended is not None:
                self._db.execute("INSERT OR IGNORE INTO ended VALUES (?, ?)", ended)
            # ``where`` is one of this class's fixed clauses, never a caller's text.
            deleted = self._db.execute(f"DELETE FROM records WHERE {where}", (value,)).rowcount  # noqa: S608
        return int(deleted)
