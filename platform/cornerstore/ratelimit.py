"""Rate limits that hold across workers: fixed-window counters in the database.

Each limited thing (a consumer's consent requests to one shop, a principal's
refused requests, failed authentications from one address) has a bucket; a
use adds one to the bucket's count for the current window in one atomic
upsert, and past the limit the request is answered 429 with Retry-After.

The counts are written on connections of their own, autocommitted and (on
PostgreSQL) without waiting for the disk: a refused request rolls its own
transaction back, yet its count must stay, and a count lost in a database
crash only lets a few more requests through.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from cornerstore.db import make_engine
from cornerstore.errors import TooManyRequests
from cornerstore.models.ratelimits import RateCount

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def window_of(now: datetime, window: timedelta) -> datetime:
    """The start of the fixed window ``now`` falls in."""
    size = window.total_seconds()
    return _EPOCH + timedelta(seconds=math.floor((now - _EPOCH).total_seconds() / size) * size)


class RateLimiter:
    def __init__(self, url: str) -> None:
        self._postgres = make_url(url).get_backend_name() == "postgresql"
        extra: dict[str, Any] = (
            {"connect_args": {"options": "-c synchronous_commit=off"}, "pool_size": 2}
            if self._postgres
            else {}
        )
        self._engine: Engine = make_engine(
            url, isolation_level="AUTOCOMMIT", pool_reset_on_return=None, **extra
        )

    def close(self) -> None:
        self._engine.dispose()

    def hit(self, bucket: str, limit: int | None, window: timedelta, now: datetime) -> None:
        """Count one use; raise :class:`TooManyRequests` if it goes past ``limit`` (None: none)."""
        if limit is None:
            return
        start = window_of(now, window)
        insert = postgresql.insert if self._postgres else sqlite.insert
        statement = (
            insert(RateCount)
            .values(bucket=bucket[:200], window_start=start, count=1)
            .on_conflict_do_update(
                index_elements=[RateCount.bucket, RateCount.window_start],
                set_={"count": RateCount.count + 1},
            )
            .returning(RateCount.count)
        )
        with self._engine.connect() as connection:
            count = connection.execute(statement).scalar_one()
        if count > limit:
            retry_after = math.ceil((start + window - now).total_seconds())
            raise TooManyRequests(max(retry_after, 1))
