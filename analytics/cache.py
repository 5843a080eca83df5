"""The opened rollups of every shop, as columns in this process's memory, never on disk.

A query adds up millions of (shop, day, SKU) sums; opening their sealed
rollups for each query would take seconds. A process opens each rollup once,
keeps its sums as numpy columns, and on every query first takes in what was
rebuilt since it last looked (``built_at``, read with a margin that covers a
round still committing) and lets go of shops whose rollups are gone (erased).
Which shops a query counts is never decided here: the consents are read
afresh for each query (:mod:`analytics.scope`), so a revocation counts at
once in every process.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import cast

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics import rollups
from cornerstore.categories import Category
from cornerstore.db import utcnow
from cornerstore.keys.ring import KeyRing
from cornerstore.models.analytics import AnalyticsRollup

#: Rollups built this long before the last look are read again: a round that
#: began before it may have committed after it.
OVERLAP = timedelta(seconds=60)

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class _Chunk:
    """One shop-week's sums, sorted by SKU then day."""

    days: Ints
    skus: Ints
    count: Floats
    quantity: Floats
    revenue: Floats


@dataclass(frozen=True)
class Columns:
    """Every shop's sums, one row per (shop, day, SKU); a shop's rows are contiguous, and
    within a shop-week they run by SKU then day."""

    shop: Ints
    #: Days as proleptic Gregorian ordinals (``date.toordinal``).
    day: Ints
    sku: Ints
    count: Floats
    quantity: Floats
    revenue: Floats
    #: A shop's position in ``shop`` is its index here.
    shop_ids: tuple[uuid.UUID, ...]
    skus: tuple[str, ...]

    @property
    def rows(self) -> int:
        return int(self.shop.size)


def _empty() -> Columns:
    none_int = np.zeros(0, dtype=np.int64)
    none_float = np.zeros(0, dtype=np.float64)
    return Columns(none_int, none_int, none_int, none_float, none_float, none_float, (), ())


class RollupCache:
    """One process's opened sales rollups. Safe to share between request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._chunks: dict[tuple[uuid.UUID, date], _Chunk] = {}
        #: When each opened rollup was built: a rollup read again unchanged is not reopened.
        self._built: dict[tuple[uuid.UUID, date], datetime] = {}
        self._sku_index: dict[str, int] = {}
        self._looked_at: datetime | None = None
        self._columns: Columns | None = None

    def columns(self, session: Session, keyring: KeyRing) -> Columns:
        """The columns as of now: what was rebuilt since the last look is taken in first."""
        with self._lock:
            if self._take_in(session, keyring) or self._columns is None:
                self._columns = self._join()
            return self._columns

    def forget(self) -> None:
        """Let go of every opened sum (the next query opens them again)."""
        with self._lock:
            self._chunks.clear()
            self._built.clear()
            self._looked_at = None
            self._columns = None

    def _take_in(self, session: Session, keyring: KeyRing) -> bool:
        now = utcnow()
        rollup = AnalyticsRollup
        rebuilt: Sequence[tuple[uuid.UUID, date, datetime, int, bytes]]
        if self._looked_at is None:
            # The first look opens everything, in one pass.
            rebuilt = cast(
                Sequence[tuple[uuid.UUID, date, datetime, int, bytes]],
                session.execute(
                    select(
                        rollup.shop_id,
                        rollup.week_start,
                        rollup.built_at,
                        rollup.key_version,
                        rollup.sealed,
                    ).where(rollup.category == Category.sales)
                ).all(),
            )
        else:
            # Later looks list what was built lately, and open only what they have not seen.
            recent = [
                (shop_id, week, built)
                for shop_id, week, built in session.execute(
                    select(rollup.shop_id, rollup.week_start, rollup.built_at).where(
                        rollup.category == Category.sales,
                        rollup.built_at >= self._looked_at - OVERLAP,
                    )
                )
                if self._built.get((shop_id, week)) != built
            ]
            rebuilt = [
                (shop_id, week, built, *self._sealed(session, shop_id, week))
                for shop_id, week, built in recent
            ]
        for shop_id, week_start, built_at, key_version, sealed in rebuilt:
            sums = rollups.open_sums(keyring, session, shop_id, week_start, key_version, sealed)
            self._chunks[(shop_id, week_start)] = self._chunk(sums)
            self._built[(shop_id, week_start)] = built_at
        changed = bool(rebuilt)
        present = set(
            session.scalars(
                select(AnalyticsRollup.shop_id)
                .where(AnalyticsRollup.category == Category.sales)
                .distinct()
            )
        )
        gone = {shop_id for shop_id, _ in self._built} - present
        if gone:
            for key in [key for key in self._chunks if key[0] in gone]:
                del self._chunks[key]
                self._built.pop(key, None)
        self._looked_at = now
        return changed or bool(gone)

    @staticmethod
    def _sealed(session: Session, shop_id: uuid.UUID, week: date) -> tuple[int, bytes]:
        key_version, sealed = session.execute(
            select(AnalyticsRollup.key_version, AnalyticsRollup.sealed).where(
                AnalyticsRollup.shop_id == shop_id,
                AnalyticsRollup.category == Category.sales,
                AnalyticsRollup.week_start == week,
            )
        ).one()
        return int(key_version), bytes(sealed)

    def _chunk(self, sums: rollups.WeekSums) -> _Chunk:
        index = self._sku_index
        monday = sums.week_start.toordinal()
        return _Chunk(
            days=np.asarray(sums.days, dtype=np.int64) + monday,
            skus=np.asarray(
                [index.setdefault(sku, len(index)) for sku in sums.skus], dtype=np.int64
            ),
            count=np.asarray(sums.count, dtype=np.float64),
            quantity=np.asarray(sums.quantity, dtype=np.float64),
            revenue=np.asarray(sums.revenue_cents, dtype=np.float64),
        )

    def _join(self) -> Columns:
        if not self._chunks:
            return _empty()
        keys = sorted(self._chunks, key=lambda key: (key[0].bytes, key[1]))
        shop_ids: list[uuid.UUID] = []
        positions: list[Ints] = []
        for shop_id, week in keys:
            if not shop_ids or shop_ids[-1] != shop_id:
                shop_ids.append(shop_id)
            positions.append(
                np.full(self._chunks[(shop_id, week)].days.size, len(shop_ids) - 1, np.int64)
            )
        chunks = [self._chunks[key] for key in keys]
        return Columns(
            shop=np.concatenate(positions),
            day=np.concatenate([c.days for c in chunks]),
            sku=np.concatenate([c.skus for c in chunks]),
            count=np.concatenate([c.count for c in chunks]),
            quantity=np.concatenate([c.quantity for c in chunks]),
            revenue=np.concatenate([c.revenue for c in chunks]),
            shop_ids=tuple(shop_ids),
            skus=tuple(sorted(self._sku_index, key=self._sku_index.__getitem__)),
        )
