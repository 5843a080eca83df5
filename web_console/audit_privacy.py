"""The console's privacy ledger: what each query across shops spent of its consumer's budget.

Declares the permit ``GET /v1/analytics/ledger`` declares, and reads the same ledger.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from analytics import budget
from analytics.deps import LedgerRead
from cornerstore.deps import DbSession
from cornerstore.identity import names_of
from web_console.templating import render

router = APIRouter(prefix="/console", include_in_schema=False)

#: The newest charges shown; the API pages through them all.
SHOWN = 100


@router.get("/privacy")
def privacy_ledger(request: Request, permit: LedgerRead, session: DbSession) -> Response:
    spends = budget.spends(session, consumer_id=None, purpose=None, limit=SHOWN)
    names = names_of(session, {s.consumer_id for s in spends})
    return render(request, "console/privacy.html", section="privacy", spends=spends, names=names)
