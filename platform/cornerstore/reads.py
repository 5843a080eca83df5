"""``GET /v1/shops/{shop_id}/sales`` (likewise ``/inventory``, ``/payments``): governed reads.

Each endpoint declares its permit (steps 1 and 2 of the gate) in its
signature; :meth:`cornerstore.gate.AccessGate.read` does the rest.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from cornerstore.access import Permit
from cornerstore.categories import Category
from cornerstore.deps import CoreDep, DbSession
from cornerstore.errors import SHOP_ERRORS, FieldError, ValidationFailed
from cornerstore.fieldtypes import Timestamp
from cornerstore.gate import AccessGate, AuthorizeRead, ReadWindow

router = APIRouter(prefix="/v1/shops/{shop_id}", tags=["governed reads"], responses=SHOP_ERRORS)

SalesRead = Annotated[Permit, Depends(AuthorizeRead(Category.sales))]
InventoryRead = Annotated[Permit, Depends(AuthorizeRead(Category.inventory))]
PaymentsRead = Annotated[Permit, Depends(AuthorizeRead(Category.payments))]
CatalogueRead = Annotated[Permit, Depends(AuthorizeRead(Category.catalogue))]

DESCRIPTION = (
    "Answers only under an active, unexpired consent of the shop for this consumer, "
    "purpose and category; otherwise 404, exactly as for a shop that does not exist. "
    "Every answer, allowed or refused, is written to the audit log first."
)


class RecordsPage(BaseModel):
    records: list[dict[str, Any]] = Field(
        description="Records in event-time order, cut down to the fields the purpose allows"
    )
    next: str | None = Field(description="Pass as `cursor` for the next page; null on the last")


def asked_window(
    core: CoreDep,
    since: Annotated[Timestamp | None, Query(description="Inclusive, RFC 3339")] = None,
    until: Annotated[Timestamp | None, Query(description="Exclusive, RFC 3339")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> ReadWindow:
    settings = core.settings
    if since is not None and until is not None and until <= since:
        raise ValidationFailed(
            "an empty window", [FieldError(field="query.until", reason="must be after since")]
        )
    if limit is not None and limit > settings.page_size_max:
        raise ValidationFailed(
            "limit too large",
            [FieldError(field="query.limit", reason=f"at most {settings.page_size_max}")],
        )
    return ReadWindow(since, until, cursor, limit or settings.page_size_default)


Window = Annotated[ReadWindow, Depends(asked_window)]


def _page(core: CoreDep, session: DbSession, permit: Permit, window: ReadWindow) -> RecordsPage:
    page = AccessGate(core).read(session, permit, window)
    return RecordsPage(records=page.records, next=page.next)


@router.get(
    "/sales", summary="Read the shop's sales for a declared purpose", description=DESCRIPTION
)
def read_sales(permit: SalesRead, window: Window, core: CoreDep, session: DbSession) -> RecordsPage:
    return _page(core, session, permit, window)


@router.get(
    "/inventory",
    summary="Read the shop's inventory for a declared purpose",
    description=DESCRIPTION,
)
def read_inventory(
    permit: InventoryRead, window: Window, core: CoreDep, session: DbSession
) -> RecordsPage:
    return _page(core, session, permit, window)


@router.get(
    "/payments",
    summary="Read the shop's payments for a declared purpose",
    description=DESCRIPTION,
)
def read_payments(
    permit: PaymentsRead, window: Window, core: CoreDep, session: DbSession
) -> RecordsPage:
    return _page(core, session, permit, window)


@router.get(
    "/catalogue",
    summary="Read the shop's product catalogue for a declared purpose",
    description=DESCRIPTION,
)
def read_catalogue(
    permit: CatalogueRead, window: Window, core: CoreDep, session: DbSession
) -> RecordsPage:
    return _page(core, session, permit, window)
