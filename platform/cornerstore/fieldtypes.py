"""The field types every API schema shares: times and short texts."""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, datetime
from functools import cache
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, StringConstraints


def _to_utc(value: datetime) -> datetime:
    # Times are stored and compared in UTC. One that falls outside years
    # 1-9999 there cannot be stored or compared, so it is bad input, not a 500.
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("must fall between the years 1 and 9999 in UTC") from None


def _encodable(value: str) -> str:
    # JSON may carry lone surrogates ("\ud800"), which no UTF-8 text can hold,
    # and NUL characters, which PostgreSQL's text cannot: either would fail
    # when sealed or stored, so it is bad input here, named by its field.
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (it holds a lone surrogate)") from None
    if "\x00" in value:
        raise ValueError("must not contain NUL characters (\\u0000)")
    return value


#: RFC 3339: a full date, a time, and an offset (Z or ±hh:mm).
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339_only(value: object) -> object:
    # Pydantic alone would also take a number of seconds since 1970, as a
    # number or a string of digits: a sender that means something else by it
    # would have its records stored at the wrong time, so it is refused.
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _RFC3339.fullmatch(value.strip()):
        return value.strip()
    raise ValueError("must be an RFC 3339 time with an offset, e.g. 2026-03-01T09:30:00+08:00")


#: RFC 3339 with an offset, normalised to UTC.
Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_only), AfterValidator(_to_utc)]

#: A short, non-empty, trimmed text: a name, a SKU, an event id.
Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_encodable),
]

#: Any text a client sends that is stored or compared as text (URLs, filters),
#: refused when the database could not hold it.
PlainText = Annotated[str, AfterValidator(_encodable)]


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _time_zone(value: str) -> str:
    if value not in _time_zones():
        raise ValueError("must be an IANA time zone name, e.g. Asia/Shanghai")
    return value


#: An IANA time zone name, as ``zoneinfo`` knows it: ``Asia/Shanghai``, ``UTC``.
TimeZoneName = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=64), AfterValidator(_time_zone)
]


def _gtin13(value: str) -> str:
    digits = value.strip()
    if len(digits) != 13 or not digits.isascii() or not digits.isdigit():
        raise ValueError("must be the 13 digits of a GTIN-13 (EAN-13) barcode")
    weighted = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits[:12]))
    if (10 - weighted % 10) % 10 != int(digits[12]):
        raise ValueError("its check digit does not match: a digit was mistyped")
    return digits


#: A GTIN-13 (EAN-13) barcode, its check digit checked.
Gtin13 = Annotated[str, AfterValidator(_gtin13)]
