"""The PKCS#11 key provider: master keys and shop key-encryption keys kept inside an HSM.

Every key is an AES-256 secret-key object on the token, generated there and
marked sensitive and non-extractable, so its bytes never leave the HSM:

* a **master key** is labelled ``cornerstore-master``; its ``CKA_ID`` is 8
  random bytes, and its id (as the database records it) is their hex.
* a **shop key-encryption key** is labelled ``cornerstore-shop``; its
  ``CKA_ID`` is the shop's UUID (16 bytes). Destroying the object erases the
  shop's data for good.

Encrypting is AES-GCM inside the token with a fresh 96-bit nonce; the result
is nonce, ciphertext and tag. Object handles are cached (a search on the
token takes milliseconds) and re-checked against the token whenever they
might be stale: before every encryption, and after a decryption fails. Keys
made or destroyed by another process are therefore seen on the next use.

Sessions and the process's one login per token are opened by
:mod:`cornerstore.keys.pkcs11_login`.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pkcs11 import (
    Attribute,
    DecryptMixin,
    EncryptMixin,
    GCMParams,
    KeyType,
    Mechanism,
    MechanismFlag,
    ObjectClass,
    SecretKey,
)
from pkcs11.exceptions import (
    DeviceError,
    DeviceMemory,
    DeviceRemoved,
    HostMemory,
    KeyHandleInvalid,
    ObjectHandleInvalid,
    PKCS11Error,
    SessionClosed,
    SessionHandleInvalid,
    TokenNotPresent,
    TokenNotRecognised,
    UserNotLoggedIn,
)

from cornerstore.crypto import NONCE_BYTES, KeyMaterialError
from cornerstore.keys.pkcs11_login import open_session, release_login
from cornerstore.keys.provider import ShopKeyDestroyed, UnknownMasterKey

if TYPE_CHECKING:
    from cornerstore.settings import Settings

MASTER_LABEL = "cornerstore-master"
SHOP_LABEL = "cornerstore-shop"
MASTER_ID_BYTES = 8
_TAG_BITS = 128
_TAG_BYTES = _TAG_BITS // 8

#: Sensitive, non-extractable, private token objects that can only encrypt and decrypt.
_KEY_TEMPLATE: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
}
_KEY_CAPABILITIES = MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT
_STALE = (KeyHandleInvalid, ObjectHandleInvalid)
# The HSM cannot answer at all: not a verdict on the ciphertext.
_UNAVAILABLE = (
    DeviceError,
    DeviceMemory,
    DeviceRemoved,
    HostMemory,
    SessionClosed,
    SessionHandleInvalid,
    TokenNotPresent,
    TokenNotRecognised,
    UserNotLoggedIn,
)


def _gcm(key: SecretKey, data: bytes, parameters: GCMParams, *, encrypt: bool) -> bytes:
    """AES-GCM with ``key`` inside the token."""
    if encrypt and isinstance(key, EncryptMixin):
        result = key.encrypt(data, mechanism=Mechanism.AES_GCM, mechanism_param=parameters)
    elif not encrypt and isinstance(key, DecryptMixin):
        result = key.decrypt(data, mechanism=Mechanism.AES_GCM, mechanism_param=parameters)
    else:
        raise KeyMaterialError(
            f"a key labelled {key.label!r} on the token may not "
            f"{'encrypt' if encrypt else 'decrypt'} (its CKA_ENCRYPT or CKA_DECRYPT is false)"
        )
    if not isinstance(result, bytes):
        raise TypeError("the PKCS#11 module returned a stream for a one-shot operation")
    return result


# --- the provider ----------------------------------------------------------------------------


class Pkcs11KeyProvider:
    kind = "pkcs11"

    def __init__(
        self, library: Path, token_label: str, pin: str, *, may_create_master: bool
    ) -> None:
        self._library = library
        self._token_label = token_label
        self._lock = threading.Lock()
        # (label, CKA_ID) -> the objects found with them; normally exactly one.
        self._handles: dict[tuple[str, bytes], tuple[SecretKey, ...]] = {}
        self._login_key, self._session = open_session(library, token_label, pin)
        self._closed = False
        try:
            with self._lock:
                if not self._read_masters():
                    if not may_create_master:
                        raise KeyMaterialError(
                            f"{self.describe()} holds no master key but encrypted data exists; "
                            "restore the master key from your HSM backup (a new key would "
                            "make every record unreadable)"
                        )
                    self._generate(MASTER_LABEL, os.urandom(MASTER_ID_BYTES))
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_settings(cls, settings: Settings, *, may_create_master: bool) -> Pkcs11KeyProvider:
        library, label, pin = (
            settings.pkcs11_library,
            settings.pkcs11_token_label,
            settings.pkcs11_pin,
        )
        if library is None or label is None or pin is None:
            raise KeyMaterialError(
                "the pkcs11 key provider needs CORNERSTORE_PKCS11_LIBRARY, "
                "CORNERSTORE_PKCS11_TOKEN_LABEL and CORNERSTORE_PKCS11_PIN"
            )
        return cls(library, label, pin.get_secret_value(), may_create_master=may_create_master)

    def describe(self) -> str:
        return f"PKCS#11 token {self._token_label!r} (module {self._library})"

    # --- token objects (callers hold self._lock) -------------------------------------------

    def _failed(self, action: str, exc: PKCS11Error) -> KeyMaterialError:
        return KeyMaterialError(f"{self.describe()}: {action} failed ({type(exc).__name__})")

    def _search(self, label: str, ident: bytes | None = None) -> list[SecretKey]:
        template: dict[Attribute, Any] = {
            Attribute.CLASS: ObjectClass.SECRET_KEY,
            Attribute.KEY_TYPE: KeyType.AES,
            Attribute.LABEL: label,
        }
        if ident is not None:
            template[Attribute.ID] = ident
        try:
            return [o for o in self._session.get_objects(template) if isinstance(o, SecretKey)]
        except PKCS11Error as exc:
            raise self._failed("searching for keys", exc) from exc

    def _lookup(self, label: str, ident: bytes, *, fresh: bool = False) -> tuple[SecretKey, ...]:
        """The key objects with ``label`` and ``ident``: cached, or searched for on the token."""
        cache_key = (label, ident)
        if not fresh and (cached := self._handles.get(cache_key)):
            return cached
        found = tuple(self._search(label, ident))
        if found:
            self._handles[cache_key] = found
        else:
            self._handles.pop(cache_key, None)
        return found

    @staticmethod
    def _is(key: SecretKey, label: str, ident: bytes) -> bool:
        """Whether a cached handle still names that key (it may be destroyed, or reused)."""
        try:
            attributes = key.get_attributes([Attribute.LABEL, Attribute.ID])
        except PKCS11Error:
            return False
        return bool(
            attributes.get(Attribute.LABEL) == label and attributes.get(Attribute.ID) == ident
        )

    def _current(self, label: str, ident: bytes) -> tuple[SecretKey, ...]:
        """Like :meth:`_lookup`, with a cached handle checked against the token first."""
        keys = self._lookup(label, ident)
        if keys and not self._is(keys[0], label, ident):
            keys = self._lookup(label, ident, fresh=True)
        return keys

    def _generate(self, label: str, ident: bytes) -> SecretKey:
        try:
            key = self._session.generate_key(
                KeyType.AES,
                256,
                id=ident,
                label=label,
                store=True,
                capabilities=_KEY_CAPABILITIES,
                template=_KEY_TEMPLATE,
            )
        except PKCS11Error as exc:
            raise self._failed("generating a key", exc) from exc
        self._handles[(label, ident)] = (key, *self._handles.get((label, ident), ()))
        return key

    def _destroy(self, label: str, ident: bytes) -> None:
        """Destroy every object with ``label`` and ``ident`` (a race may have made two)."""
        self._handles.pop((label, ident), None)
        for key in self._search(label, ident):
            try:
                key.destroy()
            except _STALE:
                pass  # Another process destroyed it first.
            except PKCS11Error as exc:
                raise self._failed("destroying a key", exc) from exc

    def _encrypt(
        self,
        label: str,
        ident: bytes,
        plaintext: bytes,
        aad: bytes,
        missing: Callable[[], KeyMaterialError],
    ) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        parameters = GCMParams(nonce, aad, _TAG_BITS)
        with self._lock:
            keys = self._current(label, ident)
            for attempt in range(2):
                if not keys:
                    raise missing()
                try:
                    sealed = _gcm(keys[0], plaintext, parameters, encrypt=True)
                except _STALE as exc:
                    if attempt:
                        raise self._failed("encrypting", exc) from exc
                    keys = self._lookup(label, ident, fresh=True)
                except PKCS11Error as exc:
                    raise self._failed("encrypting", exc) from exc
                else:
                    return nonce + sealed
        raise AssertionError("unreachable")

    def _decrypt(
        self,
        label: str,
        ident: bytes,
        sealed: bytes,
        aad: bytes,
        missing: Callable[[], KeyMaterialError],
        failed: Callable[[], KeyMaterialError],
    ) -> bytes:
        if len(sealed) < NONCE_BYTES + _TAG_BYTES:
            raise failed()
        parameters = GCMParams(sealed[:NONCE_BYTES], aad, _TAG_BITS)
        body = sealed[NONCE_BYTES:]

        def attempt(keys: tuple[SecretKey, ...]) -> bytes | None:
            for key in keys:
                try:
                    return _gcm(key, body, parameters, encrypt=False)
                except _UNAVAILABLE as exc:
                    raise self._failed("decrypting", exc) from exc
                except PKCS11Error:
                    continue  # A wrong or stale key, or bytes that do not open.
            return None

        with self._lock:
            keys = self._lookup(label, ident)
            if not keys:
                raise missing()
            plaintext = attempt(keys)
            if plaintext is None:
                # The cached handle may be stale: destroyed, or replaced by another process.
                keys = self._lookup(label, ident, fresh=True)
                if not keys:
                    raise missing()
                plaintext = attempt(keys)
        if plaintext is None:
            raise failed()
        return plaintext

    # --- master keys -----------------------------------------------------------------------

    def _read_masters(self) -> dict[str, tuple[SecretKey, ...]]:
        """The master keys on the token by id, replacing the cached ones."""
        found: dict[bytes, list[SecretKey]] = {}
        for key in self._search(MASTER_LABEL):
            try:
                ident = bytes(key[Attribute.ID])
            except _STALE:
                continue  # Destroyed since the search.
            except PKCS11Error as exc:
                raise self._failed("reading a key's id", exc) from exc
            if len(ident) != MASTER_ID_BYTES:
                raise KeyMaterialError(
                    f"{self.describe()} holds a key labelled {MASTER_LABEL!r} whose CKA_ID is "
                    f"{len(ident)} bytes long, not {MASTER_ID_BYTES}; relabel or remove it"
                )
            found.setdefault(ident, []).append(key)
        for cache_key in [k for k in self._handles if k[0] == MASTER_LABEL]:
            del self._handles[cache_key]
        for ident, keys in found.items():
            self._handles[(MASTER_LABEL, ident)] = tuple(keys)
        return {ident.hex(): tuple(keys) for ident, keys in found.items()}

    @staticmethod
    def _master_ident(master_id: str) -> bytes | None:
        if len(master_id) != 2 * MASTER_ID_BYTES:
            return None
        try:
            return bytes.fromhex(master_id)
        except ValueError:
            return None

    def _unknown_master(self, master_id: str) -> Callable[[], KeyMaterialError]:
        return lambda: UnknownMasterKey(
            f"master key {master_id} is not in {self.describe()}; "
            "restore the key that goes with this database from your HSM backup"
        )

    def master_ids(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._read_masters())

    def create_master(self) -> str:
        with self._lock:
            existing = self._read_masters()
            ident = os.urandom(MASTER_ID_BYTES)
            while ident.hex() in existing:
                ident = os.urandom(MASTER_ID_BYTES)
            self._generate(MASTER_LABEL, ident)
        return ident.hex()

    def destroy_master(self, master_id: str) -> None:
        with self._lock:
            masters = self._read_masters()
            ident = self._master_ident(master_id)
            if ident is None or master_id not in masters:
                return
            if not masters.keys() - {master_id}:
                raise KeyMaterialError("refusing to destroy the last master key")
            self._destroy(MASTER_LABEL, ident)

    def master_encrypt(self, master_id: str, plaintext: bytes, aad: bytes) -> bytes:
        unknown = self._unknown_master(master_id)
        ident = self._master_ident(master_id)
        if ident is None:
            raise unknown()
        return self._encrypt(MASTER_LABEL, ident, plaintext, aad, unknown)

    def master_decrypt(self, master_id: str, sealed: bytes, aad: bytes) -> bytes:
        unknown = self._unknown_master(master_id)
        ident = self._master_ident(master_id)
        if ident is None:
            raise unknown()
        return self._decrypt(
            MASTER_LABEL,
            ident,
            sealed,
            aad,
            unknown,
            lambda: KeyMaterialError(
                f"master key {master_id} did not unwrap a data key: the token's key does not "
                "match the database, or the wrapped key was altered"
            ),
        )

    # --- shop key-encryption keys ----------------------------------------------------------

    @staticmethod
    def _no_shop_key(shop_id: uuid.UUID) -> Callable[[], KeyMaterialError]:
        return lambda: ShopKeyDestroyed(f"shop {shop_id} has no key-encryption key")

    def create_shop_key(self, shop_id: uuid.UUID) -> None:
        with self._lock:
            if not self._current(SHOP_LABEL, shop_id.bytes):
                self._generate(SHOP_LABEL, shop_id.bytes)

    def create_shop_keys(self, shop_ids: list[uuid.UUID]) -> None:
        """Many at once, with one search of the token (bulk loads and benchmarks)."""
        with self._lock:
            existing: set[bytes] = set()
            for key in self._search(SHOP_LABEL):
                try:
                    existing.add(bytes(key[Attribute.ID]))
                except _STALE:
                    continue
                except PKCS11Error as exc:
                    raise self._failed("reading a key's id", exc) from exc
            for shop_id in shop_ids:
                if shop_id.bytes not in existing:
                    self._generate(SHOP_LABEL, shop_id.bytes)
                    existing.add(shop_id.bytes)

    def has_shop_key(self, shop_id: uuid.UUID) -> bool:
        with self._lock:
            return bool(self._current(SHOP_LABEL, shop_id.bytes))

    def shop_encrypt(self, shop_id: uuid.UUID, plaintext: bytes, aad: bytes) -> bytes:
        return self._encrypt(SHOP_LABEL, shop_id.bytes, plaintext, aad, self._no_shop_key(shop_id))

    def shop_decrypt(self, shop_id: uuid.UUID, sealed: bytes, aad: bytes) -> bytes:
        return self._decrypt(
            SHOP_LABEL,
            shop_id.bytes,
            sealed,
            aad,
            self._no_shop_key(shop_id),
            lambda: KeyMaterialError(
                f"the key-encryption key of shop {shop_id} did not unwrap its data key"
            ),
        )

    def destroy_shop_key(self, shop_id: uuid.UUID) -> None:
        with self._lock:
            self._destroy(SHOP_LABEL, shop_id.bytes)

    def close(self) -> None:
        with self._lock:
            if getattr(self, "_closed", True):
                return
            self._closed = True
            self._handles.clear()
            try:
                self._session.close()
            except PKCS11Error:
                pass  # The module may already have dropped the session.
            release_login(self._login_key)
