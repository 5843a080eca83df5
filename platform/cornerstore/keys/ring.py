"""The key ring: per-shop data keys, wrapped at rest, unwrapped into a bounded, expiring cache.

Unwrapped data keys exist only in this process's memory, for at most
``ttl`` seconds and at most ``size`` of them; they are never written anywhere.
Which version is a shop's current one is cached for a much shorter time, so
that a key rotated by another process is used for new writes within seconds.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cornerstore.crypto import KeyMaterialError, ShopCipher, new_data_key
from cornerstore.keys.provider import KeyProvider
from cornerstore.models.keys import MasterKeyRecord, MasterKeyState, ShopKey

WRAP_FORMAT = 2
_LEGACY_CONTEXT = b"cornerstore/shop-data-key/v1"


class UnknownShopKey(Exception):
    """The shop has no data key: it does not exist or its keys were destroyed."""


def _master_aad(shop_id: uuid.UUID, version: int) -> bytes:
    return b"|".join((b"cornerstore/data-key/master", shop_id.bytes, str(version).encode()))


def _shop_aad(shop_id: uuid.UUID, version: int) -> bytes:
    return b"|".join((b"cornerstore/data-key/shop", shop_id.bytes, str(version).encode()))


def _legacy_aad(shop_id: uuid.UUID, version: int) -> bytes:
    return b"|".join((_LEGACY_CONTEXT, shop_id.bytes, str(version).encode()))


class KeyRing:
    def __init__(
        self,
        provider: KeyProvider,
        *,
        cache_size: int = 4096,
        ttl: float = 300.0,
        current_ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self._cache: OrderedDict[tuple[uuid.UUID, int | None], tuple[float, ShopCipher]] = (
            OrderedDict()
        )
        self._size = cache_size
        self._ttl = ttl
        self.current_ttl = min(current_ttl, ttl)
        self._clock = clock
        self._lock = threading.Lock()

    # --- wrapping --------------------------------------------------------------------------

    def wrap(self, shop_id: uuid.UUID, version: int, data_key: bytes, master_id: str) -> bytes:
        inner = self.provider.shop_encrypt(shop_id, data_key, _shop_aad(shop_id, version))
        return self.provider.master_encrypt(master_id, inner, _master_aad(shop_id, version))

    def unwrap(self, row: ShopKey) -> bytes:
        if row.wrap_format == 1:
            return self.provider.master_decrypt(
                row.master_key_id, row.wrapped_key, _legacy_aad(row.shop_id, row.version)
            )
        inner = self.provider.master_decrypt(
            row.master_key_id, row.wrapped_key, _master_aad(row.shop_id, row.version)
        )
        return self.provider.shop_decrypt(row.shop_id, inner, _shop_aad(row.shop_id, row.version))

    def rewrap(self, row: ShopKey, master_id: str) -> None:
        """Move ``row`` under master key ``master_id``. Only the outer layer changes.

        A data key from before shop key-encryption keys (format 1) gets its
        shop's key-encryption key on the way.
        """
        if row.wrap_format == 1:
            data_key = self.unwrap(row)
            self.provider.create_shop_key(row.shop_id)
            row.wrapped_key = self.wrap(row.shop_id, row.version, data_key, master_id)
            row.wrap_format = WRAP_FORMAT
        else:
            aad = _master_aad(row.shop_id, row.version)
            inner = self.provider.master_decrypt(row.master_key_id, row.wrapped_key, aad)
            row.wrapped_key = self.provider.master_encrypt(master_id, inner, aad)
        row.master_key_id = master_id

    @staticmethod
    def active_master_id(session: Session) -> str:
        """The master key new data keys are wrapped with.

        Its row is share-locked until the caller's transaction ends, so a
        master rotation (which updates that row) waits for every data key
        being wrapped under the old key to commit, and none can follow it.
        A lock that waited on a rotation finds the old row retired and the new
        one not yet in its snapshot; the next statement's snapshot has it.
        """
        stmt = (
            select(MasterKeyRecord.id)
            .where(MasterKeyRecord.state == MasterKeyState.active)
            .with_for_update(read=True)
        )
        for _attempt in range(3):
            active = session.scalar(stmt)
            if active is not None:
                return active
        raise KeyMaterialError("no active master key is recorded in the database")

    # --- data keys -------------------------------------------------------------------------

    def create_first_key(self, session: Session, shop_id: uuid.UUID) -> ShopCipher:
        """Make the shop's key-encryption key and version 1 of its data key.

        The data key row is added inside the shop's creating transaction; the
        key-encryption key is made first, in the provider. Should the
        transaction roll back, it is left unused and harmless.
        """
        self.provider.create_shop_key(shop_id)
        return self._add_version(session, shop_id, 1)

    def start_new_version(self, session: Session, shop_id: uuid.UUID) -> ShopCipher:
        """A new data key for the shop's new writes; older versions stay readable."""
        newest = session.scalar(select(func.max(ShopKey.version)).where(ShopKey.shop_id == shop_id))
        if newest is None:
            raise UnknownShopKey(f"shop {shop_id} has no data key")
        cipher = self._add_version(session, shop_id, newest + 1)
        self.forget(shop_id)
        return cipher

    def _add_version(self, session: Session, shop_id: uuid.UUID, version: int) -> ShopCipher:
        data_key = new_data_key()
        master_id = self.active_master_id(session)
        session.add(
            ShopKey(
                shop_id=shop_id,
                version=version,
                wrapped_key=self.wrap(shop_id, version, data_key, master_id),
                master_key_id=master_id,
                wrap_format=WRAP_FORMAT,
            )
        )
        return ShopCipher(shop_id, version, data_key)

    def cipher(
        self, session: Session, shop_id: uuid.UUID, version: int | None = None
    ) -> ShopCipher:
        """The shop's cipher for ``version``, or for its newest key when ``version`` is None."""
        cache_key = (shop_id, version)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(cache_key)
            if cached is not None:
                if cached[0] > now:
                    self._cache.move_to_end(cache_key)
                    return cached[1]
                del self._cache[cache_key]
        stmt = select(ShopKey).where(ShopKey.shop_id == shop_id)
        stmt = (
            stmt.where(ShopKey.version == version)
            if version is not None
            else stmt.order_by(ShopKey.version.desc()).limit(1)
        )
        row = session.scalar(stmt)
        if row is None:
            raise UnknownShopKey(f"shop {shop_id} has no data key")
        cipher = ShopCipher(shop_id, row.version, self.unwrap(row))
        lifetime = self._ttl if version is not None else self.current_ttl
        with self._lock:
            self._cache[cache_key] = (now + lifetime, cipher)
            self._cache[(shop_id, row.version)] = (now + self._ttl, cipher)
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return cipher

    def open_every_version(self, session: Session, shop_id: uuid.UUID) -> None:
        """Unwrap every data key the shop has, or raise as :meth:`cipher` does.

        For work that will need them all later and must not fail half-way,
        such as an export, whose answer cannot turn into an error once it
        has started.
        """
        versions = list(session.scalars(select(ShopKey.version).where(ShopKey.shop_id == shop_id)))
        if not versions:
            raise UnknownShopKey(f"shop {shop_id} has no data key")
        for version in versions:
            self.cipher(session, shop_id, version)

    def forget(self, shop_id: uuid.UUID) -> None:
        """Drop the shop's unwrapped keys from this process's cache."""
        with self._lock:
            for cache_key in [k for k in self._cache if k[0] == shop_id]:
                del self._cache[cache_key]

    def cached_count(self) -> int:
        with self._lock:
            return len(self._cache)
