"""Consent receipts: each version of a consent, signed by the hub so anyone can check it offline.

A receipt is a JWS in compact serialisation (RFC 7515) over a JSON object of
claims, signed with the hub's Ed25519 receipt key (alg ``EdDSA``, an OKP key
as RFC 8037 defines it). The protected header holds exactly ``alg``, ``kid``
and ``typ``:

- ``kid`` is the key's RFC 7638 thumbprint (base64url SHA-256), so a verifier
  can recompute it from the published key instead of trusting a label.
- ``typ`` is ``consent-receipt+jwt`` (RFC 8725 §3.11 explicit typing): the
  claims are a JWT claims set, and the type keeps a receipt from passing as
  any other JWT signed with the same key, or the reverse.

RFC 9864 deprecates the polymorphic ``EdDSA`` name in favour of ``Ed25519``;
receipts keep ``EdDSA`` because it is what JOSE libraries in the field verify
today, and it names the same signature over the same key.

The key file holds one or more 32-byte Ed25519 seeds back to back; the last
signs, and ``rotate`` appends a new one. Every public key that ever signed is
kept in ``consent_receipt_keys`` and published as a JWKS at
``GET /v1/keys/receipts`` (current first), so receipts signed before a
rotation still verify. ``verify`` needs only that JWKS: no database, no hub.

The claims, for an artefact version (see ``consent.terms.artefact``), use the
names of the Kantara Consent Receipt Specification v1.1 where it has one, and
its camelCase style for the ISO/IEC TS 27560 information elements it lacks
(27560 names its elements in prose and defines no JSON of its own):

====================  ==============================================================
claim                 value, and why
====================  ==============================================================
``iss``               The issuer the hub is configured with (RFC 7519).
``iat``               When the receipt was signed, epoch seconds (RFC 7519).
``jti``               ``"<consent_id>:<version>"``; the same value as
                      ``consentReceiptID``, which the Kantara v0.8 draft called ``jti``.
                      One receipt per version, so the id names the version it covers.
``version``           ``"cornerstore-cr-1"``: the receipt schema. Not Kantara's
                      ``KI-CR-v1.1.0``, because these receipts lack fields that
                      specification requires (jurisdiction, policyUrl, language,
                      collectionMethod, sensitive) which the hub does not know.
``consentReceiptID``  As ``jti``.
``consentTimestamp``  The version's ``changed_at``, epoch seconds as in Kantara's
                      examples: when the consent took this state, not when signed.
``consentStatus``     The artefact's status (requested, active, paused, revoked,
                      refused): 27560's consent state. Without it a revocation's
                      receipt would read, in Kantara fields alone, as a grant.
``piiPrincipalId``    The shop id: the shop is the data principal here.
``piiControllers``    ``[{"piiController": consumer_id}]``: the consumer receives and
                      decides over the data, so it is the controller; named by its
                      principal id because the hub holds no legal name or address.
``purposes``          One entry: ``purpose`` (the catalogue code), ``purposeCategory``
                      (``[DPV IRI]``, a list as in Kantara), ``consentType``
                      ``"EXPLICIT"`` (the shopkeeper grants each consent by an act of
                      their own), ``piiCategory`` (the data categories),
                      ``primaryPurpose`` true (it is the only one), ``termination``
                      (``valid_until``). Kantara nests purposes under ``services[]``;
                      a consent here is for one purpose with no service of its own,
                      so the list sits at the top instead of under an invented name.
``artefact``          The whole artefact as stored, so nothing the receipt summarises
                      is lost: fields, access mode, data range, limits, data life,
                      who made the change and what it was.
``previous``          ``null`` for a first version; otherwise ``{"version": n-1,
                      "receipt_sha256": base64url(SHA-256(previous compact JWS))}``,
                      which chains the versions: a receipt cannot be swapped for
                      another of the same version without breaking the next link.
                      ``receipt_sha256`` is null when the previous version has no
                      receipt (consents granted before receipts existed).
====================  ==============================================================
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwa import EdDSAAlgorithm, JWSAlgModel
from joserfc.jwk import OKPKey
from joserfc.registry import JWS_HEADER_REGISTRY
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cornerstore.db import utcnow
from cornerstore.keys import seeds
from cornerstore.models.consent import ReceiptKey

KEY_FILE = "receipt signing key"
ALGORITHM = "EdDSA"
RECEIPT_TYPE = "consent-receipt+jwt"
SCHEMA_VERSION = "cornerstore-cr-1"
HEADER_MEMBERS = frozenset({"alg", "kid", "typ"})


class ReceiptError(Exception):
    """A receipt that cannot be made, or that does not verify."""


class _EdDSA(EdDSAAlgorithm):
    # joserfc warns on every use of the deprecated name (empty: no warning);
    # the module docstring says why receipts keep it.
    security_warning = ""


class _ReceiptRegistry(jws.JWSRegistry):
    """Only EdDSA, and only the header members a receipt has, whatever else joserfc supports."""

    # Class attributes, as joserfc declares them.
    algorithms: dict[str, JWSAlgModel] = {ALGORITHM: _EdDSA()}  # noqa: RUF012
    recommended: list[str] = []  # noqa: RUF012
    default_header_registry = {name: JWS_HEADER_REGISTRY[name] for name in HEADER_MEMBERS}  # noqa: RUF012


_REGISTRY = _ReceiptRegistry(algorithms=[ALGORITHM])


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class _SigningKey:
    #: Kept out of repr, so no log line or traceback can carry the private key.
    key: OKPKey = field(repr=False)
    kid: str
    jwk: dict[str, str]

    @classmethod
    def of(cls, private: Ed25519PrivateKey) -> _SigningKey:
        key = OKPKey.import_key(private)
        public = {str(k): str(v) for k, v in key.as_dict(private=False).items()}
        kid = key.thumbprint()
        return cls(key, kid, {**public, "kid": kid, "alg": ALGORITHM, "use": "sig"})


class ReceiptSigner:
    """This process's receipt signer, following the key file when it is rotated.

    The file is made (mode 0600) on first use. ``rotate`` appends a key; every
    running process signs with it from its next receipt on, no restart.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._key = _SigningKey.of(seeds.current(path, KEY_FILE))
        self._stamp = seeds.stamp(path)

    def _current(self) -> _SigningKey:
        stamp = seeds.stamp(self._path)
        with self._lock:
            if stamp != self._stamp:
                self._key, self._stamp = _SigningKey.of(seeds.current(self._path, KEY_FILE)), stamp
            return self._key

    @property
    def kid(self) -> str:
        return self._current().kid

    def public_jwk(self) -> dict[str, str]:
        """The public key as a JWK (kty, crv, x, kid, alg, use); safe to publish."""
        return dict(self._current().jwk)

    def sign(self, claims: Mapping[str, Any]) -> str:
        """``claims`` as JSON, signed: a JWS in compact serialisation."""
        current = self._current()
        try:
            payload = json.dumps(
                dict(claims), ensure_ascii=False, separators=(",", ":"), allow_nan=False
            )
        except (TypeError, ValueError) as exc:
            raise ReceiptError(f"the claims are not JSON: {exc}") from exc
        header = {"alg": ALGORITHM, "kid": current.kid, "typ": RECEIPT_TYPE}
        return jws.serialize_compact(header, payload.encode(), current.key, registry=_REGISTRY)


def rotate(path: Path) -> None:
    """Append a new signing key; the old ones stay in the file only as long as you keep them."""
    seeds.rotate(path, KEY_FILE)


def publish(session: Session, signer: ReceiptSigner) -> None:
    """Record ``signer``'s public key (idempotent); it becomes the one current key.

    When it already is, nothing is written, so callers may publish on every
    request that needs the key to be in the JWKS.
    """
    jwk = signer.public_jwk()
    kid = jwk["kid"]
    current = session.scalars(select(ReceiptKey.kid).where(ReceiptKey.retired_at.is_(None))).all()
    if list(current) == [kid]:
        return
    if session.get(ReceiptKey, kid) is None:
        session.add(ReceiptKey(kid=kid, jwk=jwk, created_at=utcnow()))
        try:
            session.flush()
        except IntegrityError:
            # Another process published it first, and retires the others itself.
            session.rollback()
            return
    else:
        # The file went back to a key it had signed with before: that key signs again.
        session.execute(update(ReceiptKey).where(ReceiptKey.kid == kid).values(retired_at=None))
    session.execute(
        update(ReceiptKey)
        .where(ReceiptKey.kid != kid, ReceiptKey.retired_at.is_(None))
        .values(retired_at=utcnow())
    )


def jwks(session: Session) -> dict[str, list[dict[str, str]]]:
    """Every published key as a JWK Set (RFC 7517), the current one first."""
    rows = session.scalars(
        select(ReceiptKey).order_by(
            ReceiptKey.retired_at.is_not(None), ReceiptKey.created_at.desc(), ReceiptKey.kid
        )
    ).all()
    return {"keys": [{str(k): str(v) for k, v in row.jwk.items()} for row in rows]}


def _epoch(value: Any, name: str) -> int:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise ReceiptError(f"artefact {name} is not an ISO 8601 time: {value!r}") from exc
    if moment.tzinfo is None:
        raise ReceiptError(f"artefact {name} has no time zone: {value!r}")
    return int(moment.timestamp())


def _previous(artefact: Mapping[str, Any], previous_receipt: str | None) -> dict[str, Any] | None:
    previous_version = artefact.get("previous_version")
    if previous_version is None:
        if previous_receipt is not None:
            raise ReceiptError("a first version has no previous receipt to link to")
        return None
    digest = None
    if previous_receipt is not None:
        digest = _b64url(hashlib.sha256(previous_receipt.encode("ascii")).digest())
    return {"version": previous_version, "receipt_sha256": digest}


def _claims(
    artefact: Mapping[str, Any], *, previous_receipt: str | None, issuer: str, issued_at: int
) -> dict[str, Any]:
    """The receipt's claims for an artefact version; the mapping is in the module docstring."""
    try:
        receipt_id = f"{artefact['consent_id']}:{artefact['version']}"
        purpose = artefact["purpose"]
        dpv = purpose.get("dpv")
        return {
            "iss": issuer,
            "iat": issued_at,
            "jti": receipt_id,
            "version": SCHEMA_VERSION,
            "consentReceiptID": receipt_id,
            "consentTimestamp": _epoch(artefact["changed_at"], "changed_at"),
            "consentStatus": artefact["status"],
            "piiPrincipalId": artefact["shop_id"],
            "piiControllers": [{"piiController": artefact["consumer_id"]}],
            "purposes": [
                {
                    "purpose": purpose["code"],
                    "purposeCategory": [dpv] if dpv else [],
                    "consentType": "EXPLICIT",
                    "piiCategory": list(artefact["categories"]),
                    "primaryPurpose": True,
                    "termination": artefact["valid_until"],
                }
            ],
            "artefact": dict(artefact),
            "previous": _previous(artefact, previous_receipt),
        }
    except (KeyError, TypeError, AttributeError) as exc:
        raise ReceiptError(f"not a consent artefact: {exc!r}") from exc


def issue(
    signer: ReceiptSigner,
    artefact: Mapping[str, Any],
    *,
    previous_receipt: str | None,
    issuer: str,
) -> str:
    """The signed receipt of one artefact version, linked to the previous version's receipt."""
    claims = _claims(
        artefact, previous_receipt=previous_receipt, issuer=issuer, issued_at=int(time.time())
    )
    return signer.sign(claims)


def _key_for(kid: str, keys: Mapping[str, Any]) -> OKPKey:
    members = keys.get("keys")
    if not isinstance(members, list):
        raise ReceiptError("not a JWK Set: no list of keys")
    found = [k for k in members if isinstance(k, Mapping) and k.get("kid") == kid]
    if not found:
        raise ReceiptError(f"no key {kid!r} in the key set")
    jwk = found[0]
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ReceiptError(f"key {kid!r} is not an Ed25519 key")
    if jwk.get("alg", ALGORITHM) != ALGORITHM or jwk.get("use", "sig") != "sig":
        raise ReceiptError(f"key {kid!r} is not for {ALGORITHM} signatures")
    x = jwk.get("x")
    if not isinstance(x, str):
        raise ReceiptError(f"key {kid!r} has no public key")
    try:
        # Only the public members: a key set that leaks "d" must not turn into a signer here.
        key = OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": x})
    except (JoseError, ValueError, TypeError) as exc:
        raise ReceiptError(f"key {kid!r} is not a valid Ed25519 public key") from exc
    if key.thumbprint() != kid:
        raise ReceiptError(f"key {kid!r} is not the key its kid is the thumbprint of")
    return key


def verify(receipt: str, keys: Mapping[str, Any]) -> dict[str, Any]:
    """The claims of ``receipt`` if it verifies with a key in the JWK Set ``keys``.

    Offline by design: an auditor needs only the receipt and the JWKS. Raises
    ``ReceiptError`` for anything that is not a receipt this hub could have
    signed: another algorithm or type, extra header members, an unknown key, a
    bad signature, or a payload that is not a JSON object.
    """
    try:
        compact = jws.extract_compact(receipt.encode("ascii"))
        header = compact.headers()
    except (JoseError, ValueError, UnicodeError) as exc:
        raise ReceiptError("not a JWS in compact serialisation") from exc
    if set(header) != HEADER_MEMBERS:
        raise ReceiptError(f"header members {sorted(header)}, expected {sorted(HEADER_MEMBERS)}")
    if header["alg"] != ALGORITHM:
        raise ReceiptError(f"algorithm {header['alg']!r} refused: receipts are signed {ALGORITHM}")
    typ = str(header["typ"]).lower()
    if typ not in (RECEIPT_TYPE, f"application/{RECEIPT_TYPE}"):
        raise ReceiptError(f"type {header['typ']!r} is not {RECEIPT_TYPE!r}")
    if not isinstance(header["kid"], str):
        raise ReceiptError("the kid is not a string")
    key = _key_for(header["kid"], keys)
    try:
        valid = jws.validate_compact(compact, key, registry=_REGISTRY)
    except JoseError as exc:
        raise ReceiptError(f"the signature cannot be checked: {exc}") from exc
    if not valid:
        raise ReceiptError("the signature does not verify")
    try:
        claims = json.loads(compact.payload)
    except ValueError as exc:
        raise ReceiptError("the payload is not JSON") from exc
    if not isinstance(claims, dict):
        raise ReceiptError("the payload is not a JSON object")
    return claims
