from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from cornerstore.access import authorize
from cornerstore.deps import CoreDep, CurrentCaller, DbSession
from cornerstore.errors import GLOBAL_ERRORS, SHOP_ERRORS, NotFound
from hub.shops import erasure, service
from hub.shops.schemas import ErasureOut, ShopIn, ShopOut

router = APIRouter(prefix="/v1/shops", tags=["shops"])


@router.post(
    "",
    response_model=ShopOut,
    status_code=status.HTTP_201_CREATED,
    summary="Register a shop",
    responses=GLOBAL_ERRORS,
)
def create_shop(hub: CoreDep, session: DbSession, caller: CurrentCaller, body: ShopIn) -> ShopOut:
    permit = authorize(hub, session, caller, resource="shop", action="create")
    return service.create(
        session, hub.keyring, body, by=caller, policy_version=permit.policy_version
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
    hub: CoreDep, session: DbSession, caller: CurrentCaller, shop_id: uuid.UUID, response: Response
) -> ErasureOut:
    permit = authorize(hub, session, caller, resource="shop", action="erase", shop_id=shop_id)
    erased = erasure.delete_rows(session, shop_id, by=caller, policy_version=permit.policy_version)
    if erased is None:
        raise NotFound()
    # The deletion must be durable before the key goes: see hub.shops.erasure.
    session.commit()
    destroyed = erasure.destroy_keys(hub.sessions, hub.keyring, shop_id)
    if not destroyed:
        response.status_code = status.HTTP_202_ACCEPTED
    return ErasureOut(
        shop_id=shop_id,
        status="erased" if destroyed else "keys_pending",
        consents_ended=erased.consents_ended,
        records_deleted=erased.records_deleted,
        quarantined_deleted=erased.quarantined_deleted,
    )
