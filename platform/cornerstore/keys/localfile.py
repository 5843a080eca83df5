"""The default key provider: a master key file and a key store file beside it.

* The **master key file** holds one or more 32-byte AES keys, back to back (one
  normally; two while ``cornerstore keys rotate-master`` runs). It is made
  with mode 0600 at first start and refused if other users can read it.
* The **key store** is a small SQLite file holding each shop's key-encryption
  key. It is opened with ``secure_delete`` so that destroying a shop's key
  overwrites its bytes in the file rather than only unlinking the row.

Both files are written atomically (a private temporary file, fsync, rename)
or through SQLite's own journal, so a crash never leaves half a key.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cornerstore.crypto import (
    KEY_BYTES,
    DecryptionFailed,
    KeyMaterialError,
    key_id,
    new_data_key,
    open_with,
    seal_with,
)
from cornerstore.keys.files import create_private, refuse_if_shared, write_private
from cornerstore.keys.provider import ShopKeyDestroyed, UnknownMasterKey


class LocalKeyProvider:
    kind = "file"

    def __init__(self, master_path: Path, store_path: Path, *, may_create_master: bool) -> None:
        self._master_path = master_path
        self._store_path = store_path
        self._lock = threading.Lock()
        if not master_path.exists():
            if not may_create_master:
                raise KeyMaterialError(
                    f"master key file {master_path} is missing but encrypted data exists; "
                    "restore the key file from your backup (a new key would make every "
                    "record unreadable)"
                )
            create_private(master_path, new_data_key())
        self._masters = self._read_masters()
        self._store = self._open_store(store_path)

    # --- master keys -----------------------------------------------------------------------

    def describe(self) -> str:
        return f"master key file {self._master_path}, key store {self._store_path}"

    def _read_masters(self) -> dict[str, AESGCM]:
        refuse_if_shared(self._master_path)
        raw = self._master_path.read_bytes()
        if not raw or len(raw) % KEY_BYTES:
            raise KeyMaterialError(
                f"master key file {self._master_path} does not hold 32-byte keys"
            )
        keys = [raw[i : i + KEY_BYTES] for i in range(0, len(raw), KEY_BYTES)]
        return {key_id(key): AESGCM(key) for key in keys}

    def _raw_masters(self) -> list[bytes]:
        raw = self._master_path.read_bytes()
        return [raw[i : i + KEY_BYTES] for i in range(0, len(raw), KEY_BYTES)]

    def master_ids(self) -> frozenset[str]:
        with self._lock:
            self._masters = self._read_masters()
            return frozenset(self._masters)

    def create_master(self) -> str:
        key = new_data_key()
        with self._lock:
            write_private(self._master_path, b"".join([*self._raw_masters(), key]))
            self._masters = self._read_masters()
        return key_id(key)

    def destroy_master(self, master_id: str) -> None:
        with self._lock:
            kept = [key for key in self._raw_masters() if key_id(key) != master_id]
            if not kept:
                raise KeyMaterialError("refusing to destroy the last master key")
            write_private(self._master_path, b"".join(kept))
            self._masters = self._read_masters()

    def _master(self, master_id: str) -> AESGCM:
        with self._lock:
            aead = self._masters.get(master_id)
            if aead is None:
                # Another process may have rotated the master key since we read the file.
                self._masters = self._read_masters()
                aead = self._masters.get(master_id)
        if aead is None:
            raise UnknownMasterKey(
                f"master key {master_id} is not in {self._master_path}; "
                "restore the key file that goes with this database"
            )
        return aead

    def master_encrypt(self, master_id: str, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._master(master_id).encrypt(nonce, plaintext, aad)

    def master_decrypt(self, master_id: str, sealed: bytes, aad: bytes) -> bytes:
        try:
            return self._master(master_id).decrypt(sealed[:12], sealed[12:], aad)
        except (InvalidTag, ValueError) as exc:
            raise KeyMaterialError(
                f"master key {master_id} did not unwrap a data key: the key file does not "
                "match the database, or the wrapped key was altered"
            ) from exc

    # --- shop key-encryption keys ----------------------------------------------------------

    @staticmethod
    def _open_store(path: Path) -> sqlite3.Connection:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                pass
        refuse_if_shared(path)
        connection = sqlite3.connect(
            path, timeout=30, isolation_level=None, check_same_thread=False
        )
        # Deleted keys are overwritten with zeros in the file, not merely unlinked.
        connection.execute("PRAGMA secure_delete=ON")
        connection.execute("PRAGMA journal_mode=DELETE")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute(
            "CREATE TABLE IF NOT EXISTS shop_keys (shop_id BLOB PRIMARY KEY, key BLOB NOT NULL)"
        )
        return connection

    def create_shop_key(self, shop_id: uuid.UUID) -> None:
        with self._lock:
            self._store.execute(
                "INSERT OR IGNORE INTO shop_keys (shop_id, key) VALUES (?, ?)",
                (shop_id.bytes, new_data_key()),
            )

    def create_shop_keys(self, shop_ids: list[uuid.UUID]) -> None:
        """Many at once, in one transaction (bulk loads and benchmarks)."""
        with self._lock:
            self._store.execute("BEGIN")
            self._store.executemany(
                "INSERT OR IGNORE INTO shop_keys (shop_id, key) VALUES (?, ?)",
                [(shop_id.bytes, new_data_key()) for shop_id in shop_ids],
            )
            self._store.execute("COMMIT")

    def _shop_key(self, shop_id: uuid.UUID) -> bytes:
        with self._lock:
            row = self._store.execute(
                "SELECT key FROM shop_keys WHERE shop_id = ?", (shop_id.bytes,)
            ).fetchone()
        if row is None:
            raise ShopKeyDestroyed(f"shop {shop_id} has no key-encryption key")
        return bytes(row[0])

    def has_shop_key(self, shop_id: uuid.UUID) -> bool:
        try:
            self._shop_key(shop_id)
        except ShopKeyDestroyed:
            return False
        return True

    def shop_encrypt(self, shop_id: uuid.UUID, plaintext: bytes, aad: bytes) -> bytes:
        return seal_with(self._shop_key(shop_id), plaintext, aad)

    def shop_decrypt(self, shop_id: uuid.UUID, sealed: bytes, aad: bytes) -> bytes:
        try:
            return open_with(self._shop_key(shop_id), sealed, aad)
        except DecryptionFailed as exc:
            raise KeyMaterialError(
                f"the key-encryption key of shop {shop_id} did not unwrap its data key"
            ) from exc

    def destroy_shop_key(self, shop_id: uuid.UUID) -> None:
        with self._lock:
            self._store.execute("DELETE FROM shop_keys WHERE shop_id = ?", (shop_id.bytes,))

    def close(self) -> None:
        with self._lock:
            self._store.close()
