"""The API's contract as a client sees it: every error has one shape, the
OpenAPI document lists the whole interface, and neither traces nor logs carry
keys or shop data.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from consent import enforcement
from cornerstore import telemetry
from hub.runtime import Hub
from tests.factories import World, payment, sale

ERROR_KEYS = {"error", "detail", "fields"}
ERROR_REF = "#/components/schemas/ErrorBody"
CATEGORIES = ("sales", "inventory", "payments")

#: The whole interface: (method, path template) as the OpenAPI document names them.
INTERFACE = {
    ("post", "/v1/principals"),
    ("post", "/v1/shops"),
    *((method, f"/v1/shops/{{shop_id}}/{c}") for c in CATEGORIES for method in ("post", "get")),
    ("get", "/v1/shops/{shop_id}/consents"),
    ("post", "/v1/shops/{shop_id}/consents"),
    ("post", "/v1/shops/{shop_id}/consents/{consent_id}/revoke"),
    ("post", "/v1/shops/{shop_id}/consents/{consent_id}/pause"),
    ("post", "/v1/shops/{shop_id}/consents/{consent_id}/resume"),
    ("post", "/v1/shops/{shop_id}/pause-sharing"),
    ("post", "/v1/shops/{shop_id}/resume-sharing"),
    ("post", "/v1/shops/{shop_id}/consent-requests"),
    ("post", "/v1/shops/{shop_id}/consent-requests/{request_id}/approve"),
    ("post", "/v1/shops/{shop_id}/consent-requests/{request_id}/refuse"),
    ("get", "/v1/shops/{shop_id}/consents/{consent_id}/receipt"),
    ("get", "/v1/shops/{shop_id}/access-log"),
    ("get", "/v1/audit/events"),
}


def assert_error(body: Any, code: str) -> None:
    assert isinstance(body, dict)
    assert set(body) == ERROR_KEYS, body
    assert body["error"] == code, body
    assert isinstance(body["detail"], str)
    assert body["detail"].strip()
    assert isinstance(body["fields"], list)


# --- one error shape --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer not-a-cornerstore-key",
        "Basic dXNlcjpwYXNz",
        "cs_" + "A" * 43,  # a key without the scheme
        "Bearer cs_" + "A" * 43,  # well formed, but no such principal
    ],
    ids=[
        "none",
        "empty",
        "scheme-only",
        "scheme-space",
        "malformed",
        "basic",
        "no-scheme",
        "unknown",
    ],
)
def test_401_without_a_valid_key(client: TestClient, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path in (
        ("GET", "/v1/audit/events"),
        ("POST", "/v1/shops"),
        ("GET", f"/v1/shops/{uuid.uuid4()}/sales"),
    ):
        response = client.request(method, path, headers=headers, json={"name": "x"})
        assert response.status_code == 401, (method, path, response.text)
        body = response.json()
        assert body == {"error": "unauthenticated", "detail": body["detail"], "fields": []}
        assert "Bearer" in body["detail"]
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_real_key_is_accepted_where_a_forged_one_is_not(world: World) -> None:
    admin = world.admin
    forged = admin.api_key[:-4] + ("AAAA" if not admin.api_key.endswith("AAAA") else "BBBB")
    ok = world.client.post("/v1/shops", json={"name": "x"}, headers=admin.headers)
    assert ok.status_code == 201, ok.text
    refused = world.client.post(
        "/v1/shops", json={"name": "x"}, headers={"Authorization": f"Bearer {forged}"}
    )
    assert refused.status_code == 401
    assert_error(refused.json(), "unauthenticated")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/nope"), ("GET", "/v1"), ("POST", "/v2/shops"), ("GET", "/v1/shops/x/y/z")],
)
def test_unknown_route_is_a_404_in_the_error_shape(
    client: TestClient, method: str, path: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert_error(response.json(), "not_found")
    assert response.json()["fields"] == []


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/v1/shops", {"POST"}),
        ("DELETE", "/v1/principals", {"GET", "HEAD", "POST"}),
        ("PUT", "/v1/audit/events", {"GET", "HEAD"}),
        ("DELETE", f"/v1/shops/{uuid.UUID(int=7)}/sales", {"GET", "HEAD", "POST"}),
    ],
)
def test_wrong_method_is_a_405_in_the_error_shape(
    client: TestClient, method: str, path: str, allowed: set[str]
) -> None:
    response = client.request(method, path)
    assert response.status_code == 405
    assert_error(response.json(), "method_not_allowed")
    assert response.json()["fields"] == []
    # RFC 9110: a 405 names the methods the resource does support.
    allow = {m.strip() for m in response.headers.get("allow", "").split(",") if m.strip()}
    assert allow
    assert allow <= allowed


@pytest.mark.parametrize(
    "path",
    [
        "/v1/shops/not-a-uuid/sales?purpose=analytics",
        "/v1/shops/12345/consents",
        "/v1/shops/not-a-uuid/access-log",
    ],
)
def test_a_bad_uuid_in_the_path_is_a_422_naming_path_shop_id(world: World, path: str) -> None:
    response = world.client.get(path, headers=world.admin.headers)
    assert response.status_code == 422, response.text
    body = response.json()
    assert_error(body, "validation_failed")
    assert "path.shop_id" in [f["field"] for f in body["fields"]]
    assert all(set(f) == {"field", "reason"} for f in body["fields"])


def test_invalid_json_is_a_422_that_does_not_echo_the_body(world: World) -> None:
    shop = world.shop()
    secret = f"SKU-ECHO-{uuid.uuid4().hex}"
    response = world.client.post(
        f"/v1/shops/{shop.id}/sales",
        content=f'{{"records": [{{"sku": "{secret}",',
        headers={**shop.connector.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert_error(response.json(), "validation_failed")
    assert secret not in response.text


def test_a_refused_read_looks_exactly_like_a_missing_shop(world: World) -> None:
    shop = world.shop()
    consumer = world.consumer()
    refused = consumer.get(f"/v1/shops/{shop.id}/sales", purpose="analytics")
    missing = consumer.get(f"/v1/shops/{uuid.uuid4()}/sales", purpose="analytics")
    assert refused.status_code == missing.status_code == 404
    assert refused.json() == missing.json()
    assert_error(refused.json(), "not_found")


# --- the OpenAPI document ---------------------------------------------------------------------


def test_openapi_lists_the_whole_interface_with_error_bodies(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    operations = {
        (method, path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert INTERFACE <= set(operations), sorted(INTERFACE - set(operations))

    global_routes = {
        ("post", "/v1/principals"),
        ("post", "/v1/shops"),
        ("get", "/v1/audit/events"),
    }
    wrong = []
    for key in sorted(INTERFACE):
        responses = operations[key]["responses"]
        # About a shop a refusal is a 404; about no shop it is a 403.
        refusal = "403" if key in global_routes else "404"
        assert ("404" in responses) == (refusal == "404"), key
        for status in ("401", refusal, "422"):
            schema = (
                responses.get(status, {})
                .get("content", {})
                .get("application/json", {})
                .get("schema", {})
            )
            if schema.get("$ref") != ERROR_REF:
                wrong.append((key, status, schema))
    assert wrong == []
    ingest = operations[("post", "/v1/shops/{shop_id}/sales")]["responses"]
    revoke = operations[("post", "/v1/shops/{shop_id}/consents/{consent_id}/revoke")]["responses"]
    assert "413" in ingest
    assert "409" in revoke
    # Around every route: a rate limit on anything that takes a key, and an
    # unreadable body on anything that takes one.
    for (method, path), operation in operations.items():
        responses = operation["responses"]
        if operation.get("security"):
            assert "Retry-After" in responses["429"]["headers"], (method, path)
        if "requestBody" in operation:
            assert {"400", "413"} <= set(responses), (method, path)
        for status, response in responses.items():
            if int(status) >= 400:
                assert set(response["content"]) == {"application/json"}, (method, path, status)

    error_body = document["components"]["schemas"]["ErrorBody"]
    assert set(error_body["properties"]) == ERROR_KEYS
    assert set(error_body["required"]) >= {"error", "detail"}
    assert "api_key" in document["components"]["securitySchemes"]


def test_docs_are_served_as_html(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text


# --- telemetry and logs -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def span_exporter() -> Iterator[InMemorySpanExporter]:
    """One in-memory exporter on the process's provider for this module.

    A span processor cannot be removed from a provider again; shutting the
    exporter down at the end makes it drop everything that comes later.
    """
    exporter = InMemorySpanExporter()
    telemetry.provider().add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


@pytest.fixture
def traced_world(app: FastAPI, hub: Hub, span_exporter: InMemorySpanExporter) -> Iterator[World]:
    """A World whose app is instrumented for this test, and whose engine is traced.

    Tracing an engine is once per engine (a second call must not double the
    spans), so the hub's engine stays traced for the session; after this
    module the exporter is shut down and nothing is kept.
    """
    telemetry.instrument(app, hub.engine, hub.settings, force=True)
    try:
        with TestClient(app) as client:
            span_exporter.clear()
            yield World(client, hub)
    finally:
        FastAPIInstrumentor.uninstrument_app(app)
        span_exporter.clear()


def _secrets_flow(world: World) -> tuple[dict[str, str], list[str]]:
    """Ingest and read distinctive values as a consumer under consent.

    Returns the secrets that must appear nowhere, by label, and the API keys.
    """
    sku = f"SKU-SECRET-{uuid.uuid4().hex}"
    payer_ref = f"wx_secret_payer_{uuid.uuid4().hex}"
    unknown_key = "cs_" + secrets.token_urlsafe(32)

    shop = world.shop()
    stored = world.ingest(
        shop,
        "sales",
        [sale(1, sku=sku), sale(2, sku=sku, quantity="many")],  # one is rejected
    )
    assert stored["rejected"], stored
    world.ingest(
        shop,
        "payments",
        [payment(1, payer_ref=payer_ref), payment(2, payer_ref=payer_ref, method="gold")],
    )
    consumer = world.consumer()
    world.grant(shop, consumer, "analytics", ["sales"])
    world.grant(shop, consumer, "credit-assessment", ["payments"])

    sales = consumer.get(f"/v1/shops/{shop.id}/sales", purpose="analytics")
    assert sales.status_code == 200, sales.text
    assert [r["sku"] for r in sales.json()["records"]] == [sku]
    payments = consumer.get(f"/v1/shops/{shop.id}/payments", purpose="credit-assessment")
    assert payments.status_code == 200, payments.text
    [paid] = payments.json()["records"]
    assert paid["payer_pseudonym"]
    assert paid["payer_pseudonym"] != payer_ref
    assert payer_ref not in payments.text

    # Refused twice: once by Casbin (replenishment never sees payments), once for
    # want of consent (analytics may see payments, but this shop did not agree).
    for purpose in ("replenishment", "analytics"):
        refused = consumer.get(f"/v1/shops/{shop.id}/payments", purpose=purpose)
        assert refused.status_code == 404, refused.text
    own = shop.keeper.get(f"/v1/shops/{shop.id}/payments")
    assert own.status_code == 200
    assert own.json()["records"][0]["payer_ref"] == payer_ref
    unknown = world.client.get(
        f"/v1/shops/{shop.id}/sales",
        params={"purpose": "analytics"},
        headers={"Authorization": f"Bearer {unknown_key}"},
    )
    assert unknown.status_code == 401

    api_keys = [
        world.admin.api_key,
        shop.keeper.api_key,
        shop.connector.api_key,
        consumer.api_key,
        unknown_key,
    ]
    found = {"sku": sku, "payer_ref": payer_ref}
    found.update({f"api key {i}": key for i, key in enumerate(api_keys)})
    return found, api_keys


def _span_texts(span: ReadableSpan) -> Iterator[str]:
    yield span.name
    if span.status.description:
        yield span.status.description
    for value in (span.attributes or {}).values():
        yield str(value)
    for event in span.events:
        yield event.name
        for value in (event.attributes or {}).values():
            yield str(value)
    for link in span.links:
        for value in (link.attributes or {}).values():
            yield str(value)


def test_spans_cover_the_gate_and_carry_no_secrets(
    traced_world: World, hub: Hub, span_exporter: InMemorySpanExporter
) -> None:
    secrets_by_label, _keys = _secrets_flow(traced_world)
    secrets_by_label["master key"] = hub.settings.master_key_path.read_bytes().hex()
    spans = span_exporter.get_finished_spans()
    by_name: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)

    authorize = by_name.get("gate.authorize", [])
    assert authorize, sorted(by_name)
    for span in authorize:
        attributes = span.attributes or {}
        assert attributes.get("cornerstore.policy_version") == hub.authorizer.policy_version
        assert attributes.get("cornerstore.decision") in {"allow", "deny"}
    assert {(s.attributes or {}).get("cornerstore.decision") for s in authorize} == {
        "allow",
        "deny",
    }
    consent = by_name.get("gate.consent", [])
    # "found", or the reason the consent check refused (never a consent's terms or data).
    outcomes = {(s.attributes or {}).get("cornerstore.consent") for s in consent}
    assert "found" in outcomes
    assert outcomes - {"found"}
    assert outcomes - {"found"} <= set(enforcement.REASONS)
    assert by_name.get("gate.audit"), sorted(by_name)
    assert by_name.get("gate.read"), sorted(by_name)

    server = [s for s in spans if s.kind is SpanKind.SERVER]
    assert any("/v1/shops/{shop_id}/sales" in s.name for s in server), [s.name for s in server]
    database = [
        s
        for s in spans
        if s.kind is SpanKind.CLIENT and any(k.startswith("db.") for k in (s.attributes or {}))
    ]
    assert database, sorted(by_name)
    # The gate's spans belong to the request's trace, not to a trace of their own.
    server_traces = {s.context.trace_id for s in server}
    assert all(s.context.trace_id in server_traces for s in authorize)

    leaks = [
        (label, span.name, text)
        for span in spans
        for text in _span_texts(span)
        for label, secret in secrets_by_label.items()
        if secret in text
    ]
    assert leaks == []


def test_logs_carry_no_keys_or_shop_data(world: World, caplog: pytest.LogCaptureFixture) -> None:
    # Everything at DEBUG, including the database layer, which SQLAlchemy
    # otherwise keeps at WARNING.
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")

    secrets_by_label, _keys = _secrets_flow(world)

    records = caplog.records
    assert any(r.name.startswith("sqlalchemy.engine") for r in records), {r.name for r in records}
    leaks = []
    for record in records:
        texts = [record.getMessage(), repr(record.args), record.exc_text or ""]
        for label, secret in secrets_by_label.items():
            if any(secret in text for text in texts):
                leaks.append((label, record.name, record.levelname))
    assert leaks == []
    for label, secret in secrets_by_label.items():
        assert secret not in caplog.text, label


def _database_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [
        s
        for s in exporter.get_finished_spans()
        if s.kind is SpanKind.CLIENT and any(k.startswith("db.") for k in (s.attributes or {}))
    ]


def test_instrumenting_twice_does_not_double_the_spans(
    traced_world: World, app: FastAPI, hub: Hub, span_exporter: InMemorySpanExporter
) -> None:
    auditor = traced_world.principal("auditor")

    def one_request() -> tuple[int, int]:
        span_exporter.clear()
        assert auditor.get("/v1/audit/events").status_code == 200
        server = [s for s in span_exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
        return len(server), len(_database_spans(span_exporter))

    once = one_request()
    telemetry.instrument(app, hub.engine, hub.settings, force=True)
    twice = one_request()

    assert once[0] == 1
    assert once[1] > 0
    assert twice == once


def test_openapi_describes_the_records_each_ingestion_endpoint_takes(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    expected = {"sales": "SaleIn", "inventory": "InventoryIn", "payments": "PaymentIn"}
    for category, model in expected.items():
        body = document["paths"][f"/v1/shops/{{shop_id}}/{category}"]["post"]["requestBody"]
        records = body["content"]["application/json"]["schema"]["properties"]["records"]
        assert records["items"] == {"$ref": f"#/components/schemas/{model}"}
    assert set(schemas["PaymentIn"]["required"]) == {
        "event_id",
        "occurred_at",
        "amount_cents",
        "method",
        "payer_ref",
    }
    assert schemas["PaymentMethod"]["enum"] == ["qr", "cash", "card"]
