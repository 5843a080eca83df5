"""What a key provider does, and how settings choose one."""

from __future__ import annotations

import uuid
from typing import Protocol

from cornerstore.crypto import KeyMaterialError


class UnknownMasterKey(KeyMaterialError):
    """A data key names a master key the provider does not hold."""


class ShopKeyDestroyed(KeyMaterialError):
    """The shop's key-encryption key is gone: its data were erased, or never had one."""


class KeyProvider(Protocol):
    """Holds the master keys and the shops' key-encryption keys; never hands either out.

    Every key stays inside the provider: callers ask it to encrypt or decrypt
    a data key under a named key. Decrypting raises :class:`KeyMaterialError`
    (or a subclass) when the key is missing or the ciphertext does not open.
    """

    #: ``file`` or ``pkcs11``, for messages.
    kind: str

    def describe(self) -> str:
        """Where the keys are, for messages (never the keys themselves)."""
        ...

    def master_ids(self) -> frozenset[str]:
        """Ids of the master keys available now, re-read from the provider."""
        ...

    def create_master(self) -> str:
        """Make a new master key and return its id."""
        ...

    def destroy_master(self, master_id: str) -> None: ...

    def master_encrypt(self, master_id: str, plaintext: bytes, aad: bytes) -> bytes: ...

    def master_decrypt(self, master_id: str, sealed: bytes, aad: bytes) -> bytes: ...

    def create_shop_key(self, shop_id: uuid.UUID) -> None:
        """Make the shop's key-encryption key, unless it has one."""
        ...

    def has_shop_key(self, shop_id: uuid.UUID) -> bool: ...

    def shop_encrypt(self, shop_id: uuid.UUID, plaintext: bytes, aad: bytes) -> bytes: ...

    def shop_decrypt(self, shop_id: uuid.UUID, sealed: bytes, aad: bytes) -> bytes: ...

    def destroy_shop_key(self, shop_id: uuid.UUID) -> None:
        """Destroy the shop's key-encryption key. Destroying a missing key is not an error."""
        ...

    def close(self) -> None: ...
