from __future__ import annotations

from fastapi import APIRouter, status

from cornerstore.access import authorize
from cornerstore.deps import CurrentCaller, DbSession, HubDep
from cornerstore.errors import ERROR_RESPONSES
from cornerstore.shops import service
from cornerstore.shops.schemas import ShopIn, ShopOut

router = APIRouter(prefix="/v1/shops", tags=["admin"], responses=ERROR_RESPONSES)


@router.post(
    "", response_model=ShopOut, status_code=status.HTTP_201_CREATED, summary="Register a shop"
)
def create_shop(hub: HubDep, session: DbSession, caller: CurrentCaller, body: ShopIn) -> ShopOut:
    authorize(hub, session, caller, resource="shop", action="create")
    return service.create(session, hub.keyring, body)
