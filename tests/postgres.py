"""The PostgreSQL half of the suite: a database of its own for each test worker."""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from cornerstore.db import scratch_database

POSTGRES_ADMIN_URL = os.environ.get(
    "CORNERSTORE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def postgres_database(worker: str) -> Generator[str]:
    """A new database for ``worker``, dropped afterwards.

    Without a reachable server the PostgreSQL half is skipped with the reason,
    except under ``CI=true``, where that fails the run.
    """
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        message = f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {type(exc).__name__}"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: the PostgreSQL half may not be skipped)")
        pytest.skip(message)
    finally:
        admin.dispose()
    with scratch_database(POSTGRES_ADMIN_URL, f"cornerstore_test_{worker}") as url:
        yield url
