"""Review findings, each held down by a test: an unhandled error says nothing and
ends in the app, request bodies have a cap, the demo refuses a real hub, and the
PostgreSQL COPY path has a span.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import uuid
from collections.abc import Iterator, Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

import anyio
import pytest
import sqlalchemy.exc
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.types import Message

from cornerstore import telemetry
from cornerstore.settings import Settings, get_settings
from hub import cli
from hub.app import create_app
from hub.runtime import Hub
from tests.conftest import wipe
from tests.factories import World, sale

SECRET = "secret-sku-123"
INTERNAL_ERROR = {"error": "internal_error", "detail": "internal error", "fields": []}
UNAVAILABLE = {
    "error": "unavailable",
    "detail": "the service cannot answer safely right now; retry later",
    "fields": [],
}


@pytest.fixture(scope="module")
def span_exporter() -> Iterator[InMemorySpanExporter]:
    """An in-memory exporter on the process's provider, shut down after this module."""
    exporter = InMemorySpanExporter()
    telemetry.provider().add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


def _span_texts(span: ReadableSpan) -> Iterator[str]:
    yield span.name
    yield span.status.description or ""
    yield from (str(v) for v in (span.attributes or {}).values())
    for event in span.events:
        yield event.name
        yield from (str(v) for v in (event.attributes or {}).values())


def _log_texts(caplog: pytest.LogCaptureFixture) -> Iterator[str]:
    yield caplog.text
    for record in caplog.records:
        yield from (record.getMessage(), repr(record.args), record.exc_text or "")


# --- 1. an unhandled exception says nothing and ends in the app -----------------------------


@pytest.fixture
def failing_app(app: FastAPI) -> FastAPI:
    """The real app plus test-only routes that fail with shop data in the message."""

    def boom() -> None:
        raise ValueError(SECRET)

    def pool_exhausted() -> None:
        raise sqlalchemy.exc.TimeoutError(SECRET)

    def half_sent() -> StreamingResponse:
        def chunks() -> Iterator[bytes]:
            yield b"partial"
            raise ValueError(SECRET)

        return StreamingResponse(chunks(), media_type="text/plain")

    app.add_api_route("/_test/boom", boom)
    app.add_api_route("/_test/pool", pool_exhausted)
    app.add_api_route("/_test/half", half_sent)
    return app


@dataclasses.dataclass
class Served:
    status: int | None
    headers: dict[str, str]
    body: bytes
    pulled: int


def _serve(
    app: FastAPI,
    method: str,
    path: str,
    chunks: list[bytes] | None = None,
    *,
    content_length: int | None = None,
) -> Served:
    """One request straight over ASGI, run the way uvicorn runs it.

    Like uvicorn's ``run_asgi``, whatever the app lets out is logged with its
    traceback on ``uvicorn.error``. Also counts the body chunks the app pulled.
    """
    chunks = chunks if chunks is not None else [b""]
    headers = [(b"host", b"testserver"), (b"content-type", b"application/json")]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    pulled = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal pulled
        if pulled == len(chunks):
            return {"type": "http.disconnect"}
        pulled += 1
        return {
            "type": "http.request",
            "body": chunks[pulled - 1],
            "more_body": pulled < len(chunks),
        }

    async def send(message: Message) -> None:
        sent.append(message)

    async def run_asgi() -> None:
        try:
            await app(scope, receive, send)
        except BaseException as exc:
            logging.getLogger("uvicorn.error").error(
                "Exception in ASGI application\n", exc_info=exc
            )

    anyio.run(run_asgi)
    start = next((m for m in sent if m["type"] == "http.response.start"), {})
    answered = {k.decode().lower(): v.decode() for k, v in start.get("headers", [])}
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Served(start.get("status"), answered, body, pulled)


def test_an_unhandled_error_is_a_bare_500_that_logs_no_message(
    failing_app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    with TestClient(failing_app, raise_server_exceptions=False) as client:
        response = client.get("/_test/boom")
    assert response.status_code == 500
    assert response.json() == INTERNAL_ERROR

    caplog.clear()
    caplog.set_level(logging.DEBUG)
    served = _serve(failing_app, "GET", "/_test/boom")
    assert served.status == 500
    assert json.loads(served.body) == INTERNAL_ERROR
    assert [r.name for r in caplog.records if r.name.startswith("uvicorn")] == []
    assert all(SECRET not in text for text in _log_texts(caplog))
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == ["unhandled error: ValueError"]


def test_an_error_after_the_response_started_just_ends_it(
    failing_app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    served = _serve(failing_app, "GET", "/_test/half")
    assert served.status == 200
    assert served.body == b"partial"
    assert [r.name for r in caplog.records if r.name.startswith("uvicorn")] == []
    assert all(SECRET not in text for text in _log_texts(caplog))


def test_an_unhandled_error_leaves_no_message_on_any_span(
    failing_app: FastAPI, hub: Hub, span_exporter: InMemorySpanExporter
) -> None:
    telemetry.instrument(failing_app, hub.engine, hub.settings, force=True)
    try:
        with TestClient(failing_app, raise_server_exceptions=False) as client:
            span_exporter.clear()
            response = client.get("/_test/boom")
        assert response.status_code == 500
        assert response.json() == INTERNAL_ERROR
        spans = span_exporter.get_finished_spans()
    finally:
        FastAPIInstrumentor.uninstrument_app(failing_app)
        span_exporter.clear()
    assert any(s.kind is SpanKind.SERVER for s in spans), [s.name for s in spans]
    assert [(s.name, t) for s in spans for t in _span_texts(s) if SECRET in t] == []


def test_an_exhausted_pool_is_a_503(failing_app: FastAPI) -> None:
    with TestClient(failing_app) as client:
        response = client.get("/_test/pool")
    assert response.status_code == 503
    assert response.json() == UNAVAILABLE


# --- 2. request bodies have a cap -------------------------------------------------------------

LIMIT = 64


@pytest.fixture
def capped_app(hub: Hub) -> Iterator[FastAPI]:
    settings = hub.settings.model_copy(update={"max_body_bytes": LIMIT})
    yield create_app(dataclasses.replace(hub, settings=settings))
    wipe(hub.engine)


def _post(app: FastAPI, chunks: list[bytes], *, content_length: int | None) -> Served:
    """POST ``chunks`` to an ingestion endpoint as an anonymous client."""
    path = f"/v1/shops/{uuid.uuid4()}/sales"
    return _serve(app, "POST", path, chunks, content_length=content_length)


def _assert_too_large(status: int | None, headers: Mapping[str, str], body: Any) -> None:
    assert status == 413
    assert body == {"error": "payload_too_large", "detail": body["detail"], "fields": []}
    assert str(LIMIT) in body["detail"]
    # The server may drop the rest of the body rather than read it for the next request.
    assert headers["connection"] == "close"


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(capped_app: FastAPI) -> None:
    served = _post(capped_app, [b"x" * (LIMIT + 1)], content_length=LIMIT + 1)
    _assert_too_large(served.status, served.headers, json.loads(served.body))
    assert served.pulled == 0

    with TestClient(capped_app) as client:
        response = client.post(f"/v1/shops/{uuid.uuid4()}/sales", content=b"{" * (LIMIT + 1))
    _assert_too_large(response.status_code, response.headers, response.json())


def test_a_chunked_body_is_refused_once_it_grows_past_the_limit(capped_app: FastAPI) -> None:
    served = _post(capped_app, [b"x" * (LIMIT // 2 + 1)] * 50, content_length=None)
    _assert_too_large(served.status, served.headers, json.loads(served.body))
    assert served.pulled == 2


def test_a_body_within_the_limit_goes_on_to_the_app(capped_app: FastAPI) -> None:
    served = _post(capped_app, [b'{"records": []}'], content_length=None)
    assert served.status == 401
    assert json.loads(served.body)["error"] == "unauthenticated"


def test_the_body_limit_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CORNERSTORE_MAX_BODY_BYTES", raising=False)
    assert Settings(_env_file=None).max_body_bytes == 32 * 1024 * 1024
    monkeypatch.setenv("CORNERSTORE_MAX_BODY_BYTES", "1024")
    assert Settings(_env_file=None).max_body_bytes == 1024


# --- 3. the demo refuses a real hub, and --reset deletes only its own files -------------------


def _demo(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    get_settings.cache_clear()
    code = cli.main(["demo", "--no-serve", "--shops", "1", "--days", "1", *argv])
    get_settings.cache_clear()
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("environment", "database_url"),
    [
        ("production", "postgresql+psycopg://hub:s3cr3t-pw@127.0.0.1:1/hub"),
        ("development", "postgresql+psycopg://hub:s3cr3t-pw@127.0.0.1:1/hub"),
        ("test", None),
    ],
    ids=["production-postgresql", "development-postgresql", "test-sqlite"],
)
def test_the_demo_refuses_anything_but_development_on_sqlite(
    cli_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    environment: str,
    database_url: str | None,
) -> None:
    data_dir = tmp_path / "hub-data"
    data_dir.mkdir()
    (data_dir / "precious.txt").write_text("keep me", encoding="utf-8")
    cli_env.setenv("CORNERSTORE_ENVIRONMENT", environment)
    cli_env.setenv("CORNERSTORE_DATA_DIR", str(data_dir))
    cli_env.setenv("CORNERSTORE_MASTER_KEY_FILE", str(data_dir / "master.key"))
    if database_url is not None:
        cli_env.setenv("CORNERSTORE_DATABASE_URL", database_url)

    code, out, err = _demo(capsys, "--reset")

    assert code == 2
    assert out == ""
    assert err.startswith("cornerstore: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert "s3cr3t-pw" not in err
    assert sorted(p.name for p in data_dir.iterdir()) == ["precious.txt"]


def test_demo_reset_deletes_only_the_demos_own_files(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data_dir = tmp_path / "demo"
    cli_env.setenv("CORNERSTORE_DATA_DIR", str(data_dir))
    code, out, err = _demo(capsys)
    assert code == 0, err
    first_key = (data_dir / "master.key").read_bytes()
    (data_dir / "notes.txt").write_text("mine", encoding="utf-8")
    (data_dir / "backups").mkdir()
    (data_dir / "backups" / "old.db").write_bytes(b"mine too")

    code, out, err = _demo(capsys, "--reset")

    assert code == 0, err
    assert "already" not in out
    assert "loading 1 shops" in out
    assert (data_dir / "master.key").read_bytes() != first_key
    # The key store holds the one demo shop's key, not the deleted shops' keys too.
    with closing(sqlite3.connect(data_dir / "shop-keys.db")) as store:
        assert store.execute("SELECT count(*) FROM shop_keys").fetchone() == (1,)
    assert (data_dir / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert (data_dir / "backups" / "old.db").read_bytes() == b"mine too"


# --- 4. the PostgreSQL COPY path has a span ---------------------------------------------------


def test_the_copy_path_has_a_span_with_the_row_count_only(
    world: World, hub: Hub, span_exporter: InMemorySpanExporter
) -> None:
    if hub.engine.dialect.name != "postgresql":
        pytest.skip("COPY is the PostgreSQL ingestion path")
    shop = world.shop()
    records = [sale(i, sku=f"{SECRET}-{i}") for i in range(3)]
    span_exporter.clear()
    world.ingest(shop, "sales", records)
    world.ingest(shop, "sales", [*records, sale(3, sku=f"{SECRET}-3")])  # duplicates: staging path

    spans = [s for s in span_exporter.get_finished_spans() if s.name == "db.copy shop_records"]
    assert [dict(s.attributes or {}) for s in spans] == [
        {"db.system": "postgresql", "cornerstore.records": 3},
        {"db.system": "postgresql", "cornerstore.records": 4},
    ]
    assert all(s.kind is SpanKind.CLIENT for s in spans)
    assert [t for s in spans for t in _span_texts(s) if SECRET in t] == []
