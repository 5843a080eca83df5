"""A shopkeeper's consents for their own shop: list, grant, revoke."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from consent import service
from consent.schemas import ConsentIn, ConsentOut, ConsentsOut
from cornerstore.access import authorize
from cornerstore.deps import CurrentCaller, DbSession, HubDep
from cornerstore.errors import SHOP_ERRORS, Conflict, error_responses

router = APIRouter(prefix="/v1/shops/{shop_id}/consents", tags=["consent"], responses=SHOP_ERRORS)


@router.get("", response_model=ConsentsOut, summary="List the shop's consents")
def list_consents(
    hub: HubDep, session: DbSession, caller: CurrentCaller, shop_id: uuid.UUID
) -> ConsentsOut:
    authorize(hub, session, caller, resource="consent", action="read", shop_id=shop_id)
    return ConsentsOut(consents=service.list_for_shop(session, shop_id))


@router.post(
    "",
    response_model=ConsentOut,
    status_code=status.HTTP_201_CREATED,
    summary="Grant a consumer consent to read some categories for one purpose",
)
def grant_consent(
    hub: HubDep, session: DbSession, caller: CurrentCaller, shop_id: uuid.UUID, body: ConsentIn
) -> ConsentOut:
    permit = authorize(hub, session, caller, resource="consent", action="write", shop_id=shop_id)
    allowed = frozenset(
        c.value for c in body.categories if hub.authorizer.purpose_allows(body.purpose, c)
    )
    return service.grant(
        session,
        caller,
        shop_id,
        body,
        allowed_categories=allowed,
        policy_version=permit.policy_version,
    )


@router.post(
    "/{consent_id}/revoke",
    response_model=ConsentOut,
    responses=error_responses(Conflict),
    summary="Revoke a consent; the very next read under it is refused",
)
def revoke_consent(
    hub: HubDep,
    session: DbSession,
    caller: CurrentCaller,
    shop_id: uuid.UUID,
    consent_id: uuid.UUID,
) -> ConsentOut:
    permit = authorize(hub, session, caller, resource="consent", action="write", shop_id=shop_id)
    return service.revoke(
        session, caller, shop_id, consent_id, policy_version=permit.policy_version
    )
