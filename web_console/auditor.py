"""The auditor's console: ``/console/``. Each page declares its permit as the API does."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from audit import checkpoints, witness
from audit.deps import AuditCoreDep
from cornerstore.access import Authorize, Permit
from cornerstore.authz import Action, Resource
from cornerstore.db import utcnow
from cornerstore.deps import DbSession
from web_console.templating import render

router = APIRouter(prefix="/console", include_in_schema=False)

AuditRead = Annotated[Permit, Depends(Authorize(Resource.audit, Action.read))]


def b64(data: bytes | None) -> str:
    return base64.b64encode(data).decode() if data else ""


@router.get("/")
def overview(
    request: Request, permit: AuditRead, core: AuditCoreDep, session: DbSession
) -> Response:
    # Sign now, as GET /v1/audit/checkpoint does: the checkpoint covers every entry so far.
    checkpoints.sign_latest(session, core.signer.current())
    newest = checkpoints.latest(session)
    seen = witness.witness(session, permit.caller.id, newest, utcnow()) if newest else None
    return render(
        request,
        "console/overview.html",
        checkpoint=newest,
        root=b64(newest.root_hash) if newest else None,
        seen=seen,
        b64=b64,
    )
