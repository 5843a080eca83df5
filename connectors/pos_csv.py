"""POS CSV exports: a header line naming the record fields, then one record a line.

The bytes are read in the export's encoding (:mod:`connectors.csv_text`),
split on commas, or on tabs as a spreadsheet's "Unicode text" export has
them. Cells are text; the ones the record schema types as integers are
converted when they hold an integer, and left as text otherwise, so that
validation rejects them with the field's name. Empty cells are left out, so
defaults (``currency``) apply and missing required fields are named. A time
without an offset is read in the shop's time zone (:mod:`connectors.local_times`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from connectors import csv_text, local_times
from connectors.profiles import CellError, Column
from connectors.schemas import RecordError, RejectedRecord

_INTEGER = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True)
class ParsedCsv:
    records: list[dict[str, Any]]
    #: The file line each record starts on (the header is line 1).
    lines: list[int]
    #: Faults found before validation, by record index: a line with the wrong
    #: number of cells (field ''), a local time that cannot be placed.
    unreadable: dict[int, RejectedRecord]


def _delimiter(text: str) -> str:
    """A tab when the header line has tabs and no commas (spreadsheets' "Unicode text")."""
    header = text.split("\n", 1)[0]
    return "\t" if "\t" in header and "," not in header else ","


def _generic_layout(
    header: list[str], schema: type[BaseModel], hub_sets: str | None
) -> dict[str, Column]:
    """The header names the record fields themselves: each must be one, and none twice."""
    unknown = [name for name in header if name not in schema.model_fields or name == hub_sets]
    duplicated = sorted({name for name in header if header.count(name) > 1})
    missing = [
        name
        for name, field in schema.model_fields.items()
        if field.is_required() and name not in header and name != hub_sets
    ]
    _refuse_header(
        ("unknown columns", unknown), ("repeated columns", duplicated), ("missing columns", missing)
    )
    return {name: Column((name,)) for name in header}


def _profile_layout(header: list[str], layout: Mapping[str, Column]) -> dict[str, Column]:
    """The profile's columns: each it reads must be there, once; the others are ignored."""
    wanted = [source for column in layout.values() for source in column.sources]
    missing = [source for source in wanted if source not in header]
    duplicated = sorted({source for source in wanted if header.count(source) > 1})
    _refuse_header(("missing columns", missing), ("repeated columns", duplicated))
    return dict(layout)


def _refuse_header(*found: tuple[str, list[str]]) -> None:
    problems = [f"{what}: {', '.join(names)}" for what, names in found if names]
    if problems:
        raise csv_text.refuse(f"line 1: {'; '.join(problems)}")


def parse(
    data: bytes,
    schema: type[BaseModel],
    *,
    time_field: str,
    zone: ZoneInfo,
    encoding: csv_text.Encoding | None = None,
    layout: Mapping[str, Column] | None = None,
    time_set_by_hub: bool = False,
) -> ParsedCsv:
    """The export's records, with faults found before validation; ``layout`` from a profile.

    ``time_set_by_hub``: the time field is the hub's to set (a catalogue's), not a column.
    """
    text = csv_text.decode(data, encoding)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    try:
        header = [name.strip() for name in next(reader, [])]
        if not header:
            raise csv_text.refuse("no header line")
        columns = (
            _generic_layout(header, schema, time_field if time_set_by_hub else None)
            if layout is None
            else _profile_layout(header, layout)
        )
        integers = {
            name
            for name, field in schema.model_fields.items()
            if field.annotation is int or field.annotation == int | None
        }
        parsed = ParsedCsv(records=[], lines=[], unreadable={})
        line = reader.line_num + 1
        for row in reader:
            if any(cell.strip() for cell in row):
                index = len(parsed.records)
                parsed.lines.append(line)
                record, errors = _record(dict(zip(header, row, strict=False)), columns, integers)
                if len(row) != len(header):
                    reason = f"expected {len(header)} cells, found {len(row)}"
                    errors = [RecordError(field="", reason=reason)]
                    # Kept as the line came, every cell of it, for the shop to see and fix.
                    record = {"cells": row}
                elif isinstance(record.get(time_field), str):
                    try:
                        placed = local_times.place(record[time_field], zone)
                    except local_times.NotALocalTime as exc:
                        errors.insert(0, RecordError(field=time_field, reason=str(exc)))
                    else:
                        if placed is not None:
                            record[time_field] = placed
                if errors:
                    parsed.unreadable[index] = RejectedRecord.of(index, errors, line)
                parsed.records.append(record)
            line = reader.line_num + 1
    except csv.Error as exc:
        raise csv_text.refuse(f"line {reader.line_num}: {exc}") from None
    return parsed


def _integer(cell: str) -> int | str:
    """The cell as an integer when it is one; otherwise the text, for validation to refuse."""
    if _INTEGER.match(cell):
        try:
            return int(cell)
        except ValueError:  # More digits than Python converts; far out of range anyway.
            pass
    return cell


def _record(
    cells: Mapping[str, str], columns: Mapping[str, Column], integers: set[str]
) -> tuple[dict[str, Any], list[RecordError]]:
    """A row as a record, and the cells no column could read (a bad amount in yuan)."""
    record: dict[str, Any] = {}
    errors: list[RecordError] = []
    for name, column in columns.items():
        try:
            value = column.read(cells)
        except CellError as exc:
            errors.append(RecordError(field=name, reason=str(exc)))
            # The cell as it came: validation refuses it too, and the quarantine shows it.
            value = column.join.join(cells.get(source, "").strip() for source in column.sources)
        if value is not None:
            record[name] = _integer(value) if isinstance(value, str) and name in integers else value
    return record, errors
