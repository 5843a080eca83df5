"""The auditor's console: ``/console/``. Each page declares its permit as the API does."""

from __future__ import annotations

import base64
import uuid

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import Response

from audit import checkpoints, verification, witness
from audit.deps import (
    AuditCoreDep,
    AuditRead,
    VerificationRead,
    VerificationStart,
    start_verification,
)
from cornerstore.db import utcnow
from cornerstore.deps import DbSession
from cornerstore.errors import NotFound
from web_console.templating import render

router = APIRouter(prefix="/console", include_in_schema=False)


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


# The full verification: the button starts it (or joins the run already working),
# and the fragment polls itself every second until the run has finished.


@router.post("/verifications")
def start_full_verification(
    request: Request,
    permit: VerificationStart,
    core: AuditCoreDep,
    session: DbSession,
    background: BackgroundTasks,
) -> Response:
    run = start_verification(session, core, permit, background)
    return render(request, "console/_verification.html", run=run)


@router.get("/verifications/latest")
def latest_verification(request: Request, permit: VerificationRead, session: DbSession) -> Response:
    return render(request, "console/_verification.html", run=verification.latest(session))


@router.get("/verifications/{verification_id}")
def full_verification(
    request: Request, permit: VerificationRead, verification_id: uuid.UUID, session: DbSession
) -> Response:
    run = verification.get(session, verification_id)
    if run is None:
        raise NotFound("no such verification")
    return render(request, "console/_verification.html", run=run)
