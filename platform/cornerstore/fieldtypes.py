"""The field types every API schema shares: times and short texts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, StringConstraints


def _to_utc(value: datetime) -> datetime:
    # Times are stored and compared in UTC. One that falls outside years
    # 1-9999 there cannot be stored or compared, so it is bad input, not a 500.
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("must fall between the years 1 and 9999 in UTC") from None


def _encodable(value: str) -> str:
    # JSON may carry lone surrogates ("\ud800"), which no UTF-8 text can hold:
    # such a value would fail when sealed or stored, so it is bad input here.
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (it holds a lone surrogate)") from None
    return value


#: RFC 3339 with an offset, normalised to UTC.
Timestamp = Annotated[AwareDatetime, AfterValidator(_to_utc)]

#: A short, non-empty, trimmed text: a name, a SKU, an event id.
Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_encodable),
]
