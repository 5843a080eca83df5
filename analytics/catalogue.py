"""The analytics catalogue (``policies/analytics.toml``): what may be asked, and its bounds."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

CATALOGUE_FILE = "analytics.toml"

#: The measures a rollup keeps, and what each adds up.
MEASURES = ("count", "sum_quantity", "sum_revenue_cents")
#: The dimensions a rollup can be grouped by: the shop's district, and the record's key and time.
DIMENSIONS = ("sku", "district", "week", "day")


class CatalogueError(ValueError):
    """The catalogue is malformed: the hub refuses to start rather than guess."""


@dataclass(frozen=True)
class CategoryRules:
    dimensions: tuple[str, ...]
    #: Per measure, the bounds of one shop's contribution to one cell.
    clamps: dict[str, tuple[float, float]]


@dataclass(frozen=True)
class PurposeRules:
    purpose: str
    min_shops: int
    epsilon_per_period: float
    period: timedelta
    max_epsilon: float
    delta: float
    max_cells_per_shop: int
    categories: dict[str, CategoryRules]


_DAYS = re.compile(r"P(\d+)D")


def _period(text: str) -> timedelta:
    matched = _DAYS.fullmatch(text)
    if not matched or int(matched.group(1)) < 1:
        raise CatalogueError(f"period {text!r} must be a number of days, e.g. P30D")
    return timedelta(days=int(matched.group(1)))


def _category(purpose: str, name: str, table: dict[str, Any]) -> CategoryRules:
    dimensions = tuple(table.get("dimensions", ()))
    unknown = set(dimensions) - set(DIMENSIONS)
    if unknown:
        raise CatalogueError(f"{purpose}.{name}: unknown dimensions {sorted(unknown)}")
    clamps: dict[str, tuple[float, float]] = {}
    for measure, rules in dict(table.get("measures", {})).items():
        if measure not in MEASURES:
            raise CatalogueError(f"{purpose}.{name}: unknown measure {measure!r}")
        low, high = (float(bound) for bound in rules["clamp"])
        if not low < high:
            raise CatalogueError(f"{purpose}.{name}.{measure}: clamp must run low to high")
        clamps[measure] = (low, high)
    return CategoryRules(dimensions, clamps)


def _purpose(purpose: str, table: dict[str, Any]) -> PurposeRules:
    try:
        rules = PurposeRules(
            purpose=purpose,
            min_shops=int(table["min_shops"]),
            epsilon_per_period=float(table["epsilon_per_period"]),
            period=_period(str(table["period"])),
            max_epsilon=float(table["max_epsilon"]),
            delta=float(table["delta"]),
            max_cells_per_shop=int(table["max_cells_per_shop"]),
            categories={
                name: _category(purpose, name, category)
                for name, category in dict(table.get("categories", {})).items()
            },
        )
    except KeyError as missing:
        raise CatalogueError(f"{purpose}: {missing.args[0]} is missing") from None
    if rules.min_shops < 1 or rules.max_cells_per_shop < 1:
        raise CatalogueError(f"{purpose}: min_shops and max_cells_per_shop must be at least 1")
    if not 0 < rules.max_epsilon <= rules.epsilon_per_period or not 0 < rules.delta < 1e-3:
        raise CatalogueError(f"{purpose}: need 0 < max_epsilon <= epsilon_per_period, tiny delta")
    return rules


@cache
def load(policy_dir: Path) -> dict[str, PurposeRules]:
    """Every purpose's rules, by purpose name; a purpose absent answers no query."""
    text = (policy_dir / CATALOGUE_FILE).read_text(encoding="utf-8")
    return {purpose: _purpose(purpose, table) for purpose, table in tomllib.loads(text).items()}
