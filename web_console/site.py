"""What the app needs from the web console: its routers, its static files, its error pages."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from cornerstore.errors import ErrorBody
from web_console import (
    access_log,
    audit_charts,
    audit_privacy,
    audit_search,
    audit_shop,
    auditor,
    docs,
    my_data,
    portal,
    portal_consent,
    portal_proposals,
    signin,
)
from web_console.i18n import negotiate
from web_console.templating import render

STATIC_DIR = Path(__file__).resolve().parent / "static"
ROUTERS: tuple[APIRouter, ...] = (
    signin.router,
    portal.router,
    portal_consent.router,
    portal_proposals.router,
    access_log.router,
    my_data.router,
    auditor.router,
    audit_search.router,
    audit_charts.router,
    audit_shop.router,
    audit_privacy.router,
    docs.router,
)
#: The paths whose errors are pages, not JSON.
PAGE_PREFIXES = ("/portal", "/console", "/sign-in", "/sign-out", "/language", "/erased")


def error_page(request: Request, status: int, body: ErrorBody) -> Response | None:
    """A friendly page in the person's language for an error on a page; None for the API."""
    path = request.url.path
    if path != "/" and not path.startswith(PAGE_PREFIXES):
        return None
    _ = negotiate(request).translations.gettext
    if status == 401:
        heading, message = (
            _("Please sign in"),
            _("Open the sign-in link your hub's operator sent you."),
        )
    elif status in (403, 404):
        heading, message = (
            _("Nothing here"),
            _("This page does not exist, or it is not yours to see."),
        )
    elif status >= 500:
        heading, message = (
            _("Not now"),
            _("The hub cannot answer safely right now. Nothing was lost: try again in a minute."),
        )
    else:
        heading, message = _("That did not work"), body.detail
    return render(
        request,
        "error.html",
        status_code=status,
        heading=heading,
        message=message,
        # What a form got wrong, named as the API names it (a 4xx names the field).
        fields=body.fields if 400 <= status < 500 else None,
    )
