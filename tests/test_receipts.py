"""Consent receipts as their holders check them: offline, with the published JWK Set only.

The verifier in these tests is jwcrypto, a JOSE library independent of the
one the hub signs with, fed nothing but the JWK Set from
``GET /v1/keys/receipts``. Every refusal is checked with it and with
``consent.receipts.verify`` alike, next to a genuine receipt both accept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from jwcrypto import jwk
from jwcrypto import jws as jwcrypto_jws
from jwcrypto.common import JWException
from pydantic import SecretStr
from sqlalchemy import select

from consent import receipts
from cornerstore.crypto import KeyMaterialError
from cornerstore.models.consent import ReceiptKey
from cornerstore.settings import Environment, Settings, get_settings
from hub.cli import main
from hub.runtime import Hub
from tests.factories import World
from tests.keyed import migrate

RECEIPT_TYPE = "consent-receipt+jwt"
CREDIT_DPV = "https://w3id.org/dpv#CreditChecking"


class Refused(Exception):
    """jwcrypto (or the key lookup in front of it) did not accept a receipt."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwcrypto_claims(receipt: str, jwks_text: str) -> dict[str, Any]:
    """What a verifier without any hub code does: jwcrypto, the JWK Set, EdDSA only."""
    keyset = jwk.JWKSet.from_json(jwks_text)
    token = jwcrypto_jws.JWS()
    token.allowed_algs = ["EdDSA"]
    try:
        token.deserialize(receipt)
        kid = token.jose_header.get("kid")
        key = keyset.get_key(kid)
        if key is None:
            raise Refused(f"no key {kid!r} in the published set")
        token.verify(key, alg="EdDSA")
    except JWException as exc:
        raise Refused(str(exc)) from exc
    assert token.jose_header["typ"] == RECEIPT_TYPE
    claims: dict[str, Any] = json.loads(token.payload)
    return claims


def fetch_jwks(client: TestClient) -> str:
    response = client.get("/v1/keys/receipts")  # public: no API key
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/jwk-set+json")
    return response.text


def artefact(
    *,
    consent_id: str | None = None,
    version: int = 1,
    status: str = "active",
    change: str = "granted",
    changed_at: str = "2026-11-02T09:30:00Z",
    categories: tuple[str, ...] = ("payments", "sales"),
) -> dict[str, Any]:
    """An artefact version as ``consent_versions.artefact`` holds it."""
    return {
        "consent_id": consent_id or str(uuid.uuid4()),
        "version": version,
        "previous_version": version - 1 if version > 1 else None,
        "shop_id": str(uuid.uuid4()),
        "consumer_id": str(uuid.uuid4()),
        "purpose": {
            "code": "credit-assessment",
            "dpv": CREDIT_DPV,
            "name": {"en": "Credit assessment", "zh": "信用评估"},
        },
        "categories": list(categories),
        "fields": {
            "payments": ["occurred_at", "amount_cents", "method", "payer_pseudonym"],
            "sales": ["occurred_at", "quantity", "unit_price_cents", "currency"],
        },
        "access_mode": "rows",
        "data_range": {"last_days": 90},
        "max_reads_per_day": 24,
        "valid_from": "2026-11-02T09:00:00Z",
        "valid_until": "2027-05-01T09:00:00Z",
        "data_life": "P30D",
        "status": status,
        "change": change,
        "changed_by": str(uuid.uuid4()),
        "changed_by_role": "shopkeeper",
        "changed_at": changed_at,
    }


def issue(hub: Hub, doc: dict[str, Any], previous: str | None = None) -> str:
    return receipts.issue(hub.receipt_signer, doc, previous_receipt=previous, issuer="hub.test")


def test_a_receipt_verifies_with_jwcrypto_and_only_the_published_key_set(
    client: TestClient, hub: Hub
) -> None:
    receipt = issue(hub, artefact())
    published = fetch_jwks(client)

    claims = jwcrypto_claims(receipt, published)

    keys = json.loads(published)["keys"]
    assert keys[0]["kid"] == hub.receipt_signer.kid  # the current key comes first
    for key in keys:
        # Public members only, and the kid is the RFC 7638 thumbprint as jwcrypto computes it.
        assert set(key) == {"kty", "crv", "x", "kid", "alg", "use"}
        assert (key["kty"], key["crv"], key["alg"], key["use"]) == (
            "OKP",
            "Ed25519",
            "EdDSA",
            "sig",
        )
        assert jwk.JWK(**key).thumbprint() == key["kid"]
    header = json.loads(unb64url(receipt.split(".")[0]))
    assert header == {"alg": "EdDSA", "kid": keys[0]["kid"], "typ": RECEIPT_TYPE}
    assert receipts.verify(receipt, json.loads(published)) == claims


def test_the_claims_carry_the_kantara_and_iso_names_and_the_whole_artefact(
    client: TestClient, hub: Hub
) -> None:
    doc = artefact(changed_at="2026-11-02T09:30:00.250000Z")
    before = int(time.time())
    receipt = issue(hub, doc)
    after = int(time.time())

    claims = jwcrypto_claims(receipt, fetch_jwks(client))

    receipt_id = f"{doc['consent_id']}:1"
    assert claims["iss"] == "hub.test"
    assert before <= claims["iat"] <= after
    assert claims["jti"] == claims["consentReceiptID"] == receipt_id
    assert claims["version"] == receipts.SCHEMA_VERSION
    assert claims["consentTimestamp"] == int(datetime(2026, 11, 2, 9, 30, tzinfo=UTC).timestamp())
    assert claims["consentStatus"] == "active"
    assert claims["piiPrincipalId"] == doc["shop_id"]
    assert claims["piiControllers"] == [{"piiController": doc["consumer_id"]}]
    assert claims["purposes"] == [
        {
            "purpose": "credit-assessment",
            "purposeCategory": [CREDIT_DPV],
            "consentType": "EXPLICIT",
            "piiCategory": ["payments", "sales"],
            "primaryPurpose": True,
            "termination": "2027-05-01T09:00:00Z",
        }
    ]
    assert claims["artefact"] == doc
    assert claims["previous"] is None


def test_a_revocation_receipt_says_so_outside_the_artefact_too(
    client: TestClient, hub: Hub
) -> None:
    doc = artefact(version=3, status="revoked", change="revoked")
    claims = jwcrypto_claims(issue(hub, doc), fetch_jwks(client))
    assert claims["consentStatus"] == "revoked"
    assert claims["jti"] == f"{doc['consent_id']}:3"
    assert claims["artefact"]["change"] == "revoked"


def _header(**members: str) -> str:
    return b64url(json.dumps(members).encode())


def _tampered_payload(receipt: str, _hub: Hub, _tmp: Path) -> str:
    header, payload, signature = receipt.split(".")
    claims = json.loads(unb64url(payload))
    claims["artefact"]["categories"].append("inventory")
    claims["purposes"][0]["piiCategory"].append("inventory")
    return ".".join([header, b64url(json.dumps(claims).encode()), signature])


def _alg_none(receipt: str, hub: Hub, _tmp: Path) -> str:
    payload = receipt.split(".")[1]
    return f"{_header(alg='none', kid=hub.receipt_signer.kid, typ=RECEIPT_TYPE)}.{payload}."


def _hs256_with_the_public_key(receipt: str, hub: Hub, _tmp: Path) -> str:
    # The classic confusion: an HMAC keyed with the (public) verification key.
    public = unb64url(hub.receipt_signer.public_jwk()["x"])
    header = _header(alg="HS256", kid=hub.receipt_signer.kid, typ=RECEIPT_TYPE)
    payload = receipt.split(".")[1]
    mac = hmac.new(public, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(mac)}"


def _signed_by_another_key(receipt: str, _hub: Hub, _tmp: Path) -> str:
    # Same header, kid and claims; only the signing key differs.
    header, payload, _ = receipt.split(".")
    other = Ed25519PrivateKey.generate()
    return f"{header}.{payload}.{b64url(other.sign(f'{header}.{payload}'.encode()))}"


def _unknown_kid(receipt: str, _hub: Hub, tmp: Path) -> str:
    # A well-formed receipt from a key the hub never published.
    stranger = receipts.ReceiptSigner(tmp / "stranger.key")
    return stranger.sign(json.loads(unb64url(receipt.split(".")[1])))


@pytest.mark.parametrize(
    "forge",
    [
        _tampered_payload,
        _alg_none,
        _hs256_with_the_public_key,
        _signed_by_another_key,
        _unknown_kid,
    ],
    ids=["payload", "alg-none", "hs256", "other-key", "unknown-kid"],
)
def test_a_forged_receipt_is_refused_by_both_verifiers(
    client: TestClient,
    hub: Hub,
    tmp_path: Path,
    forge: Callable[[str, Hub, Path], str],
) -> None:
    genuine = issue(hub, artefact())
    published = fetch_jwks(client)
    keys = json.loads(published)
    # Both verifiers accept the genuine receipt, so a refusal below is about the forgery.
    assert receipts.verify(genuine, keys) == jwcrypto_claims(genuine, published)

    forged = forge(genuine, hub, tmp_path)

    assert forged != genuine
    with pytest.raises(receipts.ReceiptError):
        receipts.verify(forged, keys)
    with pytest.raises(Refused):
        jwcrypto_claims(forged, published)


def test_after_rotation_old_receipts_verify_and_new_ones_use_the_new_key(
    client: TestClient, hub: Hub
) -> None:
    signer = hub.receipt_signer
    old_kid = signer.kid
    # Keys from earlier rotations of the session's hub may follow; the current one leads.
    assert json.loads(fetch_jwks(client))["keys"][0]["kid"] == old_kid
    doc = artefact()
    before = issue(hub, doc)

    receipts.rotate(hub.settings.receipt_signing_key_path)

    # The running hub follows its key file: no restart.
    new_kid = signer.kid
    assert new_kid != old_kid
    after = issue(hub, {**doc, "version": 2, "previous_version": 1}, previous=before)
    assert json.loads(unb64url(after.split(".")[0]))["kid"] == new_kid
    published = fetch_jwks(client)
    assert [k["kid"] for k in json.loads(published)["keys"]][:2] == [new_kid, old_kid]
    for receipt, version in ((before, 1), (after, 2)):
        assert jwcrypto_claims(receipt, published)["artefact"]["version"] == version
        assert receipts.verify(receipt, json.loads(published))["artefact"]["version"] == version
    with hub.sessions() as session:
        retired = {row.kid: row.retired_at for row in session.scalars(select(ReceiptKey))}
    assert retired[new_kid] is None
    assert retired[old_kid] is not None


def test_version_two_links_to_the_exact_receipt_of_version_one(
    client: TestClient, hub: Hub
) -> None:
    first = artefact()
    v1 = issue(hub, first)
    second = {**first, "version": 2, "previous_version": 1, "status": "paused", "change": "paused"}
    v2 = issue(hub, second, previous=v1)
    published = fetch_jwks(client)

    link = jwcrypto_claims(v2, published)["previous"]

    assert link == {"version": 1, "receipt_sha256": b64url(hashlib.sha256(v1.encode()).digest())}
    assert len(unb64url(link["receipt_sha256"])) == 32
    # Another valid receipt of version 1 (here: other categories) is not the one linked to.
    other_v1 = issue(hub, {**first, "categories": ["sales"]})
    assert jwcrypto_claims(other_v1, published)["consentReceiptID"] == f"{first['consent_id']}:1"
    assert link["receipt_sha256"] != b64url(hashlib.sha256(other_v1.encode()).digest())
    # A first version links to nothing, and cannot be made to.
    assert jwcrypto_claims(v1, published)["previous"] is None
    with pytest.raises(receipts.ReceiptError):
        issue(hub, first, previous=v1)


def test_a_version_after_one_without_a_receipt_says_it_has_no_digest(hub: Hub) -> None:
    # Consents granted before receipts existed have a version 1 without one.
    doc = {**artefact(), "version": 2, "previous_version": 1}
    receipt = issue(hub, doc, previous=None)
    claims = receipts.verify(receipt, {"keys": [hub.receipt_signer.public_jwk()]})
    assert claims["previous"] == {"version": 1, "receipt_sha256": None}


def test_the_key_file_is_made_private_and_a_shared_or_damaged_one_is_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "keys" / "receipt-signing.key"
    signer = receipts.ReceiptSigner(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_bytes()) == 32
    kid = signer.kid
    # Opening it again uses the same key: the file is made only once.
    assert receipts.ReceiptSigner(path).kid == kid

    receipts.rotate(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_bytes()) == 64

    path.chmod(0o644)
    with pytest.raises(KeyMaterialError, match="chmod 600"):
        receipts.ReceiptSigner(path)
    path.chmod(0o600)
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(KeyMaterialError, match="32-byte"):
        receipts.ReceiptSigner(path)


@pytest.fixture
def own_settings(fresh_database: Callable[[], str], tmp_path: Path) -> Settings:
    """A fresh database and data directory: hubs opened on them share nothing with the session's."""
    url = fresh_database()
    migrate(url)
    return Settings(
        _env_file=None,
        environment=Environment.test,
        database_url=SecretStr(url),
        data_dir=tmp_path / "data",
    )


@pytest.fixture
def open_hub(own_settings: Settings) -> Iterator[Callable[[], Hub]]:
    opened: list[Hub] = []

    def _open() -> Hub:
        opened.append(Hub.open(own_settings))
        return opened[-1]

    yield _open
    for hub in opened:
        hub.close()


def test_a_hub_publishes_its_key_when_it_opens_and_keeps_the_old_one_after_a_rotation(
    own_settings: Settings, open_hub: Callable[[], Hub]
) -> None:
    path = own_settings.receipt_signing_key_path
    first = open_hub()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    old_kid = first.receipt_signer.kid
    # Read straight from the table: nothing but Hub.open has published anything.
    with first.sessions() as session:
        assert [k["kid"] for k in receipts.jwks(session)["keys"]] == [old_kid]
    old = issue(first, artefact())

    receipts.rotate(path)
    second = open_hub()

    assert second.receipt_signer.kid != old_kid
    with second.sessions() as session:
        published = json.dumps(receipts.jwks(session))
    assert [k["kid"] for k in json.loads(published)["keys"]] == [second.receipt_signer.kid, old_kid]
    assert jwcrypto_claims(old, published)["iss"] == "hub.test"
    new = issue(second, artefact())
    assert jwcrypto_claims(new, published)["iss"] == "hub.test"


def test_the_rotate_command_publishes_a_new_key_and_old_receipts_still_verify(
    world: World, hub: Hub, cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shop, consumer = world.shop(), world.consumer()
    consent = world.grant(shop, consumer, "replenishment", ["sales"])
    url = f"/v1/shops/{shop.id}/consents/{consent['id']}/receipt"
    granted = shop.keeper.get(url).text
    old_kid = hub.receipt_signer.kid
    cli_env.setenv("CORNERSTORE_DATABASE_URL", hub.settings.sqlalchemy_url)
    cli_env.setenv("CORNERSTORE_DATA_DIR", str(hub.settings.data_dir))
    cli_env.setenv("CORNERSTORE_ENVIRONMENT", "test")
    get_settings.cache_clear()

    assert main(["keys", "rotate-receipt-key"]) == 0

    new_kid = hub.receipt_signer.kid
    assert new_kid != old_kid
    assert new_kid in capsys.readouterr().out
    revoked = shop.keeper.post(f"/v1/shops/{shop.id}/consents/{consent['id']}/revoke")
    assert revoked.status_code == 200, revoked.text
    published = fetch_jwks(world.client)
    assert [k["kid"] for k in json.loads(published)["keys"]][:2] == [new_kid, old_kid]
    assert jwcrypto_claims(granted, published)["consentStatus"] == "active"
    latest = shop.keeper.get(url).text
    assert json.loads(unb64url(latest.split(".")[0]))["kid"] == new_kid
    assert jwcrypto_claims(latest, published)["consentStatus"] == "revoked"
