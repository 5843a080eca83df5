"""The portal's "my data": the shop's time zone, download everything, or erase it.

The download is ``GET /v1/shops/{id}/export`` itself. Erasure asks the
shopkeeper to type the shop's name, says what goes and that it cannot be
undone, and then runs the erasure the API's endpoint runs. The time zone is
changed as ``PATCH /v1/shops/{id}`` changes it.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from cornerstore.access import AuthorizeShop, Permit
from cornerstore.authz import Action, Resource
from cornerstore.deps import DbSession
from cornerstore.errors import FieldError, NotFound, ValidationFailed
from cornerstore.fieldtypes import TimeZoneName
from web_console.forms import invalid, own_shop
from web_console.ports import ConsoleCoreDep
from web_console.templating import render

router = APIRouter(include_in_schema=False)

ShopExport = Annotated[Permit, Depends(AuthorizeShop(Resource.shop, Action.export))]
ShopErase = Annotated[Permit, Depends(AuthorizeShop(Resource.shop, Action.erase))]
ShopWrite = Annotated[Permit, Depends(AuthorizeShop(Resource.shop, Action.write))]

#: The zones the portal offers first: where shops on such a hub are. Any other IANA
#: zone can be set through the API, and is then offered too.
ZONES = (
    "Asia/Shanghai",
    "Asia/Hong_Kong",
    "Asia/Macau",
    "Asia/Taipei",
    "Asia/Singapore",
    "Asia/Kuala_Lumpur",
    "Asia/Bangkok",
    "Asia/Ho_Chi_Minh",
    "Asia/Jakarta",
    "Asia/Manila",
    "Asia/Seoul",
    "Asia/Tokyo",
    "Europe/London",
)


@router.get("/portal/shops/{shop_id}/my-data")
def my_data(
    request: Request,
    shop_id: uuid.UUID,
    permit: ShopExport,
    core: ConsoleCoreDep,
    session: DbSession,
) -> Response:
    own_shop(permit, shop_id)
    shop = core.shop(session, shop_id)
    if shop is None:
        raise NotFound()
    zones = ZONES if shop.time_zone in (None, *ZONES) else (shop.time_zone, *ZONES)
    return render(
        request,
        "portal/my_data.html",
        time_zone=shop.time_zone,
        shop_id=shop_id,
        section="my-data",
        shop_name=shop.name,
        zones=zones,
    )


class _TimeZoneForm(BaseModel):
    time_zone: TimeZoneName | None


@router.post("/portal/shops/{shop_id}/time-zone")
def set_time_zone(
    shop_id: uuid.UUID,
    permit: ShopWrite,
    core: ConsoleCoreDep,
    session: DbSession,
    time_zone: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    own_shop(permit, shop_id)
    try:
        chosen = _TimeZoneForm(time_zone=time_zone or None)
    except ValidationError as exc:
        raise invalid(exc, "form", "not a time zone") from None
    changed = core.set_shop_time_zone(
        session,
        shop_id,
        chosen.time_zone,
        by=permit.caller,
        policy_version=permit.policy_version,
    )
    if not changed:
        raise NotFound()
    return Response(status_code=204, headers={"HX-Redirect": f"/portal/shops/{shop_id}/"})


@router.post("/portal/shops/{shop_id}/erasure")
def erase(
    shop_id: uuid.UUID,
    permit: ShopErase,
    core: ConsoleCoreDep,
    session: DbSession,
    shop_name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    own_shop(permit, shop_id)
    shop = core.shop(session, shop_id)
    if shop is None:
        raise NotFound()
    if shop_name.strip() != shop.name:
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
