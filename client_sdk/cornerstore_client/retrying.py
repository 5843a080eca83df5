"""When to try a request again, and how long to wait first.

Only answers that say "not now" are retried: 429 (a rate limit) and 503 (the
hub could not do it at the moment). Both are refused before anything is
done, so even a POST is safe to send again. A connection that fails before
an answer is retried only for GET, since a POST may have been done. Waits
double from ``backoff`` up to ``max_backoff``, with full jitter so that many
clients refused at once do not come back at once, and never less than the
``Retry-After`` the hub sent. A ``Retry-After`` longer than ``max_backoff``
is not waited out: the error is raised with it, for the caller to decide.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRIED_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class Retries:
    """How many times to try again, and the waits between tries, in seconds."""

    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 30.0

    def wait(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt`` (1 for the first retry)."""
        ceiling = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        jittered = rng.uniform(0, ceiling)
        return max(jittered, retry_after or 0.0)


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for: a number of seconds or an HTTP date."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
