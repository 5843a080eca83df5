"""The portal's offers: what consumers propose to the shop (an order, a credit line), to answer.

The page lists through the same service as ``GET /v1/shops/{id}/proposals``
and answers through the same one as ``POST …/answer``, under the same permits.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from cornerstore.db import utcnow
from cornerstore.deps import CoreDep, DbSession
from proposals import service
from proposals.deps import ProposalAnswer, ShopProposalRead
from proposals.schemas import AnswerIn
from web_console.forms import invalid, own_shop
from web_console.ports import ShopTimeZone
from web_console.templating import render

router = APIRouter(prefix="/portal/shops/{shop_id}", include_in_schema=False)


@router.get("/offers")
def offers_page(
    request: Request,
    shop_id: uuid.UUID,
    permit: ShopProposalRead,
    core: CoreDep,
    session: DbSession,
    time_zone: ShopTimeZone,
) -> Response:
    own_shop(permit, shop_id)
    return render(
        request,
        "portal/offers.html",
        time_zone=time_zone,
        shop_id=shop_id,
        section="offers",
        proposals=service.for_shop(session, core.keyring, shop_id, utcnow()),
    )


@router.post("/offers/{proposal_id}/{decision}")
def answer(
    shop_id: uuid.UUID,
    proposal_id: uuid.UUID,
    decision: str,
    permit: ProposalAnswer,
    core: CoreDep,
    session: DbSession,
    sku: Annotated[list[str] | None, Form()] = None,
    quantity: Annotated[list[int] | None, Form()] = None,
) -> Response:
    """Accept (an order with the quantities the form holds) or decline."""
    own_shop(permit, shop_id)
    lines = None
    if decision == "accept" and sku is not None:
        lines = [{"sku": s, "quantity": q} for s, q in zip(sku, quantity or [], strict=False)]
    try:
        body = AnswerIn.model_validate({"decision": decision, "lines": lines})
    except ValidationError as exc:
        raise invalid(exc, "form", "the answer is not valid") from None
    service.answer(
        session,
        core.keyring,
        permit.caller,
        shop_id,
        proposal_id,
        body,
        now=utcnow(),
        policy_version=permit.policy_version,
    )
    return Response(status_code=204, headers={"HX-Redirect": f"/portal/shops/{shop_id}/offers"})
