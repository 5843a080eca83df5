"""The portal's "my data": download everything, or erase it, behind a confirmation.

The download is ``GET /v1/shops/{id}/export`` itself. Erasure asks the
shopkeeper to type the shop's name, says what goes and that it cannot be
undone, and then runs the erasure the API's endpoint runs.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from cornerstore.access import AuthorizeShop, Permit
from cornerstore.authz import Action, Resource
from cornerstore.deps import DbSession
from cornerstore.errors import FieldError, NotFound, ValidationFailed
from web_console.forms import own_shop
from web_console.ports import ConsoleCoreDep
from web_console.templating import render

router = APIRouter(include_in_schema=False)

ShopExport = Annotated[Permit, Depends(AuthorizeShop(Resource.shop, Action.export))]
ShopErase = Annotated[Permit, Depends(AuthorizeShop(Resource.shop, Action.erase))]


@router.get("/portal/shops/{shop_id}/my-data")
def my_data(
    request: Request,
    shop_id: uuid.UUID,
    permit: ShopExport,
    core: ConsoleCoreDep,
    session: DbSession,
) -> Response:
    own_shop(permit, shop_id)
    name = core.shop_name(session, shop_id)
    if name is None:
        raise NotFound()
    return render(
        request,
        "portal/my_data.html",
        shop_id=shop_id,
        section="my-data",
        shop_name=name,
    )


@router.post("/portal/shops/{shop_id}/erasure")
def erase(
    shop_id: uuid.UUID,
    permit: ShopErase,
    core: ConsoleCoreDep,
    session: DbSession,
    shop_name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    own_shop(permit, shop_id)
    name = core.shop_name(session, shop_id)
    if name is None:
        raise NotFound()
    if shop_name.strip() != name:
        raise ValidationFailed(
            "type the shop's name exactly to erase it",
            [FieldError(field="form.shop_name", reason="does not match the shop's name")],
        )
    erased = core.erase_shop(
        session, shop_id, by=permit.caller, policy_version=permit.policy_version
    )
    if erased is None:
        raise NotFound()
    # The keeper of only this shop is disabled with it: its session is over too.
    return Response(status_code=204, headers={"HX-Redirect": "/erased"})


@router.get("/erased")
def erased(request: Request) -> Response:
    return render(request, "erased.html")
