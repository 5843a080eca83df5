"""Checks a consumer, an auditor or a shopkeeper's friend runs on what the hub produced.

Each trusts only what the hub publishes (its receipt keys, its webhook
secret for you) and raises :class:`VerificationError` on anything else: the
verifiers never return False, so a forgotten ``if`` cannot let one through.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks.webhooks import Webhook

from audit_verifier import verify as log
from audit_verifier.note import NoteError, Verifier
from cornerstore_client.errors import VerificationError

#: The receipt's JOSE header has exactly these members (see the hub's consent.receipts).
_RECEIPT_HEADER = frozenset({"alg", "kid", "typ"})
_RECEIPT_TYPE = "consent-receipt+jwt"
_ALGORITHM = "EdDSA"


_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _b64url_decode(text: str) -> bytes:
    # Strictly: one way to write each receipt, so receipts compare as strings.
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise VerificationError("not base64url without padding")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise VerificationError("not base64url") from None


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise VerificationError(f"the {what} is not JSON") from None
    if not isinstance(value, dict):
        raise VerificationError(f"the {what} is not a JSON object")
    return value


def _thumbprint(x: str) -> str:
    """RFC 7638: the SHA-256 of the key's required members, sorted, without spaces."""
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"))
    return (
        base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    )


def _receipt_key(kid: str, jwks: Mapping[str, Any]) -> Ed25519PublicKey:
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        raise VerificationError("not a JWK Set: no list of keys")
    found = [k for k in keys if isinstance(k, Mapping) and k.get("kid") == kid]
    if not found:
        raise VerificationError(f"no key {kid!r} in the key set")
    jwk = found[0]
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise VerificationError(f"key {kid!r} is not an Ed25519 key")
    if jwk.get("alg", _ALGORITHM) != _ALGORITHM or jwk.get("use", "sig") != "sig":
        raise VerificationError(f"key {kid!r} is not for {_ALGORITHM} signatures")
    x = jwk.get("x")
    if not isinstance(x, str) or _thumbprint(x) != kid:
        raise VerificationError(f"key {kid!r} is not the key its kid is the thumbprint of")
    try:
        # Only "x": a key set that leaks "d" must not become a signer here.
        return Ed25519PublicKey.from_public_bytes(_b64url_decode(x))
    except ValueError:
        raise VerificationError(f"key {kid!r} is not a valid Ed25519 public key") from None


def verify_receipt(jws: str, jwks: Mapping[str, Any]) -> dict[str, Any]:
    """The consent artefact a receipt signs, if a key of the hub's JWK Set signed it.

    ``jwks`` is what the hub publishes at ``GET /v1/keys/receipts``. The
    receipt's claims are returned whole; the artefact is under ``"artefact"``.
    """
    parts = jws.strip().split(".")
    if len(parts) != 3:
        raise VerificationError("not a JWS in compact serialisation")
    header = _json_object(_b64url_decode(parts[0]), "header")
    if set(header) != _RECEIPT_HEADER:
        raise VerificationError(
            f"header members {sorted(header)}, expected {sorted(_RECEIPT_HEADER)}"
        )
    if header["alg"] != _ALGORITHM:
        raise VerificationError(f"algorithm {header['alg']!r} refused: receipts are {_ALGORITHM}")
    if str(header["typ"]).lower() not in (_RECEIPT_TYPE, f"application/{_RECEIPT_TYPE}"):
        raise VerificationError(f"type {header['typ']!r} is not {_RECEIPT_TYPE!r}")
    if not isinstance(header["kid"], str):
        raise VerificationError("the kid is not a string")
    key = _receipt_key(header["kid"], jwks)
    try:
        key.verify(_b64url_decode(parts[2]), f"{parts[0]}.{parts[1]}".encode("ascii"))
    except InvalidSignature:
        raise VerificationError("the signature does not verify") from None
    claims = _json_object(_b64url_decode(parts[1]), "payload")
    if not isinstance(claims.get("artefact"), dict):
        raise VerificationError("the receipt holds no consent artefact")
    return claims


def webhook_key(secret: str) -> bytes:
    """The HMAC key a ``whsec_…`` secret stands for.

    Standard base64, as the hub hands secrets out now; also the base64url the
    hub handed out before Standard Webhooks (told apart by ``-`` and ``_``),
    which the standard libraries would misread without a word.
    """
    if not secret.startswith("whsec_"):
        raise VerificationError("a webhook secret starts with whsec_")
    encoded = secret.removeprefix("whsec_").rstrip("=")
    padded = encoded + "=" * (-len(encoded) % 4)
    try:
        if "-" in encoded or "_" in encoded:
            key = base64.urlsafe_b64decode(padded)
        else:
            key = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError("the webhook secret is not base64 after whsec_") from None
    if not key:
        raise VerificationError("the webhook secret is empty")
    return key


def verify_webhook(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    tolerance: int = 300,
    now: float | None = None,
) -> dict[str, Any]:
    """The event a webhook delivery carries, if it is the hub's, unchanged and recent.

    Standard Webhooks: ``secret`` is the ``whsec_…`` string the hub showed
    when the webhook was registered, ``body`` the raw bytes as received. The
    signature is made by the specification's own library; the timestamp must
    be within ``tolerance`` seconds of ``now`` either way. Within it the same
    delivery can arrive twice (the hub delivers at least once): remember the
    ``webhook-id`` values you have processed and skip one seen before.
    """
    named = {k.lower(): v for k, v in headers.items()}
    event_id, stamp = named.get("webhook-id"), named.get("webhook-timestamp")
    signatures = named.get("webhook-signature")
    if not (event_id and stamp and signatures):
        raise VerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        raise VerificationError("webhook-timestamp is not unix seconds")
    if abs((time.time() if now is None else now) - int(stamp)) > tolerance:
        raise VerificationError("the timestamp is outside the tolerance (a replay?)")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise VerificationError("the body is not UTF-8") from None
    signer = Webhook(webhook_key(secret))
    expected = signer.sign(event_id, datetime.fromtimestamp(int(stamp), UTC), text)
    matched = False
    for candidate in signatures.split():
        # Every candidate is compared, so the time taken says nothing about which matched.
        matched |= hmac.compare_digest(candidate.encode(), expected.encode())
    if not matched:
        raise VerificationError("no signature matches the body")
    return _json_object(body, "body")


def _b64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise VerificationError(f"the {what} is not base64 text")
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        raise VerificationError(f"the {what} is not valid base64") from None


def verify_inclusion(
    entry: Mapping[str, Any],
    proof: Mapping[str, Any],
    checkpoint: str,
    verifier_key: str,
) -> dict[str, Any]:
    """The audit entry, if it is in the log the hub signed.

    ``entry`` is one of ``GET /v1/audit/entries`` (its ``index`` and base64
    canonical bytes), ``proof`` the answer of ``GET /v1/audit/proofs/inclusion``
    for that index at the checkpoint's size, ``checkpoint`` the signed note of
    ``GET /v1/audit/checkpoint``, and ``verifier_key`` a line of
    ``GET /v1/audit/public-key`` that you keep (fetch it once, not with each
    check, or a forged log could bring its own key). The checks are the
    offline verifier's own (``cornerstore-audit-verifier``).
    """
    try:
        verifier = Verifier.from_key(verifier_key.strip())
    except NoteError as exc:
        raise VerificationError(f"the verifier key: {exc}") from None
    try:
        signed, _ = log.open_checkpoint(checkpoint.encode("utf-8"), [verifier])
    except log.VerificationError as exc:
        raise VerificationError(str(exc)) from None
    index = entry.get("index")
    if not isinstance(index, int) or proof.get("index") != index:
        raise VerificationError("the proof is not for this entry's index")
    if proof.get("tree_size") != signed.size:
        raise VerificationError(
            f"the proof is for a tree of {proof.get('tree_size')} entries, "
            f"the checkpoint signs {signed.size}"
        )
    hashes = proof.get("proof")
    if not isinstance(hashes, list):
        raise VerificationError("the proof holds no list of hashes")
    encoded = _b64(entry.get("entry"), "entry")
    try:
        log.verify_inclusion_of(encoded, index, [_b64(h, "proof hash") for h in hashes], signed)
    except log.VerificationError as exc:
        raise VerificationError(str(exc)) from None
    return _json_object(encoded, "entry")
