"""Local times from a till, read in the shop's time zone.

POS exports write the wall-clock time, ``2026-11-28 10:05:00`` or
``2026/11/28 10:05``, with no offset. Such a time is read in the shop's
IANA time zone (UTC for a shop that has not set one, as ``GET /v1/shops``
states). A time the zone's clocks skipped (spring forward) or showed twice
(fall back) cannot be placed, and is refused with the reason: its sender
must give the offset. Times that carry an offset are left as they are. A
reason never quotes the time: it is stored in the clear beside the sealed
record.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

_LOCAL = re.compile(
    r"(?P<y>\d{4})[-/](?P<m>\d{1,2})[-/](?P<d>\d{1,2})[ T]"
    r"(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,6}))?)?"
)


class NotALocalTime(ValueError):
    """A wall-clock time that does not name one moment in the shop's zone."""


def place(value: str, zone: ZoneInfo) -> str | None:
    """``value`` as RFC 3339 in ``zone`` if it is a local time, else None (leave it be)."""
    found = _LOCAL.fullmatch(value.strip())
    if found is None:
        return None
    parts = found.groupdict()
    try:
        naive = datetime(
            int(parts["y"]),
            int(parts["m"]),
            int(parts["d"]),
            int(parts["H"]),
            int(parts["M"]),
            int(parts["S"] or 0),
            int((parts["f"] or "0").ljust(6, "0")),
        )
    except ValueError:
        raise NotALocalTime("not a date and time on the calendar") from None
    early, late = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
    try:
        skipped = all(_back_to_wall(moment, zone) != naive for moment in (early, late))
    except OverflowError:  # within hours of year 1 or 9999: no moment in UTC
        raise NotALocalTime("too near the ends of the calendar to place in UTC") from None
    if skipped:
        raise NotALocalTime(f"never happened in {zone.key}: the clocks skipped that time")
    if early.utcoffset() != late.utcoffset():
        raise NotALocalTime(f"happened twice in {zone.key} (the clocks went back): give its offset")
    return early.isoformat()


def _back_to_wall(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
