"""The console's search over the audit log, with every filter the API has, and its CSV.

Both read through ``audit.service.query``, as ``GET /v1/audit/events`` does; the
CSV's cells are neutralised against spreadsheet formulas like every CSV the
hub writes.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from audit import service
from audit.deps import AuditRead
from cornerstore.authz import AuditedPurpose
from cornerstore.csvcells import neutralise
from cornerstore.deps import CoreDep, DbSession
from cornerstore.fieldtypes import Timestamp
from cornerstore.identity import names_of
from cornerstore.ports import AuditAction, Decision
from web_console import words
from web_console.forms import query_filters
from web_console.templating import render

router = APIRouter(prefix="/console", include_in_schema=False)

PAGE = 100
COLUMNS = (
    "seq",
    "recorded_at",
    "action",
    "decision",
    "reason",
    "principal_id",
    "principal_name",
    "principal_role",
    "shop_id",
    "category",
    "purpose",
    "policy_version",
    "details",
)


class Filters(BaseModel):
    """The API's filters, from a plain form: an empty field means any."""

    shop_id: uuid.UUID | None = None
    principal_id: uuid.UUID | None = None
    purpose: AuditedPurpose | None = None
    decision: Decision | None = None
    action: AuditAction | None = None
    since: Timestamp | None = None
    until: Timestamp | None = None

    def where(self) -> service.AuditFilter:
        return service.AuditFilter(
            self.shop_id,
            self.principal_id,
            self.purpose,
            self.decision,
            self.action,
            self.since,
            self.until,
        )


def filters(request: Request) -> Filters:
    return query_filters(Filters, request)


Chosen = Annotated[Filters, Depends(filters)]


@router.get("/events")
def search(
    request: Request,
    permit: AuditRead,
    session: DbSession,
    chosen: Chosen,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    entries = service.query(
        session, chosen.where(), after_seq=0, limit=PAGE, before_seq=before or 2**62
    )
    names = names_of(session, {e.principal_id for e in entries if e.principal_id})
    query = "&".join(
        f"{name}={value}" for name, value in request.query_params.items() if name != "before"
    )
    return render(
        request,
        "console/events.html",
        entries=entries,
        names=names,
        chosen=chosen,
        query=query,
        older=entries[-1].seq if len(entries) == PAGE else None,
        actions=list(AuditAction),
        purposes=list(AuditedPurpose),
        words=words,
    )


@router.get("/events.csv")
def search_csv(permit: AuditRead, core: CoreDep, chosen: Chosen) -> StreamingResponse:
    return StreamingResponse(
        _rows(core.sessions, chosen),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit-events.csv"'},
    )


def _rows(sessions: sessionmaker[Session], chosen: Filters) -> Iterator[str]:
    # Its own session: the request's is closed once the response starts.
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    with sessions() as session:
        after = 0
        while True:
            entries = service.query(session, chosen.where(), after_seq=after, limit=1000)
            names = names_of(session, {e.principal_id for e in entries if e.principal_id})
            for e in entries:
                row = {c: getattr(e, c, None) for c in COLUMNS}
                row["principal_name"] = names.get(e.principal_id) if e.principal_id else None
                row["details"] = json.dumps(e.details, ensure_ascii=False, sort_keys=True)
                writer.writerow([neutralise(row[c]) for c in COLUMNS])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if len(entries) < 1000:
                return
            after = entries[-1].seq
