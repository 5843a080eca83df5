"""The key ring: per-shop data keys, wrapped at rest, unwrapped into a bounded cache."""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict

from sqlalchemy import select
from sqlalchemy.orm import Session

from cornerstore.crypto import MasterKey, ShopCipher, new_data_key
from cornerstore.shops.models import ShopKey


class UnknownShopKey(Exception):
    """The shop has no data key: it does not exist or its keys were destroyed."""


class KeyRing:
    def __init__(self, master_key: MasterKey, *, cache_size: int = 4096) -> None:
        self._master_key = master_key
        self._cache: OrderedDict[tuple[uuid.UUID, int | None], ShopCipher] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def create_first_key(self, session: Session, shop_id: uuid.UUID) -> ShopCipher:
        """Make version 1 of a new shop's data key, inside the shop's creating transaction."""
        data_key = new_data_key()
        session.add(
            ShopKey(
                shop_id=shop_id,
                version=1,
                wrapped_key=self._master_key.wrap(shop_id, 1, data_key),
                master_key_id=self._master_key.fingerprint,
            )
        )
        return ShopCipher(shop_id, 1, data_key)

    def cipher(
        self, session: Session, shop_id: uuid.UUID, version: int | None = None
    ) -> ShopCipher:
        """The shop's cipher for ``version``, or for its newest key when ``version`` is None."""
        cache_key = (shop_id, version)
        with self._lock:
            cached = self._cache.get(cache_key)
            if cached is not None:
                self._cache.move_to_end(cache_key)
                return cached
        stmt = select(ShopKey).where(ShopKey.shop_id == shop_id)
        stmt = (
            stmt.where(ShopKey.version == version)
            if version is not None
            else stmt.order_by(ShopKey.version.desc()).limit(1)
        )
        row = session.scalar(stmt)
        if row is None:
            raise UnknownShopKey(f"shop {shop_id} has no data key")
        cipher = ShopCipher(
            shop_id, row.version, self._master_key.unwrap(shop_id, row.version, row.wrapped_key)
        )
        with self._lock:
            self._cache[cache_key] = cipher
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return cipher
