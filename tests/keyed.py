"""Hubs of their own for key tests: a fresh database and fresh key material per test.

The key tests rotate, destroy and restore keys, so they cannot share the
session's hub. ``keyed`` runs each of them with both key providers, the key
file and a SoftHSM2 token (PKCS#11), on both databases.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from cornerstore.db import make_engine
from cornerstore.migrations import upgrade
from cornerstore.settings import Environment, KeyProviderKind, Settings
from hub.app import create_app
from hub.runtime import Hub
from tests.factories import World
from tests.postgres import postgres_database

PROVIDERS = ("file", "pkcs11")


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def backup(url: str, dest: Path) -> Path:
    """What an operator's backup of the database holds (``pg_dump``, or SQLite's backup API).

    The dump is uncompressed, so a test can search it for plaintext.
    """
    if url.startswith("sqlite"):
        source = sqlite3.connect(make_url(url).database or "")
        target = sqlite3.connect(dest)
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
        return dest
    pg_dump = shutil.which("pg_dump")
    assert pg_dump, "pg_dump is needed to back up PostgreSQL"
    subprocess.run(  # noqa: S603 (the installed pg_dump, our own arguments)
        [pg_dump, "--format=custom", "--compress=0", "--file", str(dest), _libpq(url)],
        check=True,
        capture_output=True,
    )
    return dest


def restore(dump: Path, url: str) -> None:
    """Restore ``dump`` into the empty database at ``url``."""
    if url.startswith("sqlite"):
        source = sqlite3.connect(dump)
        target = sqlite3.connect(make_url(url).database or "")
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
        return
    pg_restore = shutil.which("pg_restore")
    assert pg_restore, "pg_restore is needed to restore PostgreSQL"
    subprocess.run(  # noqa: S603 (the installed pg_restore, our own arguments)
        [pg_restore, "--no-owner", "--exit-on-error", "--dbname", _libpq(url), str(dump)],
        check=True,
        capture_output=True,
    )


@dataclass
class Keyed:
    """Settings for a fresh database and fresh key material, with ways to open hubs on them."""

    settings: Settings
    provider: str
    fresh_database: Callable[[], str]

    def with_database(self, url: str) -> Settings:
        return self.settings.model_copy(update={"database_url": _secret(url)})

    def env(self, settings: Settings | None = None) -> dict[str, str]:
        """The same settings as ``CORNERSTORE_*`` variables, for a command in another process."""
        settings = settings or self.settings
        env = {
            "CORNERSTORE_ENVIRONMENT": settings.environment.value,
            "CORNERSTORE_DATABASE_URL": settings.sqlalchemy_url,
            "CORNERSTORE_DATA_DIR": str(settings.data_dir),
            "CORNERSTORE_KEY_PROVIDER": settings.key_provider.value,
        }
        if settings.key_provider is KeyProviderKind.pkcs11:
            assert settings.pkcs11_pin is not None
            env |= {
                "CORNERSTORE_PKCS11_LIBRARY": str(settings.pkcs11_library),
                "CORNERSTORE_PKCS11_TOKEN_LABEL": str(settings.pkcs11_token_label),
                "CORNERSTORE_PKCS11_PIN": settings.pkcs11_pin.get_secret_value(),
            }
        return env


def _secret(url: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(url)


def migrate(url: str) -> None:
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


@pytest.fixture
def fresh_database(database_url: str, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Makes empty databases of the session's backend; PostgreSQL ones are dropped afterwards."""
    made: list[Generator[str]] = []

    def make() -> str:
        if database_url.startswith("sqlite"):
            return f"sqlite:///{tmp_path / f'db-{uuid.uuid4().hex[:8]}.db'}"
        databases = postgres_database(os.environ.get("PYTEST_XDIST_WORKER", "main"))
        made.append(databases)
        return next(databases)

    yield make
    for databases in made:
        databases.close()


@pytest.fixture(params=PROVIDERS)
def keyed(
    request: pytest.FixtureRequest, fresh_database: Callable[[], str], tmp_path: Path
) -> Keyed:
    overrides: dict[str, Any] = {}
    if request.param == "pkcs11":
        token = request.getfixturevalue("softhsm").init_token()
        overrides = {
            "key_provider": KeyProviderKind.pkcs11,
            "pkcs11_library": token.library,
            "pkcs11_token_label": token.label,
            "pkcs11_pin": _secret(token.pin),
        }
    url = fresh_database()
    migrate(url)
    settings = Settings(
        _env_file=None,
        environment=Environment.test,
        database_url=_secret(url),
        data_dir=tmp_path / "data",
        **overrides,
    )
    return Keyed(settings, request.param, fresh_database)


@pytest.fixture
def keyed_hub(keyed: Keyed) -> Iterator[Hub]:
    hub = Hub.open(keyed.settings)
    yield hub
    hub.close()


@pytest.fixture
def keyed_world(keyed_hub: Hub) -> Iterator[World]:
    with TestClient(create_app(keyed_hub)) as client:
        yield World(client, keyed_hub)
