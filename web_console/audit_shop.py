"""The console's view of one shop: its consents, their history, and a way into its access log.

Declares the permit ``GET /v1/shops/{id}/consent-history`` declares, and reads
through the same consent services.
"""

from __future__ import annotations

import uuid
from collections import deque

from fastapi import APIRouter, Request
from fastapi.responses import Response

from consent import service, versions
from consent.deps import ConsentCoreDep
from consent.permits import ShopHistoryRead
from cornerstore.db import utcnow
from cornerstore.deps import DbSession
from cornerstore.identity import names_of
from web_console import words
from web_console.templating import render

router = APIRouter(prefix="/console", include_in_schema=False)

#: The newest changes shown; the API's consent-history has them all, as CSV too.
CHANGES_SHOWN = 100


@router.get("/shops/{shop_id}")
def shop(
    request: Request,
    shop_id: uuid.UUID,
    permit: ShopHistoryRead,
    core: ConsentCoreDep,
    session: DbSession,
) -> Response:
    consents = service.list_for_shop(session, shop_id, utcnow())
    changes = list(deque(versions.history(session, shop_id=shop_id), maxlen=CHANGES_SHOWN))
    changes.reverse()
    names = names_of(session, {c.changed_by for c in changes})
    return render(
        request,
        "console/shop.html",
        shop_id=shop_id,
        consents=consents,
        changes=changes,
        names=names,
        purposes=core.authorizer.purposes,
        words=words,
    )
