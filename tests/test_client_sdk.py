"""The consumers' SDK against a real hub process: what a consumer's developer would notice.

The hub runs as ``cornerstore serve`` does, and the SDK speaks only HTTP to
it. Receipts and webhooks are ones the hub really produced; forgeries are
made from them.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import cornerstore_client as sdk
from audit_verifier.note import Signer
from consent.delivery import deliver_due
from cornerstore_client import cli
from cornerstore_client.models import HUB_SCHEMAS
from hub.runtime import Hub
from tests.factories import World, sale
from tests.scripted import Scripted
from tests.servers import Server, hub_server
from tests.webhook_consumer import (
    Receiver,
    client_without_lifespan,  # noqa: F401 (a fixture)
    enqueued,
    receiver_fixture,  # noqa: F401 (a fixture)
    register,
    status_event,
)

#: Above the database: SQLite alone (tests/conftest.py).
pytestmark = pytest.mark.one_backend


ROOT = Path(__file__).resolve().parent.parent
MONDAY = datetime(2026, 11, 16, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def server(hub: Hub) -> Iterator[Server]:
    with hub_server(hub) as running:
        yield running


def _request(days: int = 30) -> sdk.ConsentRequest:
    return sdk.ConsentRequest(
        purpose="replenishment",
        categories=["sales"],
        expires_at=datetime.now(UTC) + timedelta(days=days),
    )


def test_a_consumer_asks_reads_every_page_and_is_cut_off_by_revocation(
    world: World, server: Server
) -> None:
    shop = world.shop()
    world.ingest(shop, "sales", [sale(n, at=MONDAY + timedelta(minutes=n)) for n in range(7)])
    grocer = world.consumer("Lucky Wholesale")

    with sdk.Client(server.base_url, grocer.api_key) as client:
        asked = client.request_consent(shop.id, _request())
        assert (asked.status, asked.consumer_name) == ("requested", "Lucky Wholesale")
        approved = shop.keeper.post(f"/v1/shops/{shop.id}/consent-requests/{asked.id}/approve")
        assert approved.status_code == 200, approved.text
        [consent] = client.consents()
        assert (consent.id, consent.status) == (asked.id, "active")

        # Seven sales in pages of two: four requests, every record once, in event-time order.
        read = list(client.sales(shop.id, purpose="replenishment", page_size=2))
        assert [r["event_id"] for r in read] == [sale(n)["event_id"] for n in range(7)]
        assert set(read[0]) == {"event_id", "occurred_at", "sku", "quantity"}  # minimised

        shop.keeper.post(f"/v1/shops/{shop.id}/consents/{consent.id}/revoke")
        with pytest.raises(sdk.NotFound) as refused:
            list(client.sales(shop.id, purpose="replenishment"))
        assert refused.value.status == 404


def test_the_async_client_reads_the_same_pages(world: World, server: Server) -> None:
    shop = world.shop()
    world.ingest(shop, "sales", [sale(n, at=MONDAY + timedelta(minutes=n)) for n in range(5)])
    grocer = world.consumer()
    world.grant(shop, grocer, "replenishment", ["sales"])

    async def read() -> list[dict[str, Any]]:
        async with sdk.AsyncClient(server.base_url, grocer.api_key) as client:
            return [r async for r in client.sales(shop.id, purpose="replenishment", page_size=2)]

    assert [r["event_id"] for r in asyncio.run(read())] == [sale(n)["event_id"] for n in range(5)]


def test_a_consumer_proposes_an_order_and_reads_the_shopkeepers_answer(
    world: World, server: Server
) -> None:
    shop = world.shop()
    grocer = world.consumer("Lucky Wholesale")
    world.grant(shop, grocer, "replenishment", ["sales", "inventory"])
    order = sdk.PurchaseOrder(
        warehouse="Lucky Wholesale",
        lines=[sdk.OrderLine(sku="SKU-WATER", quantity=24, case_pack=12, reason="8 a day")],
    )
    with sdk.Client(server.base_url, grocer.api_key) as client:
        proposed = client.propose(shop.id, order)
        assert (proposed.status, proposed.withdrawn) == ("pending", False)
        shop.keeper.post(
            f"/v1/shops/{shop.id}/proposals/{proposed.id}/answer",
            {"decision": "accept", "lines": [{"sku": "SKU-WATER", "quantity": 12}]},
        )
        answered = client.proposal(proposed.id)
        with pytest.raises(sdk.NotFound):  # a credit line needs a credit-assessment consent
            client.propose(
                shop.id,
                sdk.CreditOffer(
                    line_cents=100_000,
                    annual_rate=0.1,
                    reasons=[sdk.Reason(code="x", en="because", zh="因为")],
                ),
            )

    assert answered.status == "accepted"
    assert answered.answer == {
        "decision": "accept",
        "lines": [{"sku": "SKU-WATER", "quantity": 12}],
    }


def test_each_error_code_is_its_own_exception_naming_the_fields(
    world: World, server: Server
) -> None:
    shop = world.shop()
    grocer = world.consumer()
    with sdk.Client(server.base_url, grocer.api_key) as client:
        with pytest.raises(sdk.ValidationFailed) as invalid:
            client.request_consent(shop.id, _request(days=-1))
        assert invalid.value.status == 422
        assert "body.expires_at" in [f.field for f in invalid.value.fields]
        assert "body.expires_at" in str(invalid.value)
        with pytest.raises(sdk.NotFound):  # no consent for analytics: as if there were no shop
            client.analytics(
                sdk.AnalyticsQuery(
                    purpose="analytics", category="sales", measures=["count"], epsilon=0.5
                )
            )
    with (
        sdk.Client(server.base_url, "cs_not-a-key") as stranger,
        pytest.raises(sdk.Unauthenticated),
    ):
        stranger.consents()


def test_429_and_503_are_retried_after_the_wait_the_server_asked_for(
    scripted: tuple[str, type[Scripted]],
) -> None:
    """A real HTTP server that says "not now" twice: the client waits at least Retry-After."""
    url, handler = scripted
    limited = json.dumps({"error": "too_many_requests", "detail": "slow down"}).encode()
    handler.script = [
        (429, {"Retry-After": "1", "Content-Type": "application/json"}, limited),
        (503, {"Content-Type": "application/json"}, b'{"error":"unavailable","detail":"x"}'),
        (200, {"Content-Type": "application/json"}, b'{"consents": []}'),
    ]
    with sdk.Client(url, "key", retries=sdk.Retries(attempts=3, backoff=0.05)) as client:
        assert client.consents() == []
    first, second, third = handler.seen
    assert second - first >= 1.0
    assert third - second < 1.0

    # Asked to wait longer than the client ever waits: raised at once, with the wait asked.
    handler.script = [(429, {"Retry-After": "3600"}, limited)]
    with sdk.Client(url, "key", retries=sdk.Retries(max_backoff=30)) as client:
        with pytest.raises(sdk.TooManyRequests) as too_long:
            client.consents()
    assert too_long.value.retry_after == 3600
    assert len(handler.seen) == 4

    # Out of retries: the error says how long the hub asked to wait.
    handler.script = [(429, {"Retry-After": "0"}, limited)] * 2
    no_more = sdk.Retries(attempts=1, backoff=0.01)
    with (
        sdk.Client(url, "key", retries=no_more) as client,
        pytest.raises(sdk.TooManyRequests) as gave_up,
    ):
        client.consents()
    assert len(handler.seen) == 6
    assert gave_up.value.retry_after == 0


def test_the_async_client_waits_as_the_sync_one_does(
    scripted: tuple[str, type[Scripted]],
) -> None:
    url, handler = scripted
    handler.script = [
        (429, {"Retry-After": "1"}, b'{"error":"too_many_requests","detail":"slow down"}'),
        (200, {"Content-Type": "application/json"}, b'{"consents": []}'),
    ]

    async def ask() -> list[sdk.Consent]:
        async with sdk.AsyncClient(url, "key", retries=sdk.Retries(backoff=0.05)) as client:
            return await client.consents()

    assert asyncio.run(ask()) == []
    first, second = handler.seen
    assert second - first >= 1.0


def _receipt(world: World, server: Server) -> tuple[str, dict[str, Any]]:
    shop = world.shop()
    grocer = world.consumer()
    consent = world.grant(shop, grocer, "replenishment", ["sales"])
    with sdk.Client(server.base_url, grocer.api_key) as client:
        return client.receipt(shop.id, consent["id"]), client.receipt_keys()


def _forge_payload(jws: str, **changes: Any) -> str:
    header, payload, signature = jws.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["artefact"].update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_a_real_receipt_verifies_and_forgeries_do_not(world: World, server: Server) -> None:
    receipt, jwks = _receipt(world, server)

    claims = sdk.verify_receipt(receipt, jwks)

    assert claims["artefact"]["purpose"]["code"] == "replenishment"
    assert claims["artefact"]["status"] == "active"
    none_alg = base64.urlsafe_b64encode(b'{"alg":"none","kid":"x","typ":"consent-receipt+jwt"}')
    forgeries = {
        "a widened consent": _forge_payload(receipt, categories=["sales", "payments"]),
        "alg none": none_alg.rstrip(b"=").decode() + "." + receipt.split(".", 1)[1],
        "no signature": receipt.rsplit(".", 1)[0] + ".",
        "not a JWS": "hello",
    }
    verified = []
    for name, forged in forgeries.items():
        try:
            sdk.verify_receipt(forged, jwks)
        except sdk.VerificationError:
            continue
        verified.append(name)
    assert verified == []
    # A key set whose kid is not the thumbprint of its key cannot vouch for anything.
    [key] = jwks["keys"]
    swapped = {**key, "x": base64.urlsafe_b64encode(bytes(32)).rstrip(b"=").decode()}
    with pytest.raises(sdk.VerificationError, match="thumbprint"):
        sdk.verify_receipt(receipt, {"keys": [swapped]})


def test_the_cli_checks_a_receipt_by_hand(world: World, server: Server, tmp_path: Path) -> None:
    receipt, _ = _receipt(world, server)
    (tmp_path / "receipt.jws").write_text(receipt)
    (tmp_path / "forged.jws").write_text(_forge_payload(receipt, status="revoked"))
    url = f"{server.base_url}/v1/keys/receipts"

    def run(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 (our own interpreter and entry point)
            [sys.executable, "-m", "cornerstore_client.cli", "verify-receipt", name, "--jwks", url],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )

    good, forged = run("receipt.jws"), run("forged.jws")
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["purpose"]["code"] == "replenishment"
    assert "verified" in good.stderr
    assert forged.returncode == 1
    assert "NOT VERIFIED" in forged.stderr
    assert cli.main(["verify-receipt", str(tmp_path / "receipt.jws"), "--jwks", url]) == 0


def test_a_real_webhook_verifies_and_forgeries_and_replays_do_not(
    world: World, hub: Hub, receiver: Receiver
) -> None:
    consumer = world.consumer()
    secret = register(consumer, receiver.url)["secret"]
    enqueued(hub, consumer, status_event())
    deliver_due(hub.sessions, hub.settings)
    [received] = receiver.requests
    sent_at = int(received.headers["webhook-timestamp"])

    event = sdk.verify_webhook(received.headers, received.body, secret, now=sent_at + 10)

    assert event == received.event
    # A secret handed out before Standard Webhooks (base64url, no padding) still verifies.
    legacy = "whsec_" + base64.urlsafe_b64encode(sdk.webhook_key(secret)).rstrip(b"=").decode()
    assert sdk.verify_webhook(received.headers, received.body, legacy, now=sent_at) == event
    other_secret = register(world.consumer(), "https://other.example/")["secret"]
    legacy_only = {k: v for k, v in received.headers.items() if not k.startswith("webhook-")}
    cases: dict[str, tuple[dict[str, str], bytes, str, float]] = {
        "tampered": (received.headers, received.body.replace(b"revoked", b"resumed"), secret, 0),
        "another secret": (received.headers, received.body, other_secret, 0),
        "replayed later": (received.headers, received.body, secret, 301),
        "old headers only": (legacy_only, received.body, secret, 0),
    }
    verified = []
    for name, (headers, body, key, late) in cases.items():
        try:
            sdk.verify_webhook(headers, body, key, now=sent_at + late)
        except sdk.VerificationError:
            continue
        verified.append(name)
    assert verified == []


def test_an_access_is_proved_in_the_signed_log_and_an_edited_entry_is_not(
    world: World, server: Server
) -> None:
    """The shopkeeper's friend: the entry of a read of the shop, checked against the signed
    checkpoint with a verifier key kept from before; edits and other keys fail."""
    shop = world.shop()
    grocer = world.consumer()
    world.grant(shop, grocer, "replenishment", ["sales"])
    grocer.get(f"/v1/shops/{shop.id}/sales", purpose="replenishment")
    with sdk.Client(server.base_url, shop.keeper.api_key) as client:
        [key, *_] = client.verifier_keys()
        [read] = [e for e in client.log_entries(shop.id) if _decoded(e)["action"] == "read"]
        checkpoint = client.checkpoint()
        size = int(checkpoint.splitlines()[1])
        proof = client.inclusion_proof(read["index"], size)

    entry = sdk.verify_inclusion(read, proof, checkpoint, key)

    assert (entry["action"], entry["shop_id"], entry["decision"]) == ("read", shop.id, "allow")
    edited = {
        **read,
        "entry": base64.b64encode(_bytes(read).replace(b'"allow"', b'"deny"')).decode(),
    }
    stranger = Signer.generate(key.split("+")[0]).verifier_key
    other_index = {**proof, "index": read["index"] - 1}
    cases = {
        "an edited entry": (edited, proof, checkpoint, key),
        "another key": (read, proof, checkpoint, stranger),
        "the proof of another entry": (read, other_index, checkpoint, key),
        "a proof for another tree": (read, {**proof, "tree_size": size + 1}, checkpoint, key),
    }
    verified = []
    for name, (entry_, proof_, checkpoint_, key_) in cases.items():
        try:
            sdk.verify_inclusion(entry_, proof_, checkpoint_, key_)
        except sdk.VerificationError:
            continue
        verified.append(name)
    assert verified == []


def _bytes(entry: dict[str, Any]) -> bytes:
    return base64.b64decode(entry["entry"])


def _decoded(entry: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(_bytes(entry))
    return decoded


def test_the_models_match_the_hubs_openapi(world: World) -> None:
    """Every model has exactly the fields of the hub's schema it mirrors. What a consumer
    sends is required alike; what it reads never requires what the hub may leave out."""
    document = world.client.get("/openapi.json").json()["components"]["schemas"]
    for model, name in HUB_SCHEMAS.items():
        schema = document[name]
        fields = {(f.alias or n): f for n, f in model.model_fields.items()}
        required = {n for n, f in fields.items() if f.is_required()}
        assert set(fields) == set(schema["properties"]), name
        if name.endswith("In") or name == "DataRange":
            # Sent always: required here, or given a default here (a proposal's kind).
            assert required <= set(schema.get("required", [])), name
            for field in set(schema.get("required", [])) - required:
                assert fields[field].default is not None, f"{name}.{field}"
        else:
            assert required <= set(schema.get("required", [])), name


def test_the_sdk_installs_alone_and_loads_nothing_of_the_hub(tmp_path: Path) -> None:
    """A consumer's machine: a fresh venv with the SDK and the verifier it builds on (as an
    index would serve them); importing it loads no module of the hub."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)  # noqa: S603
    python = venv / "bin" / "python"
    installed = subprocess.run(  # noqa: S603 (pip from the venv we just made)
        [
            str(python),
            *("-m", "pip", "install", "--quiet"),
            *(str(ROOT / name) for name in ("audit_verifier", "client_sdk")),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    hub_packages = ["cornerstore", "hub", "consent", "audit", "fastapi", "sqlalchemy"]
    program = (
        "import sys, cornerstore_client, cornerstore_client.cli\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {hub_packages!r}))\n"
        "print(cornerstore_client.Client.__name__)\n"
    )
    ran = subprocess.run(  # noqa: S603
        [str(python), "-c", program], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["[]", "Client"]


def test_the_consumer_in_the_docs_is_twenty_lines_of_the_sdk_as_it_is() -> None:
    """docs/consumers.md's example: at most 20 lines, and every name it uses exists."""
    text = (ROOT / "docs" / "consumers.md").read_text()
    example = text.split("## A consumer in 20 lines", 1)[1].split("```python\n", 1)[1]
    example = example.split("```", 1)[0]
    assert len([line for line in example.splitlines() if line.strip()]) <= 20
    tree = ast.parse(example)
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "cornerstore_client"
        for alias in node.names
    }
    assert imported
    assert all(hasattr(sdk, name) for name in imported), imported
    used = {
        (node.func.value.id, node.func.attr)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in ("hub", "store")
    }
    kinds = {"hub": sdk.Client, "store": sdk.LocalStore}
    assert {"register_webhook", "request_consent", "receive", "keep"} <= {m for _, m in used}
    assert all(hasattr(kinds[owner], method) for owner, method in used), used
