"""Principals: who calls the hub. Admins create, list and disable them; keys are rotated."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from fastapi import Path as FastApiPath

from cornerstore.access import Authorize, AuthorizePrincipal, Permit
from cornerstore.authz import Action, Resource
from cornerstore.db import utcnow
from cornerstore.deps import CoreDep, DbSession
from cornerstore.errors import (
    GLOBAL_ERRORS,
    Conflict,
    FieldError,
    NotFound,
    ValidationFailed,
    error_responses,
)
from cornerstore.models.principals import Role
from hub.principals import service
from hub.principals.schemas import (
    ConsumerOut,
    DisabledOut,
    KeyRotated,
    PrincipalCreated,
    PrincipalIn,
    PrincipalOut,
    PrincipalsOut,
    SigningKeyIn,
    SigningKeyOut,
    SigningKeysOut,
    SignInLinkOut,
)

router = APIRouter(prefix="/v1/principals", tags=["admin"], responses=GLOBAL_ERRORS)
consumers_router = APIRouter(prefix="/v1/consumers", tags=["consent"], responses=GLOBAL_ERRORS)

PrincipalCreate = Annotated[Permit, Depends(Authorize(Resource.principal, Action.create))]
PrincipalList = Annotated[Permit, Depends(Authorize(Resource.principal, Action.list))]
PrincipalDisable = Annotated[Permit, Depends(Authorize(Resource.principal, Action.disable))]
ConsumerRead = Annotated[Permit, Depends(Authorize(Resource.consumer, Action.read))]
IdentityRead = Annotated[Permit, Depends(Authorize(Resource.identity, Action.read))]
KeyCreate = Annotated[Permit, Depends(AuthorizePrincipal(Resource.principal_key, Action.create))]
SigningKeyCreate = Annotated[
    Permit, Depends(AuthorizePrincipal(Resource.signing_key, Action.create))
]
SigningKeyList = Annotated[Permit, Depends(AuthorizePrincipal(Resource.signing_key, Action.read))]
SigningKeyRevoke = Annotated[
    Permit, Depends(AuthorizePrincipal(Resource.signing_key, Action.disable))
]
SignInLinkCreate = Annotated[
    Permit, Depends(AuthorizePrincipal(Resource.sign_in_link, Action.create))
]

#: How long a rotated key keeps working beside its successor, unless the request says.
DEFAULT_GRACE = timedelta(hours=24)


@router.post(
    "",
    response_model=PrincipalCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create a principal and its API key (shown once)",
)
def create_principal(
    permit: PrincipalCreate, body: PrincipalIn, session: DbSession
) -> PrincipalCreated:
    return service.create(session, body, by=permit.caller, policy_version=permit.policy_version)


@router.get("/me", response_model=PrincipalOut, summary="Who the calling key belongs to")
def me(permit: IdentityRead, session: DbSession) -> PrincipalOut:
    return service.get(session, permit.caller.id)


@router.get("", response_model=PrincipalsOut, summary="List principals, a page at a time")
def list_principals(
    permit: PrincipalList,
    session: DbSession,
    role: Role | None = None,
    shop_id: uuid.UUID | None = None,
    cursor: Annotated[uuid.UUID | None, Query(description="The `next` of the page before")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> PrincipalsOut:
    return service.list_page(session, role=role, shop_id=shop_id, after=cursor, limit=limit)


@router.post(
    "/{principal_id}/disable",
    response_model=DisabledOut,
    responses=error_responses(NotFound),
    summary="Disable a principal: every one of its keys answers 401 from now on",
)
def disable_principal(
    permit: PrincipalDisable, principal_id: uuid.UUID, session: DbSession
) -> DisabledOut:
    return service.disable(
        session,
        principal_id,
        by=permit.caller,
        policy_version=permit.policy_version,
        now=utcnow(),
    )


@router.post(
    "/{principal_id}/keys",
    response_model=KeyRotated,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(NotFound, Conflict),
    summary="Issue a new API key (shown once); the earlier keys stop after a grace period",
    description="An admin for any principal; a shopkeeper for itself and its shops' connectors.",
)
def rotate_key(
    permit: KeyCreate,
    principal_id: uuid.UUID,
    session: DbSession,
    grace: Annotated[
        timedelta | None,
        Query(
            description="How long the earlier keys keep working, as an ISO 8601 duration "
            "(default PT24H; PT0S ends them at once)",
            examples=["PT24H"],
        ),
    ] = None,
) -> KeyRotated:
    if grace is not None and not timedelta(0) <= grace <= service.MAX_GRACE:
        raise ValidationFailed(
            "a grace period runs from PT0S to P30D",
            [FieldError(field="query.grace", reason="must be from PT0S to P30D")],
        )
    return service.rotate_key(
        session,
        principal_id,
        grace=DEFAULT_GRACE if grace is None else grace,
        by=permit.caller,
        policy_version=permit.policy_version,
        now=utcnow(),
    )


@router.post(
    "/{principal_id}/signing-keys",
    response_model=SigningKeyOut,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(NotFound, Conflict),
    summary="Register the public key a connector signs its stream messages with",
    description="The connector itself, its shopkeeper, or an admin. The connector makes "
    "the Ed25519 pair and keeps the private half; see docs/streaming.md.",
)
def add_signing_key(
    permit: SigningKeyCreate, principal_id: uuid.UUID, body: SigningKeyIn, session: DbSession
) -> SigningKeyOut:
    return service.add_signing_key(
        session,
        principal_id,
        body,
        by=permit.caller,
        policy_version=permit.policy_version,
        now=utcnow(),
    )


@router.get(
    "/{principal_id}/signing-keys",
    response_model=SigningKeysOut,
    responses=error_responses(NotFound),
    summary="List the keys a connector's stream messages may be signed with, revoked ones too",
)
def list_signing_keys(
    permit: SigningKeyList, principal_id: uuid.UUID, session: DbSession
) -> SigningKeysOut:
    return service.signing_keys(session, principal_id)


@router.delete(
    "/{principal_id}/signing-keys/{key_id}",
    response_model=SigningKeyOut,
    responses=error_responses(NotFound),
    summary="Revoke a signing key: its messages, even those sent already, are refused",
)
def revoke_signing_key(
    permit: SigningKeyRevoke,
    principal_id: uuid.UUID,
    key_id: Annotated[str, FastApiPath(max_length=40)],
    session: DbSession,
) -> SigningKeyOut:
    return service.revoke_signing_key(
        session,
        principal_id,
        key_id,
        by=permit.caller,
        policy_version=permit.policy_version,
        now=utcnow(),
    )


@router.post(
    "/{principal_id}/sign-in-link",
    response_model=SignInLinkOut,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(NotFound, Conflict),
    summary="Mint a one-time link into the web console (shown once)",
    description="An admin for any shopkeeper or auditor; a shopkeeper for itself. "
    "The link starts one session and is valid for `CORNERSTORE_SIGN_IN_LINK_VALID_FOR`.",
)
def mint_sign_in_link(
    permit: SignInLinkCreate, principal_id: uuid.UUID, core: CoreDep, session: DbSession
) -> SignInLinkOut:
    return service.sign_in_link(
        session,
        principal_id,
        public_url=core.settings.public_url,
        valid_for=core.settings.sign_in_link_valid_for,
        by=permit.caller,
        policy_version=permit.policy_version,
        now=utcnow(),
    )


@consumers_router.get(
    "/{consumer_id}",
    response_model=ConsumerOut,
    responses=error_responses(NotFound),
    summary="Who a consumer is: its name and what it does, for the shopkeepers it asks",
)
def get_consumer(permit: ConsumerRead, consumer_id: uuid.UUID, session: DbSession) -> ConsumerOut:
    return service.consumer(session, consumer_id)
