"""Adding up a query's cells from the opened sums, with each shop's contribution bounded.

Before any noise, one shop's effect on the answer is bounded, as the
catalogue says: its sum in each cell is clamped per measure, and it adds to
at most ``max_cells_per_shop`` cells (a random run of its cells, chosen
afresh per query, where it has more). Those two bounds are what the noise is
calibrated to (:mod:`analytics.privacy`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from analytics.cache import Columns

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

#: Where a column of the rollups comes from, per measure.
_MEASURE_COLUMN = {"count": "count", "sum_quantity": "quantity", "sum_revenue_cents": "revenue"}
_FAR = 10**9


@dataclass(frozen=True)
class ShopWindow:
    """A shop in scope: its district, and the days its consent lets count, [first, end)."""

    shop_id: uuid.UUID
    district: str | None
    first_day: int | None
    end_day: int | None


@dataclass(frozen=True)
class Cells:
    """Every cell at least one shop adds to: its coordinates, shops and bounded sums."""

    group_by: tuple[str, ...]
    #: Per dimension, the value of each cell (a SKU, a district, a week's Monday, a day).
    coordinates: dict[str, list[str]]
    shops: Ints
    sums: dict[str, Floats]

    @property
    def size(self) -> int:
        return int(self.shops.size)


def _iso_week(ordinal: int) -> str:
    year, week, _ = date.fromordinal(ordinal).isocalendar()
    return f"{year}-W{week:02d}"


def add_up(
    columns: Columns,
    scope: list[ShopWindow],
    *,
    group_by: tuple[str, ...],
    measures: tuple[str, ...],
    clamps: dict[str, tuple[float, float]],
    max_cells_per_shop: int,
    rng: np.random.Generator,
) -> Cells:
    position = {shop_id: n for n, shop_id in enumerate(columns.shop_ids)}
    shops = len(columns.shop_ids)
    counted = np.zeros(shops, dtype=bool)
    first = np.full(shops, -_FAR, dtype=np.int64)
    end = np.full(shops, _FAR, dtype=np.int64)
    districts = sorted({str(s.district) for s in scope})
    district_of = np.zeros(shops, dtype=np.int64)
    for window in scope:
        at = position.get(window.shop_id)
        if at is None:  # a shop in scope with no sales yet
            continue
        counted[at] = True
        first[at] = window.first_day if window.first_day is not None else -_FAR
        end[at] = window.end_day if window.end_day is not None else _FAR
        district_of[at] = districts.index(str(window.district))
    shop, day = columns.shop, columns.day
    inside = counted[shop] & (day >= first[shop]) & (day < end[shop])
    # Where every row counts (the common case), the columns are used as they are, not copied.
    rows: Ints | slice = slice(None) if inside.all() else np.flatnonzero(inside)
    shop, day = shop[rows], day[rows]

    # The cell of each row, as a mixed-radix number over the dimensions asked for.
    dimensions = [
        _dimension(name, columns, rows, shop, day, district_of, districts) for name in group_by
    ]
    cell = np.zeros(shop.size, dtype=np.int64)
    for dimension in dimensions:
        cell = cell * dimension.radix + dimension.values
    ncells = int(np.prod([d.radix for d in dimensions], dtype=np.int64)) if dimensions else 1

    # One run per (shop, cell): rows of a shop-week run by SKU then day, so a
    # (shop, SKU, week) or (shop, SKU, day) is contiguous; other shapes are gathered.
    key = shop * ncells + cell
    contiguous = "sku" in group_by and ("week" in group_by or "day" in group_by)
    if contiguous and key.size:
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        run_key = key[starts]
        run_sums = {
            m: np.add.reduceat(getattr(columns, _MEASURE_COLUMN[m])[rows], starts) for m in measures
        }
    else:
        run_key, inverse = np.unique(key, return_inverse=True)
        run_sums = {
            m: np.bincount(
                inverse, weights=getattr(columns, _MEASURE_COLUMN[m])[rows], minlength=run_key.size
            )
            for m in measures
        }
    run_shop, run_cell = run_key // ncells, run_key % ncells

    keep = _cap(run_shop, shops, max_cells_per_shop, rng)
    run_cell = run_cell[keep]
    # Per cell, by counting rather than sorting: cells number thousands, runs millions.
    shops_in = np.bincount(run_cell, minlength=ncells)
    present = np.flatnonzero(shops_in)
    sums: dict[str, Floats] = {
        m: np.bincount(run_cell, weights=np.clip(run_sums[m][keep], *clamps[m]), minlength=ncells)[
            present
        ].astype(np.float64)
        for m in measures
    }
    shops_per_cell = shops_in[present].astype(np.int64)
    coordinates: dict[str, list[str]] = {}
    remaining = present
    for dimension in reversed(dimensions):
        # Named once per distinct value: a week names thousands of cells.
        distinct, where = np.unique(remaining % dimension.radix, return_inverse=True)
        names = np.asarray([dimension.name_of(v) for v in distinct.tolist()], dtype=object)
        coordinates[dimension.name] = names[where].tolist()
        remaining = remaining // dimension.radix
    return Cells(group_by, coordinates, shops_per_cell, sums)


@dataclass(frozen=True)
class _Dimension:
    name: str
    #: Each row's value, 0 to radix - 1.
    values: Ints
    radix: int
    name_of: Callable[[int], str]


def _dimension(
    name: str,
    columns: Columns,
    rows: Ints | slice,
    shop: Ints,
    day: Ints,
    district_of: Ints,
    districts: list[str],
) -> _Dimension:
    if name == "sku":
        return _Dimension(
            name, columns.sku[rows], max(len(columns.skus), 1), columns.skus.__getitem__
        )
    if name == "district":
        return _Dimension(name, district_of[shop], max(len(districts), 1), districts.__getitem__)
    unit = 7 if name == "week" else 1
    # Ordinal 1 (0001-01-01) is a Monday, so (ordinal - 1) // 7 numbers ISO weeks.
    numbered = (day - 1) // unit
    low = int(numbered.min()) if numbered.size else 0
    values = numbered - low
    radix = int(values.max()) + 1 if values.size else 1
    if name == "week":
        return _Dimension(name, values, radix, lambda v: _iso_week((low + v) * 7 + 1))
    return _Dimension(name, values, radix, lambda v: date.fromordinal(low + v + 1).isoformat())


def _cap(run_shop: Ints, shops: int, most: int, rng: np.random.Generator) -> npt.NDArray[np.bool_]:
    """Keep at most ``most`` runs per shop: a circular stretch from a random start.

    A shop's runs are contiguous (the columns keep each shop's rows together),
    so the stretch of each shop over the cap is marked with two slices.
    """
    per_shop = np.bincount(run_shop, minlength=shops)
    over = np.flatnonzero(per_shop > most)
    if not over.size:
        return np.ones(run_shop.size, dtype=bool)
    keep = np.ones(run_shop.size, dtype=bool)
    first_run = np.concatenate(([0], np.cumsum(per_shop)[:-1]))
    offsets = rng.integers(0, per_shop[over])
    for shop, offset in zip(over.tolist(), offsets.tolist(), strict=True):
        start, count = int(first_run[shop]), int(per_shop[shop])
        keep[start : start + count] = False
        end = offset + most
        keep[start + offset : start + min(end, count)] = True
        if end > count:  # the stretch wraps round to the shop's first runs
            keep[start : start + end - count] = True
    return keep
