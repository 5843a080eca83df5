"""The portal's consent pages: requests to answer, and the consents the shop has given.

Every action posts to a page route that declares the same permit as the API
endpoint beside it and calls the same consent service function.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from consent import service
from consent.deps import ConsentCoreDep
from consent.permits import ConsentRead, ConsentWrite, change_context
from consent.schemas import NarrowingIn
from cornerstore.db import utcnow
from cornerstore.deps import DbSession
from cornerstore.errors import NotFound
from cornerstore.models.consent import ConsentStatus
from web_console import words
from web_console.forms import invalid, own_shop
from web_console.ports import ShopTimeZone
from web_console.templating import render

router = APIRouter(prefix="/portal/shops/{shop_id}", include_in_schema=False)

LIVE = (ConsentStatus.active, ConsentStatus.paused)


def _back(path: str) -> Response:
    """After an action: htmx loads the page again, showing the change."""
    return Response(status_code=204, headers={"HX-Redirect": path})


@router.get("/requests")
def requests_page(
    request: Request,
    shop_id: uuid.UUID,
    permit: ConsentRead,
    core: ConsentCoreDep,
    session: DbSession,
    time_zone: ShopTimeZone,
) -> Response:
    own_shop(permit, shop_id)
    pending = service.list_for_shop(session, shop_id, utcnow(), ConsentStatus.requested)
    return render(
        request,
        "portal/requests.html",
        time_zone=time_zone,
        shop_id=shop_id,
        section="requests",
        requests=pending,
        purposes=core.authorizer.purposes,
        words=words,
    )


@router.post("/requests/{request_id}/approve")
def approve(
    shop_id: uuid.UUID,
    request_id: uuid.UUID,
    permit: ConsentWrite,
    core: ConsentCoreDep,
    session: DbSession,
    categories: Annotated[list[str] | None, Form()] = None,
    days: Annotated[int | None, Form(ge=1, le=3660)] = None,
    reads_per_day: Annotated[int | None, Form(ge=1, le=1_000_000)] = None,
) -> Response:
    """As asked, or narrowed: fewer categories, fewer days, fewer reads a day."""
    own_shop(permit, shop_id)
    narrowed = categories is not None or days is not None or reads_per_day is not None
    body = None
    if narrowed:
        try:
            body = NarrowingIn.model_validate(
                {
                    "categories": categories,
                    "expires_at": utcnow() + timedelta(days=days) if days else None,
                    "max_reads_per_day": reads_per_day,
                }
            )
        except ValidationError as exc:
            raise invalid(exc, "form", "the narrowed terms are not valid") from None
    service.approve(session, change_context(core, permit), shop_id, request_id, body)
    return _back(f"/portal/shops/{shop_id}/requests")


@router.post("/requests/{request_id}/refuse")
def refuse(
    shop_id: uuid.UUID,
    request_id: uuid.UUID,
    permit: ConsentWrite,
    core: ConsentCoreDep,
    session: DbSession,
) -> Response:
    own_shop(permit, shop_id)
    service.refuse(session, change_context(core, permit), shop_id, request_id)
    return _back(f"/portal/shops/{shop_id}/requests")


@router.get("/consents")
def consents_page(
    request: Request,
    shop_id: uuid.UUID,
    permit: ConsentRead,
    core: ConsentCoreDep,
    session: DbSession,
    time_zone: ShopTimeZone,
) -> Response:
    own_shop(permit, shop_id)
    every = service.list_for_shop(session, shop_id, utcnow())
    live = [c for c in every if c.status in LIVE]
    past = [c for c in every if c.status not in (*LIVE, ConsentStatus.requested)]
    return render(
        request,
        "portal/consents.html",
        time_zone=time_zone,
        shop_id=shop_id,
        section="consents",
        live=live,
        past=list(reversed(past)),
        purposes=core.authorizer.purposes,
        words=words,
    )


@router.post("/consents/{consent_id}/{change}")
def change_consent(
    shop_id: uuid.UUID,
    consent_id: uuid.UUID,
    change: str,
    permit: ConsentWrite,
    core: ConsentCoreDep,
    session: DbSession,
) -> Response:
    own_shop(permit, shop_id)
    changes = {"pause": service.pause, "resume": service.resume, "revoke": service.revoke}
    if change not in changes:
        raise NotFound()
    changes[change](session, change_context(core, permit), shop_id, consent_id)
    return _back(f"/portal/shops/{shop_id}/consents")


@router.post("/sharing/{change}")
def change_sharing(
    shop_id: uuid.UUID,
    change: str,
    permit: ConsentWrite,
    core: ConsentCoreDep,
    session: DbSession,
) -> Response:
    """Pause all sharing with one control, or resume what that paused."""
    own_shop(permit, shop_id)
    changes = {"pause": service.pause_sharing, "resume": service.resume_sharing}
    if change not in changes:
        raise NotFound()
    changes[change](session, change_context(core, permit), shop_id)
    return _back(f"/portal/shops/{shop_id}/consents")
