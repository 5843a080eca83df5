"""The permits consent's endpoints and pages declare, and the context a change is made in.

In one place, so that the API's endpoints and the web console's pages declare
the very same permits and hand the service the same context.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from consent import service
from consent.deps import ConsentCore
from cornerstore.access import Authorize, AuthorizeShop, Permit
from cornerstore.authz import Action, Resource
from cornerstore.db import utcnow

ConsentRead = Annotated[Permit, Depends(AuthorizeShop(Resource.consent, Action.read))]
ConsentWrite = Annotated[Permit, Depends(AuthorizeShop(Resource.consent, Action.write))]
ConsentRequestCreate = Annotated[
    Permit, Depends(AuthorizeShop(Resource.consent_request, Action.create))
]
ReceiptRead = Annotated[Permit, Depends(AuthorizeShop(Resource.consent_receipt, Action.read))]
ShopHistoryRead = Annotated[Permit, Depends(AuthorizeShop(Resource.consent_history, Action.read))]
HistoryRead = Annotated[Permit, Depends(Authorize(Resource.consent_history, Action.read))]
ConsentList = Annotated[Permit, Depends(Authorize(Resource.consent, Action.list))]


def change_context(core: ConsentCore, permit: Permit) -> service.Context:
    """The context of a change the permitted caller makes now."""
    return service.context(core, permit.caller, permit.policy_version, utcnow())
