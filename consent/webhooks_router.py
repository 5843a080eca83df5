"""A consumer's webhook: where it is told of changes to its consents, and the delivery log."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from consent import webhooks
from consent.webhook_schemas import (
    DeliveriesOut,
    DeliveryOut,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
)
from cornerstore.access import Authorize, Permit
from cornerstore.authz import Action, Resource
from cornerstore.deps import CoreDep, DbSession
from cornerstore.errors import (
    GLOBAL_ERRORS,
    FieldError,
    NotFound,
    ValidationFailed,
    error_responses,
)
from cornerstore.models.consent import ConsumerWebhook, WebhookDelivery
from cornerstore.settings import Environment

router = APIRouter(prefix="/v1/consumers/me/webhook", tags=["consent"], responses=GLOBAL_ERRORS)

WebhookRead = Annotated[Permit, Depends(Authorize(Resource.webhook, Action.read))]
WebhookWrite = Annotated[Permit, Depends(Authorize(Resource.webhook, Action.write))]

Limit = Annotated[int, Query(ge=1, le=1000)]


@router.put(
    "",
    response_model=WebhookCreated,
    summary="Register (or replace) the caller's webhook; the new secret is shown once",
)
def register_webhook(
    permit: WebhookWrite, body: WebhookIn, core: CoreDep, session: DbSession
) -> WebhookCreated:
    # Plain http would let anyone on the path read events and replay them
    # within the tolerance; it is allowed only outside production, for local
    # receivers and tests. In every environment a webhook reaches only the
    # public internet, but for the hosts an operator names for development.
    production = core.settings.environment is Environment.production
    problem = webhooks.url_problem(
        body.url, https_only=production, private_hosts=core.settings.webhook_private_hosts
    )
    if problem is not None:
        raise ValidationFailed(f"url {problem}", [FieldError(field="body.url", reason=problem)])
    key = webhooks.load_key(core.settings.webhook_key_path)
    webhook, secret = webhooks.register(session, key, permit.caller.id, body.url)
    return WebhookCreated(
        url=webhook.url, created_at=webhook.created_at, secret=webhooks.encode_secret(secret)
    )


@router.get(
    "",
    response_model=WebhookOut,
    responses=error_responses(NotFound),
    summary="The caller's webhook URL (never its secret)",
)
def get_webhook(permit: WebhookRead, session: DbSession) -> WebhookOut:
    webhook = session.get(ConsumerWebhook, permit.caller.id)
    if webhook is None:
        raise NotFound("no webhook is registered")
    return WebhookOut(url=webhook.url, created_at=webhook.created_at)


def _older_than(session: Session, consumer_id: uuid.UUID, after: uuid.UUID) -> ColumnElement[bool]:
    """The keyset condition for the page after ``after``, one of the consumer's own deliveries."""
    cursor = session.get(WebhookDelivery, after)
    if cursor is None or cursor.consumer_id != consumer_id:
        reason = "not one of your deliveries (use the next cursor of a listing)"
        raise ValidationFailed(
            f"after is {reason}", [FieldError(field="query.after", reason=reason)]
        )
    return or_(
        WebhookDelivery.created_at < cursor.created_at,
        and_(WebhookDelivery.created_at == cursor.created_at, WebhookDelivery.id < cursor.id),
    )


@router.get(
    "/deliveries",
    response_model=DeliveriesOut,
    summary="The caller's webhook events and how delivering each went, newest first",
)
def list_deliveries(
    permit: WebhookRead,
    session: DbSession,
    after: Annotated[
        uuid.UUID | None, Query(description="Return deliveries older than this one (`next`)")
    ] = None,
    limit: Limit = 100,
) -> DeliveriesOut:
    where = [WebhookDelivery.consumer_id == permit.caller.id]
    if after is not None:
        where.append(_older_than(session, permit.caller.id, after))
    rows = session.scalars(
        select(WebhookDelivery)
        .where(*where)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        .limit(limit)
    ).all()
    deliveries = [
        DeliveryOut.model_validate(row).model_copy(
            update={
                "next_attempt_at": row.next_attempt_at if row.state == webhooks.PENDING else None
            }
        )
        for row in rows
    ]
    return DeliveriesOut(
        deliveries=deliveries, next=str(rows[-1].id) if len(rows) == limit else None
    )
