from __future__ import annotations

from fastapi import APIRouter, status

from cornerstore.access import authorize
from cornerstore.deps import CurrentCaller, DbSession, HubDep
from cornerstore.errors import ERROR_RESPONSES
from cornerstore.principals import service
from cornerstore.principals.schemas import PrincipalCreated, PrincipalIn

router = APIRouter(prefix="/v1/principals", tags=["admin"], responses=ERROR_RESPONSES)


@router.post(
    "",
    response_model=PrincipalCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create a principal and its API key (shown once)",
)
def create_principal(
    hub: HubDep, session: DbSession, caller: CurrentCaller, body: PrincipalIn
) -> PrincipalCreated:
    authorize(hub, session, caller, resource="principal", action="create")
    return service.create(session, body)
