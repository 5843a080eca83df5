from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from cornerstore.access import Authorize, AuthorizeShop, Permit
from cornerstore.authz import Action, Resource
from cornerstore.deps import CoreDep, DbSession
from cornerstore.errors import GLOBAL_ERRORS, SHOP_ERRORS, NotFound
from hub.shops import erasure, service
from hub.shops.schemas import ErasureOut, ShopChange, ShopIn, ShopOut

router = APIRouter(prefix="/v1/shops", tags=["shops"])

ShopCreate = Annotated[Permit, Depends(Authorize(Resource.shop, Action.create))]
ShopErase = Annotated[Permit, Depends(AuthorizeShop(Resource.shop, Action.erase))]
ShopRead = Annotated[Permit, Depends(AuthorizeShop(Resource.shop, Action.read))]
ShopWrite = Annotated[Permit, Depends(AuthorizeShop(Resource.shop, Action.write))]


@router.post(
    "",
    response_model=ShopOut,
    status_code=status.HTTP_201_CREATED,
    summary="Register a shop",
    responses=GLOBAL_ERRORS,
)
def create_shop(permit: ShopCreate, body: ShopIn, core: CoreDep, session: DbSession) -> ShopOut:
    return service.create(
        session, core.keyring, body, by=permit.caller, policy_version=permit.policy_version
    )


@router.get(
    "/{shop_id}", response_model=ShopOut, summary="The shop's own details", responses=SHOP_ERRORS
)
def read_shop(permit: ShopRead, shop_id: uuid.UUID, session: DbSession) -> ShopOut:
    shop = service.get(session, shop_id)
    if shop is None:
        raise NotFound()
    return shop


@router.patch(
    "/{shop_id}",
    response_model=ShopOut,
    summary="Change the shop's own details: its time zone",
    description="For the shop's shopkeeper, or an admin. The audit log records which "
    "details changed.",
    responses=SHOP_ERRORS,
)
def change_shop(
    permit: ShopWrite, shop_id: uuid.UUID, body: ShopChange, session: DbSession
) -> ShopOut:
    shop = service.change(
        session, shop_id, body, by=permit.caller, policy_version=permit.policy_version
    )
    if shop is None:
        raise NotFound()
    return shop


@router.post(
    "/{shop_id}/erasure",
    response_model=ErasureOut,
    summary="Erase the shop: delete its data and destroy its keys",
    description=(
        "For the shop's shopkeeper, or an admin on their behalf. Deletes the shop's records, "
        "quarantine, consents and data keys, then destroys the shop's key-encryption key in the "
        "key provider, so that no backup of the database can be read for this shop again. The "
        "audit log records the erasure and the consents it ended, without any data values. "
        "Answers 202 with `keys_pending` if the key could not be destroyed yet."
    ),
    responses={**SHOP_ERRORS, 202: {"model": ErasureOut, "description": "Keys pending"}},
)
def erase_shop(
    permit: ShopErase, shop_id: uuid.UUID, core: CoreDep, session: DbSession, response: Response
) -> ErasureOut:
    outcome = erasure.erase(
        session,
        core.sessions,
        core.keyring,
        shop_id,
        by=permit.caller,
        policy_version=permit.policy_version,
    )
    if outcome is None:
        raise NotFound()
    erased, destroyed = outcome
    if not destroyed:
        response.status_code = status.HTTP_202_ACCEPTED
    return ErasureOut(
        shop_id=shop_id,
        status="erased" if destroyed else "keys_pending",
        consents_ended=erased.consents_ended,
        records_deleted=erased.records_deleted,
        quarantined_deleted=erased.quarantined_deleted,
    )
