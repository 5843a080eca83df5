from __future__ import annotations

from fastapi import APIRouter, status

from cornerstore.access import authorize
from cornerstore.deps import CoreDep, CurrentCaller, DbSession
from cornerstore.errors import GLOBAL_ERRORS
from hub.principals import service
from hub.principals.schemas import PrincipalCreated, PrincipalIn

router = APIRouter(prefix="/v1/principals", tags=["admin"], responses=GLOBAL_ERRORS)


@router.post(
    "",
    response_model=PrincipalCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create a principal and its API key (shown once)",
)
def create_principal(
    hub: CoreDep, session: DbSession, caller: CurrentCaller, body: PrincipalIn
) -> PrincipalCreated:
    permit = authorize(hub, session, caller, resource="principal", action="create")
    return service.create(session, body, by=caller, policy_version=permit.policy_version)
