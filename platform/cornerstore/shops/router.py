from __future__ import annotations

from fastapi import APIRouter, status

from cornerstore.access import authorize
from cornerstore.deps import CurrentCaller, DbSession, HubDep
from cornerstore.errors import GLOBAL_ERRORS
from cornerstore.shops import service
from cornerstore.shops.schemas import ShopIn, ShopOut

router = APIRouter(prefix="/v1/shops", tags=["admin"], responses=GLOBAL_ERRORS)


@router.post(
    "", response_model=ShopOut, status_code=status.HTTP_201_CREATED, summary="Register a shop"
)
def create_shop(hub: HubDep, session: DbSession, caller: CurrentCaller, body: ShopIn) -> ShopOut:
    permit = authorize(hub, session, caller, resource="shop", action="create")
    return service.create(
        session, hub.keyring, body, by=caller, policy_version=permit.policy_version
    )
