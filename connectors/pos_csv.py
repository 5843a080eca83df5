"""POS CSV exports: a header line naming the record fields, then one record a line.

Cells are text; the ones the record schema types as integers are converted
when they hold an integer, and left as text otherwise, so that validation
rejects them with the field's name. Empty cells are left out, so defaults
(``currency``) apply and missing required fields are named.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from connectors.schemas import RejectedRecord
from cornerstore.errors import FieldError, ValidationFailed

_INTEGER = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True)
class ParsedCsv:
    records: list[dict[str, Any]]
    #: The file line each record starts on (the header is line 1).
    lines: list[int]
    #: Lines refused before validation (wrong number of cells), by record index.
    unreadable: dict[int, RejectedRecord]


def _refuse(reason: str) -> ValidationFailed:
    return ValidationFailed(
        f"the CSV cannot be read: {reason}", [FieldError(field="body", reason=reason)]
    )


def parse(data: bytes, schema: type[BaseModel]) -> ParsedCsv:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _refuse(f"not UTF-8 (byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in next(reader, [])]
        if not header:
            raise _refuse("no header line")
        unknown = [name for name in header if name not in schema.model_fields]
        duplicated = sorted({name for name in header if header.count(name) > 1})
        missing = [
            name
            for name, field in schema.model_fields.items()
            if field.is_required() and name not in header
        ]
        if unknown or duplicated or missing:
            problems = [
                f"{what}: {', '.join(names)}"
                for what, names in (
                    ("unknown columns", unknown),
                    ("repeated columns", duplicated),
                    ("missing columns", missing),
                )
                if names
            ]
            raise _refuse(f"line 1: {'; '.join(problems)}")
        integers = {name for name, field in schema.model_fields.items() if field.annotation is int}
        parsed = ParsedCsv(records=[], lines=[], unreadable={})
        line = reader.line_num + 1
        for row in reader:
            if any(cell.strip() for cell in row):
                index = len(parsed.records)
                parsed.lines.append(line)
                if len(row) != len(header):
                    parsed.unreadable[index] = RejectedRecord(
                        index=index,
                        field="",
                        reason=f"expected {len(header)} cells, found {len(row)}",
                        line=line,
                    )
                parsed.records.append(_record(header, row, integers))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise _refuse(f"line {reader.line_num}: {exc}") from None
    return parsed


def _integer(cell: str) -> int | str:
    """The cell as an integer when it is one; otherwise the text, for validation to refuse."""
    if _INTEGER.match(cell):
        try:
            return int(cell)
        except ValueError:  # More digits than Python converts; far out of range anyway.
            pass
    return cell


def _record(header: list[str], row: list[str], integers: set[str]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for name, cell in zip(header, row, strict=False):
        value = cell.strip()
        if value:
            record[name] = _integer(value) if name in integers else value
    return record
