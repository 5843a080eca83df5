"""Releasing cells with differential privacy, the shop as the unit, through OpenDP.

One shop, added or removed, changes an answer by at most this much (after
:mod:`analytics.cells` bounded it): it is in at most M cells
(``max_cells_per_shop``), moves each cell's shop count by 1 and each
measure by at most its clamp's larger end.

- Which cells are released at all is itself private: a cell is released only
  if its shop count, with Laplace noise, reaches the threshold (OpenDP's
  ``make_laplace_threshold``, (ε, δ)-DP over the l0/l1/l∞ bounds above).
  The threshold is the catalogue's k or the one δ needs, whichever is higher,
  so a cell a handful of shops back is never released, and the set of cells
  released reveals no single shop. Cell keys (SKUs) are the shops' own data,
  not a public list, so a public catalogue of cells was not an option.
- Each measure gets Laplace noise calibrated by OpenDP to its L1 bound,
  M times the clamp.

The query's ε is split evenly between the threshold and the measures, and
the parts add up (basic composition); δ is the threshold's. Noise comes from
OpenDP's sampler, on the operating system's randomness.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import opendp.prelude as dp

from analytics.cells import Cells

dp.enable_features("contrib")

#: z of a two-sided 95% interval for Laplace noise: P(|X| > b·ln 20) = 5%.
_LAPLACE_95 = math.log(20)


@dataclass(frozen=True)
class Noise:
    mechanism: str
    #: Laplace scale b per measure.
    scale: dict[str, float]
    #: Half-width of the 95% interval of each released value.
    ci95: dict[str, float]
    threshold: float
    threshold_scale: float
    epsilon: float
    delta: float


@dataclass(frozen=True)
class Released:
    #: Indexes into the cells, of those released.
    cells: list[int]
    values: dict[str, list[float]]
    suppressed: int
    noise: Noise


# OpenDP's samplers are exact and take microseconds a draw; a query draws one per
# cell. Each key's (and each value's) noise is drawn independently of every
# other's, so drawing for disjoint parts of the cells and joining the results
# is the same mechanism applied to the whole: parts only let the draws run on
# every core (the library releases the GIL while it samples).
_PARTS = max(os.cpu_count() or 1, 1)
_POOL = ThreadPoolExecutor(_PARTS, thread_name_prefix="dp-noise")


def _split_map(counted: dict[int, int]) -> list[dict[int, int]]:
    keys = list(counted)
    size = -(-len(keys) // _PARTS) or 1
    return [{k: counted[k] for k in keys[at : at + size]} for at in range(0, len(keys), size)]


def _split_list(values: list[int]) -> list[list[int]]:
    size = -(-len(values) // _PARTS) or 1
    return [values[at : at + size] for at in range(0, len(values), size)]


def _in_parallel(mechanism: Any, parts: list[Any]) -> list[Any]:
    return list(_POOL.map(mechanism, parts))


# Counts and sums are whole numbers (lines, items, cents), so the noise is OpenDP's
# discrete Laplace over integers: exact, and twice as fast to draw as over floats.


def _perturbation(scale: float) -> Any:
    domain = dp.vector_domain(dp.atom_domain(T="i64"))
    return dp.m.make_laplace(domain, dp.l1_distance(T="i64"), scale=scale)


@cache
def _laplace_scale(sensitivity: int, epsilon: float) -> float:
    scale: float = dp.binary_search_param(_perturbation, d_in=sensitivity, d_out=epsilon)
    return scale


_HIGHEST = 2**40


def _threshold_mechanism(scale: float, threshold: int) -> Any:
    domain = dp.map_domain(dp.atom_domain(T="i64"), dp.atom_domain(T="i64"))
    metric = dp.l01inf_distance(dp.absolute_distance(T="i64"))
    return dp.m.make_laplace_threshold(domain, metric, scale=scale, threshold=threshold)


@cache
def _threshold(most_cells: int, epsilon: float, delta: float, k: int) -> tuple[float, int]:
    """The noise scale and threshold that make the release (ε, δ)-DP, and at least k."""
    bound = (most_cells, most_cells, 1)
    # ε comes from the scale alone (the threshold sets δ): l1 / scale, checked by OpenDP.
    scale = most_cells / epsilon
    while _threshold_mechanism(scale, _HIGHEST).map(bound)[0] > epsilon:
        scale *= 1.001
    if _threshold_mechanism(scale, k).check(bound, (epsilon, delta)):
        return scale, k  # small noise: k itself keeps δ within bounds
    needed = dp.binary_search_param(
        lambda t: _threshold_mechanism(scale, int(t)),
        d_in=bound,
        d_out=(epsilon, delta),
        bounds=(k, _HIGHEST),
        T="i64",
    )
    return scale, int(needed)


def release(
    cells: Cells,
    *,
    epsilon: float,
    delta: float,
    min_shops: int,
    max_cells_per_shop: int,
    clamps: dict[str, tuple[float, float]],
) -> Released:
    measures = list(cells.sums)
    share = epsilon / (1 + len(measures))
    threshold_scale, threshold = _threshold(max_cells_per_shop, share, delta, min_shops)
    counted = dict(enumerate(cells.shops.tolist()))
    threshold_release = _threshold_mechanism(threshold_scale, threshold)
    passed: dict[int, float] = {}
    for part in _in_parallel(threshold_release, _split_map(counted)):
        passed.update(part)
    kept = sorted(index for index, noisy in passed.items() if noisy >= threshold)
    scales: dict[str, float] = {}
    values: dict[str, list[float]] = {}
    for measure in measures:
        low, high = clamps[measure]
        sensitivity = max_cells_per_shop * int(max(abs(low), abs(high)))
        scale = _laplace_scale(sensitivity, share)
        scales[measure] = scale
        chosen = np.rint(np.asarray(cells.sums[measure])[kept]).astype(np.int64).tolist()
        perturb = _perturbation(scale)
        values[measure] = [
            float(v) for part in _in_parallel(perturb, _split_list(chosen)) for v in part
        ]
    return Released(
        cells=kept,
        values=values,
        suppressed=cells.size - len(kept),
        noise=Noise(
            mechanism="laplace",
            scale=scales,
            ci95={m: s * _LAPLACE_95 for m, s in scales.items()},
            threshold=float(threshold),
            threshold_scale=threshold_scale,
            epsilon=epsilon,
            delta=delta,
        ),
    )
