"""Encryption at rest: a master key in a file wraps per-shop data keys (AES-256-GCM).

Every shop-data value is sealed with its shop's data key. The associated data
binds each ciphertext to its shop, record kind and record key, so a
ciphertext copied into another row or another shop fails to open.

This module holds primitives only; :mod:`cornerstore.shops.keys` stores and
caches the wrapped data keys.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import struct
import uuid
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
NONCE_BYTES = 12
_SEAL_FORMAT = 1
_HEADER = struct.Struct(">BI")  # format byte, data-key version
_WRAP_CONTEXT = b"cornerstore/shop-data-key/v1"


class KeyMaterialError(Exception):
    """The key material is missing, unreadable or wrong. The hub refuses to go on."""


class DecryptionFailed(Exception):
    """A ciphertext did not open: wrong key, wrong row, or tampered bytes."""


class MasterKey:
    """The key-encryption key. It never touches shop-data rows directly."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise KeyMaterialError("a master key is 32 bytes")
        self._aead = AESGCM(key)
        # Identifies which master key wrapped a data key without revealing it.
        self.fingerprint = hashlib.sha256(b"cornerstore/master-key-id|" + key).hexdigest()[:16]

    def wrap(self, shop_id: uuid.UUID, version: int, data_key: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data_key, _wrap_aad(shop_id, version))

    def unwrap(self, shop_id: uuid.UUID, version: int, wrapped: bytes) -> bytes:
        try:
            return self._aead.decrypt(
                wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _wrap_aad(shop_id, version)
            )
        except InvalidTag as exc:
            raise KeyMaterialError(
                f"the master key cannot unwrap the data key of shop {shop_id}: "
                "it is not the key these data were written with"
            ) from exc


def _wrap_aad(shop_id: uuid.UUID, version: int) -> bytes:
    return b"|".join((_WRAP_CONTEXT, shop_id.bytes, str(version).encode()))


def load_master_key(path: Path, *, create: bool) -> MasterKey:
    """Read the master key file, or make one when ``create`` is true and none exists.

    A key file that other users can read is refused: it would let them read
    every shop's data.
    """
    if not path.exists():
        if not create:
            raise KeyMaterialError(
                f"master key file {path} is missing but encrypted data exists; "
                "restore the key file from your backup (a new key would make every "
                "record unreadable)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(AESGCM.generate_key(bit_length=256))
            handle.flush()
            os.fsync(handle.fileno())
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyMaterialError(
            f"master key file {path} is accessible to other users "
            f"(mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}"
        )
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise KeyMaterialError(f"master key file {path} does not hold a 32-byte key")
    return MasterKey(key)


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


class ShopCipher:
    """Seals and opens one shop's values with one version of its data key."""

    __slots__ = ("_aead", "_mac_key", "_shop_bytes", "shop_id", "version")

    def __init__(self, shop_id: uuid.UUID, version: int, data_key: bytes) -> None:
        self.shop_id = shop_id
        self._shop_bytes = shop_id.bytes
        self.version = version
        self._aead = AESGCM(data_key)
        self._mac_key = HKDF(
            algorithm=hashes.SHA256(),
            length=KEY_BYTES,
            salt=None,
            info=b"cornerstore/record-key/v1|" + shop_id.bytes,
        ).derive(data_key)

    def record_key(self, kind: str, natural_id: str) -> bytes:
        """A keyed digest of a record's natural id, used to find duplicates.

        The natural id (a POS event id, or a SKU with its count time) is shop
        data itself, so only this digest is stored in the clear.
        """
        return hmac.digest(self._mac_key, f"{kind}|{natural_id}".encode(), "sha256")

    def pseudonym(self, scope: str, value: str) -> str:
        """A stable pseudonym of ``value`` that differs for every ``scope``.

        Scoping by consumer means two consumers cannot join their data on it.
        """
        digest = hmac.new(self._mac_key, f"pseudonym|{scope}|{value}".encode(), "sha256")
        return digest.hexdigest()[:20]

    def _aad(self, header: bytes, kind: str, record_key: bytes) -> bytes:
        # What a ciphertext is bound to: its shop, its kind and its record key.
        return b"|".join((header, self._shop_bytes, kind.encode(), record_key))

    def seal(self, kind: str, record_key: bytes, plaintext: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        header = _HEADER.pack(_SEAL_FORMAT, self.version)
        return (
            header
            + nonce
            + self._aead.encrypt(nonce, plaintext, self._aad(header, kind, record_key))
        )

    def open(self, kind: str, record_key: bytes, sealed: bytes) -> bytes:
        header = sealed[: _HEADER.size]
        nonce = sealed[_HEADER.size : _HEADER.size + NONCE_BYTES]
        try:
            return self._aead.decrypt(
                nonce, sealed[_HEADER.size + NONCE_BYTES :], self._aad(header, kind, record_key)
            )
        except InvalidTag as exc:
            raise DecryptionFailed(
                f"a {kind} record of shop {self.shop_id} did not decrypt"
            ) from exc


def sealed_key_version(sealed: bytes) -> int:
    fmt, version = _HEADER.unpack_from(sealed)
    if fmt != _SEAL_FORMAT:
        raise DecryptionFailed(f"unknown ciphertext format {fmt}")
    return int(version)
