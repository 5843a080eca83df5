"""One SQLite file of a consumer's (or the warehouse's) own, shared by its threads.

Each process keeps its own state beside the records it read (which live in
the SDK's ``LocalStore``): a web server thread answers HTTP while a worker
thread acts on webhooks, so every use goes through one lock, and every
write is one ``BEGIN IMMEDIATE`` transaction.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class Database:
    def __init__(self, path: str | Path, schema: str) -> None:
        # What a consumer derives from a shop's records is the shop's too: this
        # user's alone from the first byte, and overwritten when deleted.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA secure_delete = ON")
        self._db.executescript(schema)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """The connection inside one write transaction: committed on success, else rolled back."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            yield self._db

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def row(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        found = self.rows(sql, params)
        return found[0] if found else None
