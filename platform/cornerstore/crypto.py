"""Encryption primitives: AES-256-GCM with associated data, and the per-shop cipher.

Every shop-data value is sealed with its shop's data key. The associated data
binds each ciphertext to its shop, record kind, field and record id, so a
ciphertext copied into another row, another field or another shop fails to
open. Every ciphertext starts with the version of the data key that sealed it.

This module holds primitives only. :mod:`cornerstore.keys` wraps, stores and
caches the data keys.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
NONCE_BYTES = 12
#: Format 2 binds the field name too; format 1 (the foundation's) bound shop, kind and record.
_SEAL_FORMAT = 2
_SEAL_FORMATS = frozenset({1, 2})
_HEADER = struct.Struct(">BI")  # format byte, data-key version


class KeyMaterialError(Exception):
    """The key material is missing, unreadable or wrong. The hub refuses to go on."""


class DecryptionFailed(Exception):
    """A ciphertext did not open: wrong key, wrong row, or tampered bytes."""


def seal_with(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM under ``key``: a fresh 96-bit nonce, then ciphertext and tag."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_with(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except (InvalidTag, ValueError) as exc:  # ValueError: too short to hold a nonce and tag
        raise DecryptionFailed("the ciphertext did not open under this key") from exc


def key_id(key: bytes) -> str:
    """Names a key without revealing it: the first 64 bits of a domain-separated hash."""
    return hashlib.sha256(b"cornerstore/master-key-id|" + key).hexdigest()[:16]


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

    def _aad(self, header: bytes, kind: str, field: str, record_key: bytes) -> bytes:
        # What a ciphertext is bound to: its shop, kind, field and record.
        if header[0] == 1:
            return b"|".join((header, self._shop_bytes, kind.encode(), record_key))
        return b"|".join((header, self._shop_bytes, kind.encode(), field.encode(), record_key))

    def seal(self, kind: str, field: str, record_key: bytes, plaintext: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        header = _HEADER.pack(_SEAL_FORMAT, self.version)
        aad = self._aad(header, kind, field, record_key)
        return header + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, kind: str, field: str, record_key: bytes, sealed: bytes) -> bytes:
        # The associated data is built inline: this runs once per record read.
        header = sealed[: _HEADER.size]
        if header[:1] == b"\x01":
            aad = b"|".join((header, self._shop_bytes, kind.encode(), record_key))
        else:
            aad = b"|".join((header, self._shop_bytes, kind.encode(), field.encode(), record_key))
        try:
            return self._aead.decrypt(
                sealed[_HEADER.size : _HEADER.size + NONCE_BYTES],
                sealed[_HEADER.size + NONCE_BYTES :],
                aad,
            )
        except (InvalidTag, ValueError) as exc:
            raise DecryptionFailed(
                f"a {kind} record of shop {self.shop_id} did not decrypt"
            ) from exc


def sealed_key_version(sealed: bytes) -> int:
    """The data-key version a ciphertext was sealed with, read from its header."""
    if len(sealed) < _HEADER.size:
        raise DecryptionFailed("the ciphertext is too short to hold a header")
    fmt, version = _HEADER.unpack_from(sealed)
    if fmt not in _SEAL_FORMATS:
        raise DecryptionFailed(f"unknown ciphertext format {fmt}")
    return int(version)
