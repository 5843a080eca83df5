from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from cornerstore.access import Authorize, Permit
from cornerstore.authz import Action, Resource
from cornerstore.deps import DbSession
from cornerstore.errors import GLOBAL_ERRORS
from hub.principals import service
from hub.principals.schemas import PrincipalCreated, PrincipalIn

router = APIRouter(prefix="/v1/principals", tags=["admin"], responses=GLOBAL_ERRORS)

PrincipalCreate = Annotated[Permit, Depends(Authorize(Resource.principal, Action.create))]


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
