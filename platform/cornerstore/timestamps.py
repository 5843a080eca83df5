"""The one type for times that come in through the API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime


def _to_utc(value: datetime) -> datetime:
    # Times are stored and compared in UTC. One that falls outside years
    # 1-9999 there cannot be stored or compared, so it is bad input, not a 500.
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("must fall between the years 1 and 9999 in UTC") from None


#: RFC 3339 with an offset, normalised to UTC.
Timestamp = Annotated[AwareDatetime, AfterValidator(_to_utc)]
