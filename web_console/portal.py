"""The shopkeeper's portal: ``/portal/``. Each page declares its permit as the API does."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from analytics import summary
from analytics.deps import SummaryRead
from consent import service as consents
from cornerstore.access import Authorize, Permit
from cornerstore.authz import Action, Resource
from cornerstore.categories import Category
from cornerstore.db import utcnow
from cornerstore.deps import CoreDep, DbSession
from cornerstore.errors import NotFound
from cornerstore.gate import AccessGate, AuthorizeRead, ReadWindow
from cornerstore.models.consent import ConsentStatus
from cornerstore.models.principals import Role
from cornerstore.ports import Core
from web_console import words
from web_console.forms import own_shop
from web_console.ports import ShopTimeZone
from web_console.templating import render

router = APIRouter(prefix="/portal", include_in_schema=False)

IdentityRead = Annotated[Permit, Depends(Authorize(Resource.identity, Action.read))]
OwnSalesRead = Annotated[Permit, Depends(AuthorizeRead(Category.sales))]

#: The most sales lines the home page adds up for a week; past it, it says so.
WEEK_LIMIT = 20_000
#: A product with this many or fewer on the shelf at its latest count is running low.
LOW_STOCK = 5


@dataclass(frozen=True)
class Takings:
    lines: int
    cents: int


@dataclass(frozen=True)
class Week:
    today: Takings
    week: Takings
    day_start: datetime
    complete: bool


def _week_of_sales(
    core: Core, session: Session, permit: Permit, now: datetime, time_zone: str | None
) -> Week:
    """Today's and the last seven days' sales, read through the gate like any read.

    Days start at midnight where the shop is, if it keeps a time zone.
    """
    zone = ZoneInfo(time_zone) if time_zone else UTC
    day_start = (
        now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    )
    since = day_start - timedelta(days=6)
    gate = AccessGate(core)
    cursor: str | None = None
    totals = {"today": [0, 0], "week": [0, 0]}
    seen = 0
    while True:
        page = gate.read(session, permit, ReadWindow(since, now, cursor, 1000))
        for record in page.records:
            cents = int(record["quantity"]) * int(record["unit_price_cents"])
            totals["week"][0] += 1
            totals["week"][1] += cents
            if _at(record) >= day_start:
                totals["today"][0] += 1
                totals["today"][1] += cents
        seen += len(page.records)
        cursor = page.next
        if cursor is None or seen >= WEEK_LIMIT:
            break
    return Week(
        Takings(*totals["today"]), Takings(*totals["week"]), day_start, complete=cursor is None
    )


def _at(record: dict[str, Any]) -> datetime:
    value = record["occurred_at"]
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


@router.get("/")
def portal(request: Request, permit: IdentityRead) -> Response:
    """Where the front door sends anyone signed in: a shopkeeper to its shop, an auditor on."""
    if permit.caller.role == Role.auditor:
        return RedirectResponse("/console/", status_code=303)
    shops = sorted(permit.caller.shop_ids)
    if not shops:
        raise NotFound()
    return RedirectResponse(f"/portal/shops/{shops[0]}/", status_code=303)


@router.get("/shops/{shop_id}/")
def home(
    request: Request,
    shop_id: uuid.UUID,
    permit: OwnSalesRead,
    core: CoreDep,
    session: DbSession,
    time_zone: ShopTimeZone,
) -> Response:
    own_shop(permit, shop_id)
    now = utcnow()
    week = _week_of_sales(core, session, permit, now, time_zone)
    pending = consents.list_for_shop(session, shop_id, now, ConsentStatus.requested)
    return render(
        request,
        "portal/home.html",
        time_zone=time_zone,
        shop_id=shop_id,
        section="home",
        week=week,
        pending=len(pending),
    )


@router.get("/shops/{shop_id}/low-stock")
def low_stock(
    request: Request,
    shop_id: uuid.UUID,
    permit: SummaryRead,
    core: CoreDep,
    session: DbSession,
) -> Response:
    """The home page's list of products running low, by name, loaded into it as a fragment.

    Read from the shop's own summary (``GET /v1/shops/{id}/analytics/summary``):
    each product's latest count of the last 30 days, with its catalogue name.
    """
    own_shop(permit, shop_id)
    since, until = summary.window(None, None, utcnow())
    reader = AccessGate(core).summary(session, permit, since)
    found = summary.summarise(session, reader, since=since, until=until, group_by="week")
    low = sorted(
        (s for s in found.stock if s.on_hand <= LOW_STOCK), key=lambda s: (s.on_hand, s.sku)
    )
    return render(request, "portal/_low_stock.html", low=low[:10], threshold=LOW_STOCK)


@router.get("/shops/{shop_id}/insights")
def insights(
    request: Request,
    shop_id: uuid.UUID,
    permit: SummaryRead,
    core: CoreDep,
    session: DbSession,
    time_zone: ShopTimeZone,
) -> Response:
    """The home page's last four weeks: what sells, what does not, stock left, how people pay.

    The same summary as ``GET /v1/shops/{id}/analytics/summary``, read the same way.
    """
    own_shop(permit, shop_id)
    since, until = summary.window(None, None, utcnow())
    reader = AccessGate(core).summary(session, permit, since)
    found = summary.summarise(session, reader, since=since, until=until, group_by="week")
    # Sold-out products are already under "running low"; these still have some left.
    running_out = sorted(
        (s for s in found.stock if s.on_hand > 0 and s.days_left is not None and s.days_left < 14),
        key=lambda s: s.days_left or 0.0,
    )
    return render(
        request,
        "portal/_insights.html",
        time_zone=time_zone,
        summary=found,
        running_out=running_out[:5],
        words=words,
    )
