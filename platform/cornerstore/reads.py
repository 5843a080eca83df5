"""``GET /v1/shops/{shop_id}/{sales,inventory,payments}``: governed reads, all through the gate."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from cornerstore.authz import PurposeName
from cornerstore.deps import CoreDep, CurrentCaller, DbSession
from cornerstore.errors import SHOP_ERRORS, FieldError, ValidationFailed
from cornerstore.fieldtypes import Timestamp
from cornerstore.gate import AccessGate, ReadRequest
from cornerstore.models.records import Category

router = APIRouter(prefix="/v1/shops/{shop_id}", tags=["governed reads"], responses=SHOP_ERRORS)


class RecordsPage(BaseModel):
    records: list[dict[str, Any]] = Field(
        description="Records in event-time order, cut down to the fields the purpose allows"
    )
    next: str | None = Field(description="Pass as `cursor` for the next page; null on the last")


def _route(category: Category) -> None:
    def endpoint(
        hub: CoreDep,
        session: DbSession,
        caller: CurrentCaller,
        shop_id: uuid.UUID,
        purpose: Annotated[
            PurposeName | None,
            Query(description="Why the data is read. The shop's own shopkeeper may omit it."),
        ] = None,
        since: Annotated[Timestamp | None, Query(description="Inclusive, RFC 3339")] = None,
        until: Annotated[Timestamp | None, Query(description="Exclusive, RFC 3339")] = None,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int | None, Query(ge=1)] = None,
    ) -> RecordsPage:
        settings = hub.settings
        if since is not None and until is not None and until <= since:
            raise ValidationFailed(
                "an empty window",
                [FieldError(field="query.until", reason="must be after since")],
            )
        if limit is not None and limit > settings.page_size_max:
            raise ValidationFailed(
                "limit too large",
                [FieldError(field="query.limit", reason=f"at most {settings.page_size_max}")],
            )
        page = AccessGate(hub).read(
            session,
            caller,
            ReadRequest(
                shop_id=shop_id,
                category=category,
                purpose=purpose.value if purpose else None,
                since=since,
                until=until,
                cursor=cursor,
                limit=limit or settings.page_size_default,
            ),
        )
        return RecordsPage(records=page.records, next=page.next)

    router.add_api_route(
        f"/{category.value}",
        endpoint,
        methods=["GET"],
        response_model=RecordsPage,
        name=f"read_{category.value}",
        summary=f"Read the shop's {category.value} for a declared purpose",
        description=(
            "Answers only under an active, unexpired consent of the shop for this consumer, "
            "purpose and category; otherwise 404, exactly as for a shop that does not exist. "
            "Every answer, allowed or refused, is written to the audit log first."
        ),
    )


for _category in Category:
    _route(_category)
