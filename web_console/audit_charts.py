"""The console's charts: access over time by purpose and by consumer, refusals by
reason, and consent changes, over the last weeks.

The server counts (one grouped query in ``audit.service``) and the page draws
with the vendored Chart.js from a JSON block, so no inline script runs.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from audit import daily
from audit.deps import AuditCoreDep, AuditRead
from cornerstore.db import utcnow
from cornerstore.deps import DbSession
from cornerstore.identity import names_of
from web_console import words
from web_console.i18n import negotiate
from web_console.templating import render

router = APIRouter(prefix="/console", include_in_schema=False)

DAYS = 14
TOP_CONSUMERS = 10


@router.get("/charts")
def charts(request: Request, permit: AuditRead, core: AuditCoreDep, session: DbSession) -> Response:
    today = utcnow().date()
    first = today - timedelta(days=DAYS - 1)
    counts = daily.counts_since(session, daily.window_start(utcnow(), DAYS))
    days = [(first + timedelta(days=n)).isoformat() for n in range(DAYS)]
    at = {day: n for n, day in enumerate(days)}
    lang = negotiate(request)
    _ = lang.translations.gettext
    purposes = core.authorizer.purposes

    reads: dict[str, list[int]] = defaultdict(lambda: [0] * DAYS)
    refusals: dict[str, list[int]] = defaultdict(lambda: [0] * DAYS)
    changes = [0] * DAYS
    by_consumer: dict[Any, int] = defaultdict(int)
    for c in counts.days:
        if c.day not in at:
            continue
        n = at[c.day]
        if c.action == "read" and c.decision == "allow":
            label = (
                words.purpose_title(purposes[c.purpose], lang.tag)
                if c.purpose in purposes
                else _("the shop itself")
            )
            reads[label][n] += c.count
        elif c.decision == "deny":
            refusals[_(words.REASONS.get(c.reason, c.reason))][n] += c.count
        elif c.action.startswith("consent."):
            changes[n] += c.count
    for (reader, purpose), n in counts.readers.items():
        if purpose in purposes:  # consumers, not the shop itself
            by_consumer[reader] += n
    names = names_of(session, set(by_consumer))
    top = sorted(by_consumer.items(), key=lambda item: -item[1])[:TOP_CONSUMERS]
    data = {
        "days": days,
        "reads": {"title": _("Reads allowed, by purpose"), "series": dict(reads)},
        "refusals": {"title": _("Refusals, by reason"), "series": dict(refusals)},
        "consumers": {
            "title": _("Reads allowed, by consumer"),
            "labels": [names.get(p, str(p)) for p, _n in top],
            "values": [n for _p, n in top],
        },
        "changes": {"title": _("Consent changes"), "values": changes},
    }
    return render(
        request,
        "console/charts.html",
        chart_data=_script_safe(json.dumps(data, ensure_ascii=False)),
        first=date.fromisoformat(days[0]),
        last=today,
    )


def _script_safe(encoded: str) -> str:
    """JSON that cannot end its ``<script type="application/json">`` block early.

    Names come from principals; one called ``</script><script>…`` must stay text.
    """
    return encoded.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
