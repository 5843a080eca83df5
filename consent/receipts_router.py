"""``GET /v1/keys/receipts``: the keys that verify consent receipts, as a JWK Set.

Public, like the audit log's public key: anyone holding a receipt may check
it offline with these keys (``consent.receipts.verify``, or any JOSE library).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from consent import receipts
from consent.deps import ConsentCoreDep
from cornerstore.deps import DbSession

router = APIRouter(prefix="/v1/keys", tags=["consent"])

JWK_SET_TYPE = "application/jwk-set+json"


@router.get(
    "/receipts",
    response_class=JSONResponse,
    summary="The consent-receipt verification keys (JWK Set, RFC 7517), the current one first",
    description="Public: anyone may verify receipts offline with these keys. Keys that signed "
    "before a rotation stay listed, after the current one, so older receipts still verify.",
    responses={200: {"content": {JWK_SET_TYPE: {}}, "description": "The JWK Set"}},
)
def receipt_keys(hub: ConsentCoreDep, session: DbSession) -> JSONResponse:
    # The signer follows its key file, so after a rotation it may sign with a
    # key no process has published yet; publishing it here (a no-op when it is
    # already current) means the set a verifier fetches covers every receipt
    # handed out before it.
    receipts.publish(session, hub.receipt_signer)
    keys: dict[str, Any] = receipts.jwks(session)
    return JSONResponse(keys, media_type=JWK_SET_TYPE)
