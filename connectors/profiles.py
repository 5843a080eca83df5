"""POS column profiles: how one POS's export names and writes the record fields.

A profile is a data file in ``connectors/profiles/``, reviewed like
``policies/purposes.toml``: for each category, the column (or columns,
joined) each field is read from, the unit it is written in (``yuan`` with
decimals, turned into whole fen) and the POS's words for our values. A shop
picks its profile once (``pos_profile`` on the shop); ``generic`` reads the
API's own field names. Columns a profile does not name are ignored: a POS
export carries many a shop does not send.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
GENERIC = "generic"
#: The units a column may be written in, and how many fen one of them is.
UNITS = {"yuan": 100}


class ProfileError(Exception):
    """A profile file that does not say what this module reads."""


class CellError(ValueError):
    """A cell a profile cannot turn into the field's value; the message says why.

    It never quotes the cell: a reason is stored in the clear beside the
    sealed record, and a price is the shop's data.
    """


@dataclass(frozen=True)
class Column:
    """Where one field comes from in a POS's export."""

    sources: tuple[str, ...]
    join: str = " "
    unit: str | None = None
    values: Mapping[str, str] = field(default_factory=dict)

    def read(self, cells: Mapping[str, str]) -> str | int | None:
        """The field's value from a row's cells (by header), or None when they are empty."""
        parts = [cells.get(source, "").strip() for source in self.sources]
        if not all(parts):
            return None
        text = self.join.join(parts)
        if self.values:
            return self.values.get(text, text)
        if self.unit is not None:
            return _in_fen(text, self.unit)
        return text


@dataclass(frozen=True)
class Profile:
    code: str
    name: Mapping[str, str]
    #: Category to field to column; a category it does not name is read as generic.
    columns: Mapping[str, Mapping[str, Column]]

    def layout(self, category: str) -> Mapping[str, Column] | None:
        return self.columns.get(category)


#: An amount as tills write it, once its currency sign and thousands commas are gone.
#: At most 13 digits before the point: far more than any price, and no overflow.
_AMOUNT = re.compile(r"[+-]?\d{1,13}(\.\d{1,6})?")


def _in_fen(text: str, unit: str) -> int:
    cleaned = text.replace(",", "").replace("¥", "").replace("￥", "").strip()
    if not _AMOUNT.fullmatch(cleaned):
        raise CellError(f"not an amount in {unit}")
    amount = Decimal(cleaned) * UNITS[unit]
    if amount != amount.to_integral_value():
        raise CellError(f"not a whole number of fen (at most two decimals of a {unit})")
    return int(amount)


def _column(code: str, where: str, spec: object) -> Column:
    if isinstance(spec, str):
        return Column((spec,))
    if not isinstance(spec, dict) or not isinstance(spec.get("columns"), list):
        raise ProfileError(f"{code}: {where} names a column, or a table with `columns`")
    unit = spec.get("unit")
    if unit is not None and unit not in UNITS:
        raise ProfileError(f"{code}: {where} has unit {unit!r}; known: {', '.join(UNITS)}")
    return Column(
        tuple(str(source) for source in spec["columns"]),
        join=str(spec.get("join", " ")),
        unit=unit,
        values={str(k): str(v) for k, v in dict(spec.get("values", {})).items()},
    )


def _load(path: Path) -> Profile:
    code = path.stem
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{code}: {exc}") from None
    name = raw.pop("name", None)
    if not isinstance(name, dict) or not {"en", "zh"} <= set(name):
        raise ProfileError(f"{code}: name.en and name.zh are required")
    columns = {
        category: {
            field_name: _column(code, f"{category}.{field_name}", spec)
            for field_name, spec in fields.items()
        }
        for category, fields in raw.items()
    }
    return Profile(code, {k: str(v) for k, v in name.items()}, columns)


@functools.cache
def profiles() -> Mapping[str, Profile]:
    """Every profile in ``connectors/profiles/``, by code (its file's name)."""
    return {path.stem: _load(path) for path in sorted(PROFILES_DIR.glob("*.toml"))}
