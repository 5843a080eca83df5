"""Rendering a page: one Jinja2 environment per language, each with its catalogue installed.

An environment per language, built once, rather than one whose gettext is
swapped per request: requests of both languages render at once in the
server's thread pool.
"""

from __future__ import annotations

from functools import cache, partial
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request

from web_console.i18n import LANGUAGES, Language, language, negotiate

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


@cache
def _environment(tag: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(language(tag).translations, newstyle=True)  # type: ignore[attr-defined]
    return env


def render(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    time_zone: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page in the person's language; a signed-in page's forms carry its CSRF token.

    Templates write times with ``when(moment)``: in ``time_zone`` (a shop's
    pages pass the shop's), else in UTC, the zone stated either way.
    """
    lang: Language = negotiate(request)
    page = (
        _environment(lang.tag)
        .get_template(template)
        .render(
            request=request,
            lang=lang,
            languages=LANGUAGES,
            # Set by cornerstore.deps.get_caller when a session authenticated the request.
            csrf_token=getattr(request.state, "csrf_token", None),
            path=request.url.path,
            when=partial(lang.when, time_zone=time_zone),
            time_zone=time_zone,
            **context,
        )
    )
    return HTMLResponse(page, status_code=status_code)
