"""Proposals: a consumer proposes to a shop; the shopkeeper reads and answers."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Header, Response, status

from cornerstore.db import utcnow
from cornerstore.deps import CoreDep, DbSession
from cornerstore.errors import GLOBAL_ERRORS, SHOP_ERRORS, Conflict, NotFound, error_responses
from proposals import service
from proposals.deps import OwnProposalRead, ProposalAnswer, ProposalCreate, ShopProposalRead
from proposals.schemas import AnswerIn, ProposalIn, ProposalOut, ProposalsOut

router = APIRouter(tags=["proposals"])


@router.post(
    "/v1/shops/{shop_id}/proposals",
    status_code=status.HTTP_201_CREATED,
    response_model=ProposalOut,
    responses={
        **SHOP_ERRORS,
        **error_responses(Conflict),
        200: {"model": ProposalOut, "description": "The proposal this Idempotency-Key made"},
    },
    summary="Propose an order to place (replenishment) or a credit line (credit-assessment)",
    description="Only under an active consent of the shop for the proposal's purpose; otherwise "
    "404, as for a shop that does not exist. The shopkeeper answers in the portal or through "
    "the API, and the consumer hears of it as a `proposal.answered` webhook. With an "
    "`Idempotency-Key`, sending the same proposal again answers 200 with the one it made "
    "(so a retry never asks the shopkeeper twice); the key with another proposal is a 409.",
)
def propose(
    permit: ProposalCreate,
    shop_id: uuid.UUID,
    body: Annotated[ProposalIn, Body()],
    core: CoreDep,
    session: DbSession,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(min_length=8, max_length=200, description="Your name for this proposal"),
    ] = None,
) -> ProposalOut:
    proposal, made = service.create(
        session,
        core.keyring,
        permit.caller,
        shop_id,
        body,
        now=utcnow(),
        policy_version=permit.policy_version,
        idempotency_key=idempotency_key,
    )
    if not made:
        response.status_code = status.HTTP_200_OK
    return proposal


@router.get(
    "/v1/shops/{shop_id}/proposals",
    response_model=ProposalsOut,
    responses=SHOP_ERRORS,
    summary="The shop's proposals, pending first",
)
def shop_proposals(
    permit: ShopProposalRead, shop_id: uuid.UUID, core: CoreDep, session: DbSession
) -> ProposalsOut:
    return ProposalsOut(proposals=service.for_shop(session, core.keyring, shop_id, utcnow()))


@router.post(
    "/v1/shops/{shop_id}/proposals/{proposal_id}/answer",
    response_model=ProposalOut,
    responses=SHOP_ERRORS | error_responses(Conflict),
    summary="Accept (an order perhaps with other quantities) or decline a proposal",
)
def answer(
    permit: ProposalAnswer,
    shop_id: uuid.UUID,
    proposal_id: uuid.UUID,
    body: AnswerIn,
    core: CoreDep,
    session: DbSession,
) -> ProposalOut:
    return service.answer(
        session,
        core.keyring,
        permit.caller,
        shop_id,
        proposal_id,
        body,
        now=utcnow(),
        policy_version=permit.policy_version,
    )


@router.get(
    "/v1/consumers/me/proposals/{proposal_id}",
    response_model=ProposalOut,
    responses=GLOBAL_ERRORS | error_responses(NotFound),
    summary="One of the caller's proposals, with the shop's answer",
)
def my_proposal(
    permit: OwnProposalRead, proposal_id: uuid.UUID, core: CoreDep, session: DbSession
) -> ProposalOut:
    return service.for_consumer(session, core.keyring, permit.caller, proposal_id, utcnow())
