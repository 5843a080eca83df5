"""FastAPI dependencies every router shares: the hub's core parts, the session, the caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from cornerstore import websessions
from cornerstore.db import utcnow
from cornerstore.errors import Unauthenticated
from cornerstore.identity import Caller, caller_from_api_key
from cornerstore.ports import Core
from cornerstore.ratelimit import MINUTE


def hub_of(request: Request) -> Any:
    """The running hub the app was assembled around (:class:`hub.runtime.Hub`).

    Typed by each caller as the protocol of the parts it uses; the hub is
    checked against every one of them where it is defined.
    """
    return request.app.state.hub


def get_core(request: Request) -> Core:
    core: Core = hub_of(request)
    return core


CoreDep = Annotated[Core, Depends(get_core)]


def get_session(hub: CoreDep) -> Iterator[Session]:
    """One transaction per request, committed after the endpoint returns and
    before the response is sent (``scope="function"``), rolled back on error.

    Services only flush. If the commit fails the client gets an error, never
    a success for work that was not stored.
    """
    session = hub.sessions()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


DbSession = Annotated[Session, Depends(get_session, scope="function")]


_bearer = HTTPBearer(
    auto_error=False, scheme_name="api_key", description="Authorization: Bearer <api key>"
)


#: Methods that change nothing: a session needs no CSRF token for them.
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_caller(
    request: Request,
    core: CoreDep,
    session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The caller, by its API key, or else by its web console session.

    A key wins when both are sent. A session that changes something must send
    its CSRF token too, so that another site cannot act through the cookie.
    """
    token = request.cookies.get(websessions.COOKIE)
    try:
        if credentials is not None or not token:
            return caller_from_api_key(session, credentials.credentials if credentials else None)
        signed_in = websessions.caller_from_session(
            session, token, idle=core.settings.session_idle_timeout, now=utcnow()
        )
    except Unauthenticated:
        # Only failures are counted: a valid key costs nothing more. Past the
        # limit, the address's failures are answered 429 until the window ends.
        address = request.client.host if request.client else "unknown"
        core.rate_limiter.hit(
            f"failed-login:{address}", core.settings.rate_failed_logins_per_minute, MINUTE, utcnow()
        )
        raise
    if request.method not in _SAFE_METHODS:
        websessions.check_csrf(signed_in.csrf_token, request.headers.get(websessions.CSRF_HEADER))
    # For the page that renders next: its forms send the token back.
    request.state.csrf_token = signed_in.csrf_token
    return signed_in.caller


CurrentCaller = Annotated[Caller, Depends(get_caller)]
