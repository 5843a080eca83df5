"""The auditor's console: ``/console/``. Each page declares its permit as the API does."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from audit import checkpoints
from cornerstore.access import Authorize, Permit
from cornerstore.authz import Action, Resource
from cornerstore.deps import DbSession
from web_console.templating import render

router = APIRouter(prefix="/console", include_in_schema=False)

AuditRead = Annotated[Permit, Depends(Authorize(Resource.audit, Action.read))]


@router.get("/")
def overview(request: Request, permit: AuditRead, session: DbSession) -> Response:
    newest = checkpoints.latest(session)
    return render(
        request,
        "console/overview.html",
        csrf_token=getattr(request.state, "csrf_token", None),
        checkpoint=newest,
        root=base64.b64encode(newest.root_hash).decode() if newest else None,
    )
