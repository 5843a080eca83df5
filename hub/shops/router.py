from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from cornerstore.access import Authorize, AuthorizeShop, Permit
from cornerstore.authz import Action, Resource
from cornerstore.deps import CoreDep, DbSession
from cornerstore.errors import GLOBAL_ERRORS, SHOP_ERRORS, NotFound
from hub.shops import erasure, service
from hub.shops.schemas import ErasureOut, ShopIn, ShopOut

router = APIRouter(prefix="/v1/shops", tags=["shops"])

ShopCreate = Annotated[Permit, Depends(Authorize(Resource.shop, Action.create))]
ShopErase = Annotated[Permit, Depends(AuthorizeShop(Resource.shop, Action.erase))]


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
