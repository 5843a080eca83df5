"""Test fixtures: every test runs once on SQLite and once on a real PostgreSQL.

The PostgreSQL half needs a server (``CORNERSTORE_TEST_POSTGRES_URL``, by
default the local one). Without one the PostgreSQL tests are skipped with a
reason in the summary, except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from cornerstore.db import make_engine
from cornerstore.migrations import upgrade
from cornerstore.models import metadata
from cornerstore.settings import Environment, Settings, get_settings
from hub.app import create_app
from hub.runtime import Hub
from tests.browser import browser  # noqa: F401 (a fixture)
from tests.cli import cli  # noqa: F401 (a fixture)
from tests.factories import World
from tests.keyed import fresh_database, keyed, keyed_hub, keyed_world  # noqa: F401 (fixtures)
from tests.postgres import postgres_database
from tests.scripted import scripted  # noqa: F401 (a fixture)
from tests.softhsm import softhsm  # noqa: F401 (a fixture)

BACKENDS = ("sqlite", "postgresql")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run tests marked ``one_backend`` on SQLite only, and ``strictest_backend`` on
    PostgreSQL only.

    ``one_backend`` tests what lies above the database (pages in a browser, the
    SDK over HTTP), through services whose database behaviour the API tests
    already cover on both; a second run on PostgreSQL would double their
    minutes and test nothing new. ``strictest_backend`` is the API fuzzing: a
    search for inputs that break something, and PostgreSQL, with its stricter
    types (a NUL in text, an integer's width), breaks on all SQLite would and
    more; the handwritten bad-input tests still run on both. They are
    deselected, so the summary counts them.
    """
    dropped = [
        item
        for item in items
        if getattr(item, "callspec", None) is not None
        and (
            (
                item.get_closest_marker("one_backend")
                and item.callspec.params.get("database_url") == "postgresql"  # type: ignore[attr-defined]
            )
            or (
                item.get_closest_marker("strictest_backend")
                and item.callspec.params.get("database_url") == "sqlite"  # type: ignore[attr-defined]
            )
        )
    ]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        gone = set(dropped)
        items[:] = [item for item in items if item not in gone]


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'cornerstore.db'}"
    else:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        yield from postgres_database(worker)


def make_settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(
        environment=Environment.test,
        database_url=database_url,
        data_dir=data_dir,
        # Tests record expiries when they mean to (consent.expiry.record_expiries),
        # so that no background change races the versions they count.
        expiry_record_interval_seconds=None,
        # Likewise the analytics rollups (analytics.rollups.build_round).
        rollup_interval_seconds=None,
        # The tests' webhook receivers listen on this machine.
        webhook_private_hosts=["127.0.0.1", "localhost"],
        # Many tests are refused on purpose, all from one address; the limits
        # have tests of their own (tests/test_rate_limits.py).
        rate_consent_requests_per_day=None,
        rate_refusals_per_minute=None,
        rate_failed_logins_per_minute=None,
    )


@pytest.fixture(scope="session")
def hub(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """One migrated database and one hub per backend for the whole session."""
    settings = make_settings(database_url, tmp_path_factory.mktemp("data"))
    engine = make_engine(settings.sqlalchemy_url)
    upgrade(engine)
    hub = Hub.open(settings, engine=engine)
    yield hub
    hub.close()


def wipe(engine: Engine) -> None:
    """Empty every table and reset the audit chain, so each test starts clean.

    The records of which master key is active and which keys sign checkpoints
    and receipts stay: they describe the hub's key material, which outlives
    each test.
    """
    with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            if table.name not in ("master_keys", "audit_signing_keys", "consent_receipt_keys"):
                connection.execute(table.delete())
        connection.execute(
            text("INSERT INTO audit_head (id, seq, entry_hash) VALUES (1, 0, :h)"),
            {"h": bytes(32)},
        )
        connection.execute(text("INSERT INTO audit_daily_count_mark (id, seq) VALUES (1, 0)"))


@pytest.fixture
def app(hub: Hub) -> Iterator[FastAPI]:
    yield create_app(hub)
    wipe(hub.engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def world(client: TestClient, hub: Hub) -> World:
    return World(client, hub)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """A clean operator shell: no CORNERSTORE_* variables, no stray .env, no cached settings."""
    for name in list(os.environ):
        if name.startswith("CORNERSTORE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)

    def no_server(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("the command started a server")

    monkeypatch.setattr(uvicorn, "run", no_server)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()
