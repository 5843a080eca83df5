"""What an operator notices: the CLI, start-up refusals, the master key, settings,
migrations that match the models, and the demo.

CLI commands run in-process through ``hub.cli.main`` with the
environment an operator would set. ``uvicorn.run`` is replaced by a guard in
every CLI test, so a refusal that fails to happen shows up as a failing test
rather than as a server that never returns.
"""

from __future__ import annotations

import json
import os
import re
import stat
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from pydantic import ValidationError

from analytics.cache import RollupCache
from audit.signing import SignerSource
from audit.writer import AuditWriter
from consent.enforcement import ConsentEnforcer
from consent.receipts import ReceiptSigner
from cornerstore.authz import Authorizer
from cornerstore.crypto import KeyMaterialError
from cornerstore.db import make_engine, make_sessionmaker
from cornerstore.keys.localfile import LocalKeyProvider
from cornerstore.keys.ring import KeyRing
from cornerstore.migrations import SCRIPT_LOCATION, NotMigrated, current_revisions, upgrade
from cornerstore.models import metadata
from cornerstore.ratelimit import RateLimiter
from cornerstore.settings import Environment, Settings, TraceExporter, get_settings
from hub import cli
from hub.app import create_app, serve_app
from hub.runtime import Hub
from tests.factories import ShopSetup, World, sale

API_KEY = re.compile(r"cs_[A-Za-z0-9_-]{20,}")


# --- helpers ----------------------------------------------------------------------------------


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    def _run(*argv: str) -> Run:
        capsys.readouterr()  # drop anything printed before
        get_settings.cache_clear()
        code = cli.main(list(argv))
        get_settings.cache_clear()
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return _run


def migrated_sqlite(tmp_path: Path) -> Settings:
    """Settings for a fresh, migrated SQLite database whose data dir holds no key yet."""
    settings = Settings(
        _env_file=None,
        environment=Environment.test,
        database_url=f"sqlite:///{tmp_path / 'fresh.db'}",
        data_dir=tmp_path / "data",
    )
    engine = make_engine(settings.sqlalchemy_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return settings


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- principals create ------------------------------------------------------------------------


def test_principals_create_json_prints_one_object_whose_key_works(
    cli_env: pytest.MonkeyPatch,
    run: Callable[..., Run],
    database_url: str,
    hub: Hub,
    client: TestClient,
) -> None:
    cli_env.setenv("CORNERSTORE_DATABASE_URL", database_url)
    cli_env.setenv("CORNERSTORE_DATA_DIR", str(hub.settings.data_dir))

    result = run("principals", "create", "--role", "admin", "--name", "night operator", "--json")

    assert result.code == 0, result.err
    assert result.err == ""
    lines = result.out.splitlines()
    assert len(lines) == 1, result.out
    created = json.loads(lines[0])
    assert set(created) == {"id", "name", "role", "api_key"}
    assert created["name"] == "night operator"
    assert created["role"] == "admin"
    uuid.UUID(created["id"])
    assert API_KEY.fullmatch(created["api_key"])

    headers = {"Authorization": f"Bearer {created['api_key']}"}
    audit = client.get("/v1/audit/events", headers=headers)
    assert audit.status_code == 403, audit.text  # known, but an admin reads no audit log
    assert audit.json()["error"] == "forbidden"
    shop = client.post("/v1/shops", json={"name": "Corner 1"}, headers=headers)
    assert shop.status_code == 201, shop.text


def test_principals_create_without_json_shows_the_key_once_in_words(
    cli_env: pytest.MonkeyPatch,
    run: Callable[..., Run],
    database_url: str,
    hub: Hub,
    client: TestClient,
) -> None:
    cli_env.setenv("CORNERSTORE_DATABASE_URL", database_url)
    cli_env.setenv("CORNERSTORE_DATA_DIR", str(hub.settings.data_dir))

    result = run("principals", "create", "--role", "auditor", "--name", "regulator")

    assert result.code == 0, result.err
    assert "created auditor regulator" in result.out
    keys = API_KEY.findall(result.out)
    assert len(keys) == 1
    events = client.get("/v1/audit/events", headers={"Authorization": f"Bearer {keys[0]}"})
    assert events.status_code == 200, events.text


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--role", "connector", "--name", "pos"], "a connector writes for exactly one shop"),
        (["--role", "shopkeeper", "--name", "wang"], "a shopkeeper keeps at least one shop"),
        (
            ["--role", "consumer", "--name", "lender", "--shop", str(uuid.UUID(int=1))],
            "a consumer is not tied to shops",
        ),
        (
            ["--role", "connector", "--name", "pos", "--shop", str(uuid.UUID(int=1))],
            "no such shop",
        ),
        (["--role", "connector", "--name", "pos", "--shop", "not-a-uuid"], "UUID"),
        (["--role", "admin", "--name", "   "], "name"),
    ],
)
def test_invalid_principal_input_is_one_clear_line_not_a_traceback(
    cli_env: pytest.MonkeyPatch,
    run: Callable[..., Run],
    database_url: str,
    hub: Hub,
    client: TestClient,
    argv: list[str],
    expected: str,
) -> None:
    cli_env.setenv("CORNERSTORE_DATABASE_URL", database_url)
    cli_env.setenv("CORNERSTORE_DATA_DIR", str(hub.settings.data_dir))

    result = run("principals", "create", *argv)

    assert result.code != 0
    assert result.out == ""
    assert result.err.startswith("cornerstore: "), result.err
    assert expected in result.err
    assert "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1
    with hub.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM principals").scalar() == 0


def test_an_unknown_role_is_rejected_by_the_parser(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["principals", "create", "--role", "wizard", "--name", "x"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'wizard'" in err
    assert "Traceback" not in err


# --- start-up refusals and migrations ---------------------------------------------------------


def test_hub_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        environment=Environment.test,
        database_url=f"sqlite:///{tmp_path / 'empty.db'}",
        data_dir=tmp_path / "data",
    )
    with pytest.raises(NotMigrated, match="cornerstore db upgrade") as refused:
        Hub.open(settings)
    assert "empty" in str(refused.value)
    assert not settings.master_key_path.exists()


def test_serve_refuses_an_unmigrated_database_then_db_upgrade_makes_it_start(
    cli_env: pytest.MonkeyPatch, run: Callable[..., Run], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    cli_env.setenv("CORNERSTORE_DATA_DIR", str(data_dir))

    refused = run("serve")

    assert refused.code == 2
    assert refused.out == ""
    assert refused.err.startswith("cornerstore: the database is empty")
    assert "run: cornerstore db upgrade" in refused.err
    assert "Traceback" not in refused.err
    assert not (data_dir / "master.key").exists()

    upgraded = run("db", "upgrade")
    assert upgraded.code == 0, upgraded.err
    assert "newest revision" in upgraded.out
    run("db", "upgrade")  # a second upgrade is harmless

    hub = Hub.open(get_settings())
    hub.close()

    started: list[tuple[Any, ...]] = []
    cli_env.setattr(uvicorn, "run", lambda *args, **kwargs: started.append((args, kwargs)))
    served = run("serve", "--port", "8123")
    assert served.code == 0, served.err
    assert served.err == ""
    assert len(started) == 1
    args, kwargs = started[0]
    assert args == ("hub.app:serve_app",)
    assert kwargs["factory"] is True
    assert kwargs["port"] == 8123

    # The factory each server worker calls builds a working app.
    with TestClient(serve_app()) as client:
        health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"


def test_migrations_produce_exactly_the_models_schema(hub: Hub) -> None:
    with hub.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        assert context.get_current_heads()
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_a_fresh_database_is_at_head_after_upgrade(tmp_path: Path) -> None:
    settings = migrated_sqlite(tmp_path)
    engine = make_engine(settings.sqlalchemy_url)
    try:
        assert current_revisions(engine) == set(ScriptDirectory(SCRIPT_LOCATION).get_heads())
        with engine.connect() as connection:
            diff = compare_metadata(
                MigrationContext.configure(connection, opts={"compare_type": True}), metadata
            )
    finally:
        engine.dispose()
    assert diff == []


# --- the master key ---------------------------------------------------------------------------


def test_master_key_is_created_private_on_first_start(tmp_path: Path) -> None:
    settings = migrated_sqlite(tmp_path)
    assert not settings.master_key_path.exists()

    Hub.open(settings).close()

    key = settings.master_key_path
    assert key.is_file()
    assert mode_of(key) == 0o600
    first = key.read_bytes()
    assert len(first) == 32
    Hub.open(settings).close()
    assert key.read_bytes() == first  # a restart keeps the key


def test_a_master_key_readable_by_others_is_refused(
    tmp_path: Path, cli_env: pytest.MonkeyPatch, run: Callable[..., Run]
) -> None:
    settings = migrated_sqlite(tmp_path)
    Hub.open(settings).close()
    settings.master_key_path.chmod(0o644)

    with pytest.raises(KeyMaterialError, match=r"chmod 600"):
        Hub.open(settings)

    cli_env.setenv("CORNERSTORE_DATABASE_URL", settings.sqlalchemy_url)
    cli_env.setenv("CORNERSTORE_DATA_DIR", str(settings.data_dir))
    refused = run("serve")
    assert refused.code == 2
    assert f"chmod 600 {settings.master_key_path}" in refused.err
    assert "Traceback" not in refused.err
    assert mode_of(settings.master_key_path) == 0o644  # the hub does not fix it silently


def _shop_with_a_sale(hub: Hub, sku: str) -> tuple[World, ShopSetup]:
    world = World(TestClient(create_app(hub)), hub)
    shop = world.shop()
    world.ingest(shop, "sales", [sale(1, sku=sku)])
    own = shop.keeper.get(f"/v1/shops/{shop.id}/sales")
    assert own.status_code == 200, own.text
    assert own.json()["records"][0]["sku"] == sku
    return world, shop


def test_a_missing_master_key_is_refused_once_data_exists(tmp_path: Path) -> None:
    settings = migrated_sqlite(tmp_path)
    hub = Hub.open(settings)
    try:
        _shop_with_a_sale(hub, "SKU-KEYTEST")
    finally:
        hub.close()
    settings.master_key_path.unlink()

    with pytest.raises(KeyMaterialError) as refused:
        Hub.open(settings)

    message = str(refused.value)
    assert "missing" in message
    assert str(settings.master_key_path) in message
    assert "backup" in message
    assert not settings.master_key_path.exists()  # no new key quietly replaces the lost one


def test_a_wrong_master_key_fails_closed(tmp_path: Path) -> None:
    sku = f"SKU-WRONGKEY-{uuid.uuid4().hex[:8]}"
    settings = migrated_sqlite(tmp_path)
    hub = Hub.open(settings)
    try:
        world, shop = _shop_with_a_sale(hub, sku)
        consumer = world.consumer()
        world.grant(shop, consumer, "analytics", ["sales"])
        allowed = consumer.get(f"/v1/shops/{shop.id}/sales", purpose="analytics")
        assert allowed.status_code == 200, allowed.text
        assert allowed.json()["records"][0]["sku"] == sku
    finally:
        hub.close()

    wrong_key = os.urandom(32)
    settings.master_key_path.write_bytes(wrong_key)
    assert mode_of(settings.master_key_path) == 0o600

    with pytest.raises(KeyMaterialError, match="not the key these data were written with"):
        Hub.open(settings)

    # Were a wrong key in use all the same, the gate must still let nothing out.
    engine = make_engine(settings.sqlalchemy_url)
    sessions = make_sessionmaker(engine)
    wrong = Hub(
        settings=settings,
        engine=engine,
        sessions=sessions,
        audit_writer=AuditWriter(sessions),
        signer=SignerSource(settings.audit_signing_key_path, settings.audit_log_origin),
        receipt_signer=ReceiptSigner(settings.receipt_signing_key_path),
        consent_check=ConsentEnforcer(settings.sqlalchemy_url),
        rate_limiter=RateLimiter(settings.sqlalchemy_url),
        rollup_cache=RollupCache(),
        authorizer=Authorizer(settings.policy_dir),
        keyring=KeyRing(
            LocalKeyProvider(
                settings.master_key_path, settings.key_store_path, may_create_master=False
            )
        ),
    )
    try:
        with TestClient(create_app(wrong)) as client:
            for api_key, params in (
                (shop.keeper.api_key, {}),
                (consumer.api_key, {"purpose": "analytics"}),
            ):
                response = client.get(
                    f"/v1/shops/{shop.id}/sales",
                    params=params,
                    headers={"Authorization": f"Bearer {api_key}"},
                )
                assert response.status_code == 503, response.text
                assert response.json() == {
                    "error": "unavailable",
                    "detail": "the service cannot answer safely right now; retry later",
                    "fields": [],
                }
                assert sku not in response.text
    finally:
        wrong.close()


# --- settings ---------------------------------------------------------------------------------


def test_production_needs_an_explicit_database_and_master_key(
    cli_env: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(environment=Environment.production)
    message = str(refused.value)
    assert "CORNERSTORE_DATABASE_URL" in message
    assert "CORNERSTORE_MASTER_KEY_FILE" in message

    cli_env.setenv("CORNERSTORE_DATABASE_URL", "postgresql+psycopg://hub@db/hub")
    with pytest.raises(ValidationError) as refused:
        Settings(environment=Environment.production)
    assert "CORNERSTORE_MASTER_KEY_FILE" in str(refused.value)
    assert "CORNERSTORE_DATABASE_URL" not in str(refused.value)


def test_settings_are_read_from_cornerstore_environment_variables(
    cli_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cli_env.setenv("CORNERSTORE_ENVIRONMENT", "production")
    cli_env.setenv("CORNERSTORE_DATABASE_URL", "postgresql+psycopg://hub:s3cr3t-pw@db:5432/hub")
    cli_env.setenv("CORNERSTORE_MASTER_KEY_FILE", str(tmp_path / "keys" / "master.key"))
    cli_env.setenv("CORNERSTORE_DATA_DIR", str(tmp_path / "var"))
    cli_env.setenv("CORNERSTORE_PAGE_SIZE_DEFAULT", "42")
    cli_env.setenv("CORNERSTORE_TRACE_EXPORTER", "console")

    settings = get_settings()

    assert settings.environment is Environment.production
    assert settings.sqlalchemy_url == "postgresql+psycopg://hub:s3cr3t-pw@db:5432/hub"
    assert settings.master_key_path == tmp_path / "keys" / "master.key"
    assert settings.data_dir == tmp_path / "var"
    assert settings.page_size_default == 42
    assert settings.trace_exporter is TraceExporter.console
    assert "s3cr3t-pw" not in repr(settings)
    assert "s3cr3t-pw" not in str(settings)


def test_settings_read_a_dot_env_file_and_the_environment_wins(
    cli_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        "CORNERSTORE_PAGE_SIZE_DEFAULT=7\nCORNERSTORE_INGEST_MAX_RECORDS=99\n", encoding="utf-8"
    )
    cli_env.setenv("CORNERSTORE_INGEST_MAX_RECORDS", "11")
    settings = get_settings()
    assert settings.page_size_default == 7
    assert settings.ingest_max_records == 11


def test_a_bad_setting_names_the_setting(cli_env: pytest.MonkeyPatch) -> None:
    cli_env.setenv("CORNERSTORE_PAGE_SIZE_DEFAULT", "0")
    with pytest.raises(ValidationError, match="page_size_default"):
        get_settings()


# --- the demo ---------------------------------------------------------------------------------

DEMO_ROLES = re.compile(
    r"^  (admin|auditor|consumer|shopkeeper|connector)\s+(cs_[A-Za-z0-9_-]+)", re.MULTILINE
)
CURL = re.compile(r"^  curl -s -H 'Authorization: Bearer (cs_\S+)' \"(http://[^\"]+)\"$", re.M)


SIGN_IN_LINK = re.compile(r"^  (.+): http://127\.0\.0\.1:8000/sign-in\?token=(\S+)$", re.MULTILINE)


def test_demo_loads_once_and_prints_working_keys_and_curl_lines(
    cli_env: pytest.MonkeyPatch, run: Callable[..., Run], tmp_path: Path
) -> None:
    data_dir = tmp_path / "demo"
    cli_env.setenv("CORNERSTORE_DATA_DIR", str(data_dir))

    first = run("demo", "--no-serve", "--shops", "3", "--days", "2")

    assert first.code == 0, first.err
    assert "Traceback" not in first.err
    assert "loading 3 shops" in first.out
    roles: dict[str, list[str]] = {}
    for role, key in DEMO_ROLES.findall(first.out):
        roles.setdefault(role, []).append(key)
    assert {role: len(keys) for role, keys in roles.items()} == {
        "admin": 1,
        "auditor": 1,
        "consumer": 3,
        "shopkeeper": 1,
        "connector": 1,
    }
    printed_keys = {key for keys in roles.values() for key in keys}
    assert len(printed_keys) == 7
    shop = re.search(r"^  export SHOP=([0-9a-f-]{36})$", first.out, re.MULTILINE)
    assert shop is not None
    curls = CURL.findall(first.out)
    assert len(curls) >= 3
    assert {key for key, _url in curls} <= printed_keys
    assert mode_of(data_dir / "master.key") == 0o600

    # Each curl line does what its comment says, against the data the demo loaded.
    comments = re.findall(r"^  # (.+)\n  curl ", first.out, re.MULTILINE)
    assert len(comments) == len(curls)
    hub = Hub.open(get_settings())
    try:
        with TestClient(create_app(hub)) as client:
            for comment, (key, url) in zip(comments, curls, strict=True):
                path = url.removeprefix("http://127.0.0.1:8000").replace("$SHOP", shop.group(1))
                response = client.get(path, headers={"Authorization": f"Bearer {key}"})
                expected = 404 if "404" in comment else 200
                assert response.status_code == expected, (comment, response.text)
                if expected == 200:
                    body = response.json()
                    assert body.get("records", body.get("events", body.get("consents"))), comment
            # One sign-in link for the auditor and each shopkeeper; a shopkeeper's opens its shop.
            links = SIGN_IN_LINK.findall(first.out)
            assert links[0][0] == "City market regulator"
            assert len(links) == 1 + 3
            keeper_token = links[1][1]
            home = client.post("/sign-in", data={"token": keeper_token})
            assert home.status_code == 200, home.text
            assert "/portal/shops/" in str(home.url)
    finally:
        hub.close()

    second = run("demo", "--no-serve", "--shops", "3", "--days", "2")

    assert second.code == 0, second.err
    assert "already" in second.out
    assert str(data_dir) in second.out
    assert API_KEY.search(second.out) is None
    assert "curl" not in second.out
    # Links expire within minutes: every start prints fresh ones.
    assert len(SIGN_IN_LINK.findall(second.out)) == 1 + 3
