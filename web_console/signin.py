"""Signing in with a one-time link, signing out, and the front door at ``/``.

Opening a link shows a page with one button; the button spends the link. A
link previewer (chat apps fetch the links people paste) only ever sees the
page, so it cannot use the link up before its owner does.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from audit import service as audit
from cornerstore import websessions
from cornerstore.db import utcnow
from cornerstore.deps import CoreDep, DbSession
from cornerstore.errors import Unauthenticated
from cornerstore.models.principals import Role
from cornerstore.ports import AuditDraft, Decision
from web_console.i18n import COOKIE as LANGUAGE_COOKIE
from web_console.i18n import LANGUAGES
from web_console.templating import render

router = APIRouter(include_in_schema=False)

#: Where each role lands after signing in.
HOME = {Role.shopkeeper: "/portal/", Role.auditor: "/console/"}


@router.get("/")
def front_door(request: Request) -> Response:
    if websessions.COOKIE in request.cookies:
        return RedirectResponse("/portal/", status_code=303)
    return render(request, "front_door.html")


@router.get("/sign-in")
def sign_in_page(request: Request, token: str = "") -> Response:
    return render(request, "sign_in.html", token=token)


@router.post("/sign-in")
def sign_in(
    request: Request, core: CoreDep, session: DbSession, token: Annotated[str, Form()] = ""
) -> Response:
    settings = core.settings
    now = utcnow()
    try:
        started = websessions.redeem(
            session, token, absolute=settings.session_absolute_timeout, now=now
        )
    except Unauthenticated:
        return render(request, "sign_in_refused.html", status_code=401)
    audit.append(
        session,
        AuditDraft(
            principal_id=started.principal_id,
            principal_role=started.role,
            action="session.start",
            decision=Decision.allow,
            reason="signed in",
        ),
    )
    response = RedirectResponse(HOME.get(Role(started.role), "/"), status_code=303)
    response.set_cookie(
        websessions.COOKIE,
        started.token,
        max_age=int(settings.session_absolute_timeout.total_seconds()),
        httponly=True,
        secure=settings.environment == "production",
        samesite="lax",
        path="/",
    )
    return response


@router.post("/sign-out")
def sign_out(request: Request, session: DbSession) -> Response:
    token = request.cookies.get(websessions.COOKIE)
    if token:
        websessions.end(session, token, utcnow())
    response = Response(status_code=204, headers={"HX-Redirect": "/"})
    response.delete_cookie(websessions.COOKIE, path="/")
    return response


@router.get("/language/{tag}")
def choose_language(tag: str, back: str = "/") -> Response:
    """The switch on every page: remembered in a cookie, then back to the same page."""
    target = back if back.startswith("/") and not back.startswith("//") else "/"
    response = RedirectResponse(target, status_code=303)
    if tag in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, tag, max_age=400 * 24 * 3600, samesite="lax", path="/")
    return response
